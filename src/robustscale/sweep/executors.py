"""Running a sweep's grid: in this process (or a local process pool), or one Slurm job per run.

`run_sweep(sweep, executor="local"|"slurm")` skips finished runs (result.json present), resumes
interrupted ones from their checkpoint, and reports failures at the end instead of stopping at
the first one. The local executor runs every run as one process, whatever its Slurm resources.

On Slurm (submitit), a run asking for more than one task is one DDP job: every task exports
RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT from the Slurm environment before
training, rank 0 alone writes, and a requeued job (preemption, timeout, `scontrol requeue`)
resumes every rank from the run's checkpoint.pt. The sweep polls the jobs' states itself: a
cancelled or killed job is a failed run as soon as Slurm accounting says so, and a job whose
state Slurm cannot report (no accounting, not in the queue) fails after `state_timeout_s`
instead of blocking the sweep forever.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import time
import traceback
from typing import TYPE_CHECKING, Any, Callable

from robustscale.data.datasets import check_dataset
from robustscale.errors import RobustscaleError
from robustscale.rundir import RunDir
from robustscale.sweep.spec import SweepRun, SweepSpec, tasks_per_node

if TYPE_CHECKING:
    from robustscale.train.config import TrainConfig

POLL_S = 2.0  # seconds between two looks at the submitted jobs (one sacct call for all of them)
STATE_TIMEOUT_S = 300.0  # a job neither in the queue nor in accounting for this long has failed


def export_slurm_distributed() -> int:
    """In a Slurm task of a multi-task job, set torch.distributed's environment; return the world size.

    submitit's TorchDistributedEnvironment reads SLURM_* (first host of the job as master, a port
    derived from the job id, so a requeued job meets at the same address). CUDA_VISIBLE_DEVICES is
    left alone: the trainer picks `cuda:LOCAL_RANK` among the node's GPUs, as under torchrun.
    """
    from submitit.helpers import TorchDistributedEnvironment

    env = TorchDistributedEnvironment()
    if env.world_size > 1:
        env.export(set_cuda_visible_devices=False, overwrite=True)
    return env.world_size


def run_one(config: TrainConfig | dict) -> dict:
    """Train one run to completion, resuming from its checkpoint if one exists; result.json content."""
    from robustscale.train import TrainConfig, train
    from robustscale.train.distributed import is_main_process

    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    if RunDir(cfg.out).has_checkpoint() and is_main_process():
        print(f"[sweep] resuming {cfg.out} from its checkpoint", file=sys.stderr, flush=True)  # a requeue's trace
    # resume=True also covers a run killed before its first checkpoint: it then starts afresh.
    return train(cfg, resume=True, progress=False)


class SlurmRun:
    """The callable every task of a Slurm job runs. On preemption/timeout submitit calls `checkpoint`,
    which requeues the same call; `run_one` then resumes from the run's own checkpoint.pt."""

    def __init__(self, config: dict):
        self.config = config

    def __call__(self) -> dict:
        import submitit

        # A previous attempt's result of this task (a rank that failed when its peer was preempted)
        # must not stand for this attempt's.
        submitit.JobEnvironment().paths.result_pickle.unlink(missing_ok=True)
        export_slurm_distributed()
        return run_one(self.config)

    def checkpoint(self):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(SlurmRun(self.config))


@dataclasses.dataclass
class SweepResult:
    finished: list[str]  # completed by this sweep
    skipped: list[str]  # already finished before it
    failed: dict[str, str]  # run -> one-line reason
    wall_s: float

    def asdict(self) -> dict:
        return dataclasses.asdict(self)


def _reason(e: BaseException) -> str:
    """One line: the exception's last line (for a failed Slurm job, the last line of the job's traceback)."""
    text = str(e)
    if "----------------------" in text:  # submitit's FailedJobError wraps the job's traceback in rules
        text = text.split("----------------------")[1]
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[-1] if lines else ''}"


def check_arguments(executor: str, max_parallel: int) -> None:
    """RobustscaleError naming the parameter when run_sweep's executor or max_parallel is invalid."""
    if executor not in ("local", "slurm"):
        raise RobustscaleError(f"executor: expected local or slurm, got {executor!r}")
    if max_parallel < 1:
        raise RobustscaleError(f"max_parallel: expected an integer >= 1, got {max_parallel}")


def run_sweep(sweep: SweepSpec, executor: str = "local", max_parallel: int = 1,
              on_run: Callable[[SweepRun, str], None] | None = None, cluster: str | None = None,
              state_timeout_s: float = STATE_TIMEOUT_S) -> SweepResult:
    """Run every unfinished run of the sweep; failures are collected, not raised.

    executor: "local" (in this process, in grid order; with max_parallel > 1, that many worker
    processes) or "slurm" (one submitit job per run, job arrays grouped by resources, at most
    max_parallel running at once). cluster: submitit cluster for "slurm" ("slurm", or submitit's
    "local" stand-in). on_run(run, state) is called as runs start/finish. state_timeout_s: how long
    a Slurm job may be unknown to both the queue and accounting before it counts as failed.
    """
    check_arguments(executor, max_parallel)
    t0 = time.perf_counter()
    notify = on_run or (lambda run, state: None)
    skipped = [r.name for r in sweep.runs if r.finished]
    todo = [r for r in sweep.runs if not r.finished]
    for r in sweep.runs:
        if r.finished:
            notify(r, "skipped")
    if executor == "local":
        # a missing dataset is one error before any work, not the same failure once per run
        for dataset, data_dir in sorted({(r.config.dataset, r.config.data_dir) for r in todo}, key=str):
            check_dataset(dataset, data_dir)
        finished, failed = _run_local(todo, max_parallel, notify)
    else:
        finished, failed = _run_slurm(sweep, todo, max_parallel, notify, cluster or "slurm", state_timeout_s)
    return SweepResult(finished, skipped, failed, time.perf_counter() - t0)


