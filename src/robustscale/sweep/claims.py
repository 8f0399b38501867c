"""One job per run folder: a run folder is claimed before anything trains in it.

`claim.json` in the run folder names the holder (`job_id`, `host`, `pid`) with a `heartbeat` time
that a thread of the holder renews every HEARTBEAT_S. A claim is live while it is not released
and its holder shows a sign of life: its process on this host, a heartbeat younger than STALE_S,
or (a Slurm job) the job still in `squeue`. Every task of one Slurm job shares the job's id, so
all ranks of a DDP job, and the same job after a requeue, hold the same claim. Reading, deciding
and writing the claim happen under an flock on `.claim.lock`, so two processes cannot both take a
free or stale claim. A released claim stays in the folder: it records the job that trained it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

from robustscale.errors import RobustscaleError
from robustscale.fileio import write_json
from robustscale.rundir import RunDir

HEARTBEAT_S = 5.0  # how often the holder renews its heartbeat
STALE_S = 60.0  # a heartbeat older than this, from a process we cannot see, is a dead holder's


class RunClaimed(RobustscaleError):
    """The run folder is held by another live job: this process must not write in it."""


def this_job_id() -> str:
    """The Slurm job id of this process (array jobs as ARRAYID_TASK, as squeue and submitit name
    them), else `local-HOST-PID`."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID") or f"local-{socket.gethostname()}-{os.getpid()}"


def read_claim(run_dir: Path) -> dict | None:
    try:
        return json.loads(RunDir(run_dir).claim_path.read_text())
    except (OSError, ValueError):
        return None


def slurm_job_queued(job_id: str) -> bool:
    """True when Slurm lists the job (pending, running, requeued or completing)."""
    if job_id.startswith("local-"):
        return False
    try:
        r = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True,
                           timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0 and bool(r.stdout.strip())


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_live(claim: dict | None) -> bool:
    """Whether the claim's holder may still write in the folder."""
    if not claim or claim.get("released"):
        return False
    if claim.get("host") == socket.gethostname() and _process_alive(int(claim.get("pid", -1))):
        return True
    if time.time() - float(claim.get("heartbeat", 0)) < STALE_S and claim.get("host") != socket.gethostname():
        return True
    return slurm_job_queued(str(claim.get("job_id", "")))


@contextlib.contextmanager
def _locked(run_dir: Path):
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(RunDir(run_dir).claim_lock_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released by the kernel if this process dies
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _write(run_dir: Path, claim: dict) -> None:
    write_json(RunDir(run_dir).claim_path, claim)


class Claim:
    """A held claim: renews its heartbeat on a daemon thread until `release()`."""

    def __init__(self, run_dir: Path, job_id: str):
        self.run_dir, self.job_id = run_dir, job_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="run-claim-heartbeat")
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with _locked(self.run_dir):
                claim = read_claim(self.run_dir)
                if not claim or claim.get("job_id") != self.job_id or claim.get("released"):
                    return
                _write(self.run_dir, {**claim, "heartbeat": time.time(), "pid": os.getpid()})

    def release(self, mark: bool = True) -> None:
        """Stop the heartbeat; with mark, record the claim as released (the job is done with the folder)."""
        self._stop.set()
        if not mark:
            return
        with _locked(self.run_dir):
            claim = read_claim(self.run_dir)
            if claim and claim.get("job_id") == self.job_id:
                _write(self.run_dir, {**claim, "released": time.time()})


def claim_run(run_dir: str | os.PathLike, job_id: str | None = None, wait_s: float = 0.0) -> Claim:
    """Claim run_dir for this job, or raise RunClaimed naming the live holder.

    A claim by the same job id (another rank, or this job before a requeue) is ours. While another
    holder is live and *running* (fresh heartbeat), wait up to wait_s for it to let go.
    """
    run_dir, job_id = Path(run_dir), job_id or this_job_id()
    deadline = time.monotonic() + wait_s
    while True:
        with _locked(run_dir):
            claim = read_claim(run_dir)
            if claim and claim.get("job_id") == job_id and not claim.get("released"):
                return Claim(run_dir, job_id)
            if not is_live(claim):
                now = time.time()
                _write(run_dir, {"job_id": job_id, "host": socket.gethostname(), "pid": os.getpid(),
                                 "started": now, "heartbeat": now, "released": None,
                                 "previous": claim.get("job_id") if claim else None})
                return Claim(run_dir, job_id)
        running = time.time() - float(claim.get("heartbeat", 0)) < STALE_S
        if not running or time.monotonic() > deadline:
            state = "running" if running else "queued"
            raise RunClaimed(f"{run_dir}: claimed by job {claim.get('job_id')} on {claim.get('host')} "
                             f"({state}); job {job_id} does not train it a second time")
        time.sleep(min(HEARTBEAT_S, max(0.1, deadline - time.monotonic())))
