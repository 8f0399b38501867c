"""A real single-node Slurm for the sweep tests, with accounting and partition preemption, as root.

munge + MariaDB + slurmdbd + slurmctld + slurmd. Accounting (slurmdbd) is what lets submitit learn
the final state of a cancelled or killed job; two partitions on the same node, `debug` (the
default, preemptable by requeue) and `high` (higher priority tier), make real preemption possible.
Config, state, spool and logs live in a temp dir (SLURM_CONF points there, slurmdbd.conf beside
it); the job-accounting database is created for the session and dropped afterwards (job ids
restart with the fresh state dir, so both go together). Daemons this fixture started are stopped
by their PIDs. Skips only where Slurm is not installed.
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
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort={dbd_port}
AuthInfo=cred_expire=10
MailProg=/bin/true
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5,bf_interval=5
JobRequeue=1
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
SlurmctldParameters=preempt_send_user_signal
NodeName={host} CPUs={cpus} RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE \
GraceTime=30
PartitionName=high Nodes={host} MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
PartitionName=short Nodes={host} MaxTime=1 State=UP
"""
# cred_expire=10 and 5 s scheduler intervals bring a requeued job back in ~15 s instead of ~2 min.
# `short` (1-minute limit) makes a job that pends forever: a longer timeout_min waits on PartitionConfig.

SLURMDBD_CONF = """\
AuthType=auth/munge
DbdHost=localhost
DbdPort={dbd_port}
SlurmUser=root
LogFile={d}/slurmdbd.log
PidFile={d}/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser={db_user}
StoragePass={db_pass}
StorageLoc={db}
"""
DBD_PORT = 6819


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


def _wait_for(check, seconds: float, what: str, log: Path) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.5)
    tail = log.read_text()[-2000:] if log.exists() else ""
    pytest.fail(f"{what} not ready after {seconds:.0f} s; {log.name} tail:\n{tail}")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _start_munge() -> int | None:
    """munged, unless one already answers; returns the PID of the one started here."""
    if subprocess.run(["bash", "-c", "munge -n | unmunge"], capture_output=True).returncode == 0:
        return None
    key = Path("/etc/munge/munge.key")
    if not key.exists():
        key.write_bytes(os.urandom(1024))
    for p in ("/run/munge", "/var/log/munge", "/var/lib/munge"):
        Path(p).mkdir(parents=True, exist_ok=True)
    subprocess.run(["chown", "munge:munge", str(key), "/run/munge", "/var/log/munge", "/var/lib/munge"],
                   check=True)
    key.chmod(0o400)
    subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], check=True)
    return _pid(Path("/run/munge/munged.pid"))


def _start_mariadb() -> bool:
    """MariaDB through its init script, unless it already runs; True when started here."""
    if subprocess.run(["mysqladmin", "ping"], capture_output=True).returncode == 0:
        return False
    subprocess.run(["/etc/init.d/mariadb", "start"], check=True, capture_output=True)
    return True


@pytest.fixture(scope="session")
def slurm_cluster():
    """Start the cluster; yield its environment (SLURM_CONF) once `sinfo` shows the node idle."""
    if not Path("/usr/sbin/slurmctld").exists() or not Path("/usr/sbin/slurmdbd").exists():
        pytest.skip("Slurm is not installed (Debian packages slurmctld slurmd slurmdbd munge mariadb-server)")
    if os.geteuid() != 0:
        pytest.fail("the real-Slurm fixture starts munge, MariaDB and the Slurm daemons and must run as root")
    d = Path(tempfile.mkdtemp(prefix="robustscale-slurm-", dir="/tmp"))
    (d / "state").mkdir()
    (d / "spool").mkdir()
    host = socket.gethostname().split(".")[0]
    db = f"robustscale_acct_{os.getpid()}"
    db_user, db_pass = "robustscale_slurm", os.urandom(8).hex()
    conf = d / "slurm.conf"
    conf.write_text(SLURM_CONF.format(host=host, d=d, cpus=os.cpu_count() or 2, dbd_port=DBD_PORT))
    dbd_conf = d / "slurmdbd.conf"  # slurmdbd reads the slurmdbd.conf beside SLURM_CONF
    dbd_conf.write_text(SLURMDBD_CONF.format(d=d, dbd_port=DBD_PORT, db=db, db_user=db_user, db_pass=db_pass))
    dbd_conf.chmod(0o600)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    started_munge = _start_munge()
    started_mariadb = _start_mariadb()
    sql = (f"CREATE DATABASE {db}; CREATE USER IF NOT EXISTS '{db_user}'@'localhost'; "
           f"ALTER USER '{db_user}'@'localhost' IDENTIFIED BY '{db_pass}'; "
           f"GRANT ALL ON {db}.* TO '{db_user}'@'localhost';")
    subprocess.run(["mysql", "-e", sql], check=True)
    try:
        subprocess.run(["/usr/sbin/slurmdbd"], check=True, env=env)
        _wait_for(lambda: _listening(DBD_PORT), 30, "slurmdbd", d / "slurmdbd.log")
        subprocess.run(["/usr/sbin/slurmctld", "-f", str(conf)], check=True, env=env)
        subprocess.run(["/usr/sbin/slurmd", "-f", str(conf)], check=True, env=env)
        _wait_for(lambda: subprocess.run(["sinfo", "-h", "-p", "debug", "-o", "%T"], capture_output=True,
                                         text=True, env=env).stdout.strip() == "idle",
                  60, "Slurm node", d / "slurmctld.log")
        yield env
    finally:
        # jobs a failed test left behind: their tasks would outlive slurmd
        subprocess.run(["scancel", "--user", "root"], env=env, capture_output=True)
        deadline = time.time() + 15
        while time.time() < deadline and subprocess.run(["squeue", "-h"], capture_output=True, text=True,
                                                         env=env).stdout.strip():
            time.sleep(0.5)
        _stop(_pid(d / "slurmd.pid"))
        _stop(_pid(d / "slurmctld.pid"))
        _stop(_pid(d / "slurmdbd.pid"))
        subprocess.run(["mysql", "-e", f"DROP DATABASE IF EXISTS {db}; DROP USER IF EXISTS "
                                       f"'{db_user}'@'localhost';"],
                       capture_output=True)
        if started_mariadb:
            subprocess.run(["/etc/init.d/mariadb", "stop"], capture_output=True)
        _stop(started_munge)
        shutil.rmtree(d, ignore_errors=True)