def _run_local(todo: list[SweepRun], max_parallel: int, notify) -> tuple[list[str], dict[str, str]]:
    finished, failed = [], {}
    if max_parallel == 1:
        for r in todo:
            notify(r, "running")
            try:
                run_one(r.config)
            except Exception as e:  # one broken run must not stop the sweep
                failed[r.name] = _reason(e)
                notify(r, "failed")
                traceback.print_exc()
                continue
            finished.append(r.name)
            notify(r, "finished")
        return finished, failed
    import concurrent.futures as cf
    import multiprocessing

    with cf.ProcessPoolExecutor(max_parallel, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {}
        for r in todo:
            notify(r, "running")
            futures[pool.submit(run_one, r.config)] = r
        for fut in cf.as_completed(futures):
            r = futures[fut]
            try:
                fut.result()
            except Exception as e:
                failed[r.name] = _reason(e)
                notify(r, "failed")
                continue
            finished.append(r.name)
            notify(r, "finished")
    return finished, failed


def executor_parameters(slurm: dict, max_parallel: int, cluster: str = "slurm") -> dict:
    """submitit parameters of a run's Slurm resources (one task per GPU unless tasks_per_node is given)."""
    s = dict(slurm)
    params: dict[str, Any] = {"timeout_min": s.pop("timeout_min"), "slurm_array_parallelism": max_parallel,
                              "tasks_per_node": tasks_per_node(s)}
    s.pop("tasks_per_node", None)
    for key in ("cpus_per_task", "gpus_per_node", "mem_gb", "nodes"):
        if key in s:
            params[key] = s.pop(key)
    if not params.get("gpus_per_node"):
        params.pop("gpus_per_node", None)
    if cluster == "slurm":
        for key in ("partition", "constraint", "account", "qos", "additional_parameters"):
            if key in s:
                params[f"slurm_{key}"] = s.pop(key)
    return params


def _in_queue(job_id: str) -> bool:
    r = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True)
    return r.returncode == 0 and bool(r.stdout.strip())


def _run_slurm(sweep: SweepSpec, todo: list[SweepRun], max_parallel: int, notify, cluster: str,
               state_timeout_s: float) -> tuple[list[str], dict[str, str]]:
    import submitit

    if cluster == "slurm" and not shutil.which("sbatch"):
        raise RobustscaleError("executor: slurm asked for, but there is no Slurm here (sbatch not found on PATH)")
    folder = sweep.out / ".submitit" / "%j"
    groups: dict[str, list[SweepRun]] = {}
    for r in todo:  # one job array per distinct resource request
        groups.setdefault(repr(sorted(r.slurm.items())), []).append(r)
    jobs = []
    for runs in groups.values():
        ex = submitit.AutoExecutor(folder=folder, cluster=cluster)
        ex.update_parameters(name=sweep.path.stem, **executor_parameters(runs[0].slurm, max_parallel, cluster))
        with ex.batch():
            batch = [ex.submit(SlurmRun(r.config)) for r in runs]
        jobs.extend(zip(runs, batch))
    for r, job in jobs:
        notify(r, f"submitted {job.job_id}")
    return _wait(jobs, notify, cluster, state_timeout_s)


def _wait(jobs: list, notify, cluster: str, state_timeout_s: float) -> tuple[list[str], dict[str, str]]:
    """Poll until every job has ended; never wait on a job nobody can report on."""
    from submitit.core.utils import UncompletedJobError

    finished, failed = [], {}
    pending = list(jobs)
    unknown_since: dict[str, float] = {}
    while pending:
        if cluster == "slurm":
            pending[0][1].get_info(mode="force")  # one sacct call refreshes every registered job
        still = []
        for r, job in pending:
            # every task's result is final only once the job has left the queue (a requeued job's
            # tasks rewrite theirs)
            if not job.done() or (cluster == "slurm" and _in_queue(job.job_id)):
                if job.state.upper() == "UNKNOWN" and cluster == "slurm" and not _in_queue(job.job_id):
                    first = unknown_since.setdefault(job.job_id, time.monotonic())
                    if time.monotonic() - first > state_timeout_s:
                        failed[r.name] = (f"job {job.job_id}: neither in the queue nor in Slurm accounting for "
                                          f"{state_timeout_s:.0f} s (is slurmdbd running?)")
                        notify(r, "failed")
                        continue
                else:
                    unknown_since.pop(job.job_id, None)
                still.append((r, job))
                continue
            try:
                job.results()  # every task's; rank 0 wrote result.json
            except UncompletedJobError:
                failed[r.name] = f"job {job.job_id}: ended without a result (Slurm state {job.state})"
                notify(r, "failed")
                continue
            except Exception as e:  # submitit re-raises the job's error
                failed[r.name] = f"job {job.job_id}: {_reason(e)}"
                notify(r, "failed")
                continue
            finished.append(r.name)
            notify(r, "finished")
        pending = still
        if pending:
            time.sleep(POLL_S)
    return finished, failed
