"""A real single-node Slurm (munge + slurmctld + slurmd) for the sweep tests, started as root.

Recipe: /work/shared/notes/slurm-single-node.md. Config, state, spool and logs live in a temp dir
(SLURM_CONF points there for sbatch/squeue/sinfo and for submitit); the daemons are stopped by
their PIDs afterwards. Skips only where Slurm is not installed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

SLURM_CONF = """\
ClusterName=robustscale
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
MpiDefault=none
KillWait=2
NodeName={host} CPUs={cpus} RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stop(pid: int | None) -> None:
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


@pytest.fixture(scope="session")
def slurm_cluster():
    """Start munge + slurmctld + slurmd; yield the env (SLURM_CONF) once `sinfo` shows the node idle."""
    if not shutil.which("slurmctld") and not Path("/usr/sbin/slurmctld").exists():
        pytest.skip("slurmctld is not installed (Debian packages slurmctld slurmd munge)")
    if os.geteuid() != 0:
        pytest.fail("the real-Slurm fixture starts munge and the Slurm daemons and must run as root")
    d = Path(tempfile.mkdtemp(prefix="robustscale-slurm-", dir="/tmp"))
    (d / "state").mkdir()
    (d / "spool").mkdir()
    host = socket.gethostname().split(".")[0]
    conf = d / "slurm.conf"
    conf.write_text(SLURM_CONF.format(host=host, d=d, cpus=os.cpu_count() or 2))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    started_munge = None
    if subprocess.run(["bash", "-c", "munge -n | unmunge"], capture_output=True).returncode != 0:
        key = Path("/etc/munge/munge.key")
        if not key.exists():
            key.write_bytes(os.urandom(1024))
        for p in ("/run/munge", "/var/log/munge", "/var/lib/munge"):
            Path(p).mkdir(parents=True, exist_ok=True)
        subprocess.run(["chown", "munge:munge", str(key), "/run/munge", "/var/log/munge", "/var/lib/munge"], check=True)
        key.chmod(0o400)
        subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], check=True)
        started_munge = _pid(Path("/run/munge/munged.pid"))
    subprocess.run(["/usr/sbin/slurmctld", "-f", str(conf)], check=True, env=env)
    subprocess.run(["/usr/sbin/slurmd", "-f", str(conf)], check=True, env=env)
    try:
        deadline = time.time() + 60
        state = ""
        while time.time() < deadline:
            r = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=env)
            state = r.stdout.strip()
            if state == "idle":
                break
            time.sleep(0.5)
        else:
            log = (d / "slurmctld.log").read_text()[-2000:] if (d / "slurmctld.log").exists() else ""
            pytest.fail(f"Slurm node not idle after 60 s (sinfo: {state!r}); slurmctld.log tail:\n{log}")
        yield env
    finally:
        _stop(_pid(d / "slurmd.pid"))
        _stop(_pid(d / "slurmctld.pid"))
        _stop(started_munge)
        shutil.rmtree(d, ignore_errors=True)
