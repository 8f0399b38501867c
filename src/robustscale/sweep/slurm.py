"""What the sweep asks Slurm itself (sinfo, squeue, sacct, scontrol, scancel), each a short command
with a timeout: is a controller reachable, can a partition fit a run, where are the jobs.

Job ids are squeue's: `12` for a single job, `12_3` for task 3 of array 12 (as submitit names them).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime

from robustscale.errors import RobustscaleError
from robustscale.sweep.spec import tasks_per_node

TIMEOUT_S = 30  # a Slurm command that has not answered by then will not
# Pending reasons that no amount of waiting clears: the request exceeds what the partition, its nodes,
# the account or the QOS allow (Slurm's squeue(1) reason codes).
NEVER_CLEARS = ("PartitionConfig", "PartitionNodeLimit", "PartitionTimeLimit", "ReqNodeNotAvail",
                "BadConstraints", "InvalidAccount", "InvalidQOS", "AssocMaxJobsLimit", "QOSMaxCpuPerJobLimit",
                "QOSMaxGRESPerJob", "QOSMaxMemoryPerJob", "QOSMaxNodePerJobLimit",
                "QOSMaxWallDurationPerJobLimit", "AssocMaxWallDurationPerJobLimit", "AssocMaxCpuPerJobLimit",
                "AssocMaxNodePerJobLimit")


def _run(args: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, 124, "", f"no answer within {TIMEOUT_S} s")


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def check_reachable() -> None:
    """RobustscaleError (flag `--executor`) unless a Slurm controller answers `sinfo`."""
    if not shutil.which("sbatch"):
        raise RobustscaleError("executor: slurm asked for, but there is no Slurm here "
                               "(sbatch not found on PATH)")
    r = _run(["sinfo", "-h", "-o", "%P"])
    if r.returncode != 0:
        raise RobustscaleError(f"executor: slurm: no Slurm controller answers "
                               f"(sinfo: {_last_line(r.stderr)}); set SLURM_CONF to the cluster's slurm.conf "
                               f"or run where Slurm is reachable")


def _gpus(gres: str) -> int:
    """GPUs in a node's GRES string (`gpu:8`, `gpu:a100:4(S:0-1)`, `(null)`)."""
    total = 0
    for item in gres.split(","):
        m = re.match(r"gpu(?::[^:(]+)?:(\d+)", item.strip())
        if m:
            total += int(m.group(1))
    return total


def _number(text: str) -> int:
    """sinfo's count (`4000`, `4000+` where nodes differ) as an int."""
    return int(re.sub(r"\D", "", text) or 0)


def check_fits(slurm: dict, run: str, where: str) -> None:
    """RobustscaleError before submitting when no `nodes` nodes of the run's partition have the CPUs
    (tasks_per_node x cpus_per_task), memory (mem_gb) and GPUs (gpus_per_node) it asks for per node:
    such a job would pend forever (PartitionConfig)."""
    rows = _run(["sinfo", "-h", "-N", "-o", "%P|%N|%c|%m|%G"])
    if rows.returncode != 0:
        raise RobustscaleError(f"executor: slurm: sinfo failed ({_last_line(rows.stderr)})")
    nodes: dict[str, list[tuple[str, int, int, int]]] = {}
    default = None
    for line in rows.stdout.splitlines():
        part, node, cpus, mem, gres = line.split("|")
        if part.endswith("*"):
            part = default = part[:-1]
        nodes.setdefault(part, []).append((node, _number(cpus), _number(mem), _gpus(gres)))
    partition = slurm.get("partition") or default
    if partition not in nodes:
        raise RobustscaleError(f"{where}: slurm.partition: {partition!r} is not a partition of this cluster "
                               f"(sinfo lists: {', '.join(sorted(nodes))})")
    cpus = tasks_per_node(slurm) * int(slurm.get("cpus_per_task") or 1)
    mem_mb = int(float(slurm.get("mem_gb") or 0) * 1024)
    gpus = int(slurm.get("gpus_per_node") or 0)
    fit = {n for n, c, m, g in nodes[partition] if c >= cpus and m >= mem_mb and g >= gpus}
    want = int(slurm.get("nodes") or 1)
    if len(fit) < want:
        biggest = max(nodes[partition], key=lambda n: (n[1], n[2], n[3]))
        raise RobustscaleError(
            f"{where}: slurm: run {run} asks for {want} node(s) with {cpus} CPUs ({tasks_per_node(slurm)} "
            f"tasks x {slurm.get('cpus_per_task') or 1} cpus_per_task), {mem_mb} MB (mem_gb) and {gpus} GPUs "
            f"each; partition {partition} has {len(fit)} such node(s) (largest: {biggest[1]} CPUs, "
            f"{biggest[2]} MB, {biggest[3]} GPUs): lower the request or choose another partition")


def queue_states(job_ids: list[str]) -> dict[str, tuple[str, str]] | None:
    """job id -> (state, reason) for the jobs Slurm still lists; None when squeue did not answer."""
    if not job_ids:
        return {}
    r = _run(["squeue", "-h", "-r", "-j", ",".join(job_ids), "-o", "%i|%T|%r"])
    if r.returncode != 0 and "Invalid job id" not in r.stderr:
        return None
    states = {}
    for line in r.stdout.splitlines():
        job, state, reason = line.split("|", 2)
        states[job] = (state, reason)
    return states


def final_state(job_id: str) -> tuple[str, float | None]:
    """(state, end time as a Unix time) from accounting; ("UNKNOWN", None) when sacct cannot tell."""
    r = _run(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "JobID,State,End"])
    for line in r.stdout.splitlines():
        job, state, end = line.split("|")
        if job == job_id:
            try:
                return state, datetime.fromisoformat(end).timestamp()
            except ValueError:
                return state, None
    return "UNKNOWN", None


def job_state_now(job_id: str) -> str:
    """A running job's state as accounting has it (`CANCELLED by 0` the moment it is scancelled, while
    the controller still says COMPLETING), else the controller's JobState, else UNKNOWN."""
    r = _run(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"])
    if r.returncode == 0 and r.stdout.strip():
        return r.stdout.strip().splitlines()[-1]
    m = re.search(r"JobState=(\S+)", _run(["scontrol", "-o", "show", "job", job_id]).stdout)
    return m.group(1) if m else "UNKNOWN"


def cancel(job_id: str) -> None:
    _run(["scancel", job_id])
