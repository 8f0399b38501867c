"""Running a sweep's grid: in this process (or a local process pool), or one Slurm job per run.

`run_sweep(sweep, executor="local"|"slurm")` skips finished runs (result.json present), resumes
interrupted ones from their checkpoint, and reports failures at the end instead of stopping at
the first one. The local executor runs every run as one process, whatever its Slurm resources.
Whatever the executor, a run folder is claimed before anything trains in it (`sweep.claims`): a
second process finding a live claim waits while its holder trains, and never writes beside it.

The interface for callers (the CLI, the demo, adaptive rounds): `run_sweep(sweep, executor,
max_parallel, on_run)` -> `SweepResult`; `on_run(run, state)` gets one plain line per state change,
its first word the kind (`state_kind`): `skipped`, `running`, `submitted JOBID`, `reattached JOBID`,
`pending: REASON`, `finished`, `failed: REASON`, `cancelled: REASON`.

On Slurm (submitit), a run asking for more than one task is one DDP job: every task exports
RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT from the Slurm environment before
training, sets its threads from its CPUs, rank 0 alone writes, and a requeued job (preemption,
timeout, `scontrol requeue`) resumes every rank from the run's checkpoint.pt. The sweep submits at
most max_parallel jobs at a time over all its runs, keeps their ids in `sweep-jobs.json` in its
folder and, rerun after being killed, reattaches to those still queued or running. It polls the
jobs itself: a cancelled job is a cancelled run (unless it finished before the cancel), a failed
one a failed run, a job pending for a reason that never clears an error, and a job whose state
Slurm cannot report (no accounting, not in the queue) fails after `state_timeout_s` instead of
blocking the sweep forever.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from robustscale.data.datasets import check_dataset
from robustscale.errors import RobustscaleError
from robustscale.fileio import write_json
from robustscale.rundir import RunDir
from robustscale.sweep import slurm
from robustscale.sweep.claims import claim_run
from robustscale.sweep.spec import SweepRun, SweepSpec, tasks_per_node

if TYPE_CHECKING:
    from robustscale.train.config import TrainConfig

POLL_S = 2.0  # seconds between two looks at the submitted jobs (one squeue and one sacct call for all)
STATE_TIMEOUT_S = 300.0  # a job neither in the queue nor in accounting for this long has failed
PENDING_REPORT_S = 60.0  # a pending job's reason is said again this often
JOBS_FILE = "sweep-jobs.json"  # in the sweep's folder: run -> the Slurm job submitted for it
ENDED = ("skipped", "finished", "failed", "cancelled")  # state kinds after which a run is done


def state_kind(state: str) -> str:
    """The first word of an on_run state line: `failed: ...` -> `failed`, `submitted 12_0` -> `submitted`."""
    return state.split(":")[0].split()[0]


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
    """Claim the run's folder, train it to completion (resuming from its checkpoint if one exists) and
    let the folder go; result.json content. While another live job trains the same folder, wait for
    it (its finished result is then this one's); a claim held by a job that is only queued raises
    claims.RunClaimed."""
    from robustscale.train import TrainConfig, train
    from robustscale.train.distributed import is_main_process

    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    main = is_main_process()
    claim = claim_run(cfg.out, wait_s=float("inf"))
    try:
        if RunDir(cfg.out).has_checkpoint() and main:
            # a requeue's trace in the job's log
            print(f"[sweep] resuming {cfg.out} from its checkpoint", file=sys.stderr, flush=True)
        # resume=True also covers a run killed before its first checkpoint: it then starts afresh.
        return train(cfg, resume=True, progress=False)
    finally:
        claim.release(mark=main)


def _stop_if_cancelled(signum, frame) -> None:
    """SIGTERM handler of a Slurm task. submitit ignores SIGTERM, because Slurm also sends it on
    preemption and timeouts (which submitit handles through USR2 and a requeue); left at that, an
    scancelled run goes on training for KillWait seconds and may finish. Here a thread asks the
    controller (the main thread may be deep in a long torch call) and, when the job was cancelled,
    ends the process at once, before it writes anything more; anything else is left to submitit."""
    from robustscale.sweep.claims import this_job_id

    def check() -> None:
        if slurm.job_state_now(os.environ.get("SLURM_JOB_ID") or this_job_id()).startswith("CANCELLED"):
            print(f"[sweep] job {this_job_id()}: cancelled (scancel) while training; stopped",
                  file=sys.stderr, flush=True)
            os._exit(128 + signal.SIGTERM)

    print("[sweep] SIGTERM: asking Slurm whether the job was cancelled", file=sys.stderr, flush=True)
    threading.Thread(target=check, daemon=True).start()


class SlurmRun:
    """The callable every task of a Slurm job runs. On preemption/timeout submitit calls `checkpoint`,
    which requeues the same call; `run_one` then resumes from the run's own checkpoint.pt."""

    def __init__(self, config: dict):
        self.config = config

    def __call__(self) -> dict:
        import submitit

        from robustscale.train.distributed import set_threads_from_allocation

        # A previous attempt's result of this task (a rank that failed when its peer was preempted)
        # must not stand for this attempt's.
        submitit.JobEnvironment().paths.result_pickle.unlink(missing_ok=True)
        signal.signal(signal.SIGTERM, _stop_if_cancelled)
        set_threads_from_allocation()
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
    cancelled: dict[str, str] = dataclasses.field(default_factory=dict)  # run -> job and Slurm state
    jobs: dict[str, str] = dataclasses.field(default_factory=dict)  # run -> Slurm job id (slurm executor)

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
    """Run every unfinished run of the sweep; failed and cancelled runs are collected, not raised.

    executor: "local" (in this process, in grid order; with max_parallel > 1, that many worker
    processes) or "slurm" (one submitit job per run, job arrays grouped by resources; max_parallel
    counts the sweep's jobs queued or running at once, over all arrays and resource groups).
    cluster: submitit cluster for "slurm" ("slurm", or submitit's "local" stand-in). on_run(run,
    state) gets each state change as one plain line (see the module docstring). state_timeout_s: how
    long a Slurm job may be unknown to both the queue and accounting before it counts as failed.
    Raises RobustscaleError when Slurm is unreachable, a partition cannot fit a run, or a job pends
    for a reason that never clears (its job is cancelled first).
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
        return SweepResult(finished, skipped, failed, time.perf_counter() - t0)
    runner = _run_slurm(sweep, todo, max_parallel, notify, cluster or "slurm", state_timeout_s)
    jobs = {name: entry["job_id"] for name, entry in runner.record.items() if name in {r.name for r in todo}}
    return SweepResult(runner.finished, skipped, runner.failed, time.perf_counter() - t0, runner.cancelled,
                       jobs)


def _run_local(todo: list[SweepRun], max_parallel: int, notify) -> tuple[list[str], dict[str, str]]:
    finished, failed = [], {}
    if max_parallel == 1:
        for r in todo:
            notify(r, "running")
            try:
                run_one(r.config)
            except Exception as e:  # one broken run must not stop the sweep
                failed[r.name] = _reason(e)
                notify(r, f"failed: {failed[r.name]}")
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
                notify(r, f"failed: {failed[r.name]}")
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


def _job_record_path(sweep: SweepSpec) -> Path:
    return sweep.out / JOBS_FILE


def read_job_record(sweep: SweepSpec) -> dict[str, dict]:
    """run name -> {"job_id", "tasks", "submitted"}: the Slurm jobs the sweep submitted (in its folder)."""
    try:
        return json.loads(_job_record_path(sweep).read_text())
    except (OSError, ValueError):
        return {}


class _SlurmSweep:
    """Submits the sweep's runs at most max_parallel at a time (sweep-wide, over every resource
    group), reattaches to the jobs a previous invocation left queued or running, and polls them."""

    def __init__(self, sweep: SweepSpec, max_parallel: int, notify, cluster: str, state_timeout_s: float):
        self.sweep, self.max_parallel, self.notify = sweep, max_parallel, notify
        self.cluster, self.state_timeout_s = cluster, state_timeout_s
        self.folder = sweep.out / ".submitit" / "%j"
        self.record = read_job_record(sweep)
        self.active: list[tuple[SweepRun, Any]] = []  # (run, submitit job) submitted and not yet ended
        self.finished: list[str] = []
        self.failed: dict[str, str] = {}
        self.cancelled: dict[str, str] = {}
        self.unknown_since: dict[str, float] = {}
        self.pending_said: dict[str, tuple[str, float]] = {}  # job -> (reason, when last printed)

    @property
    def real(self) -> bool:
        return self.cluster == "slurm"

    def run(self, todo: list[SweepRun]) -> None:
        queue = self._reattach(todo)
        while queue or self.active:
            free = self.max_parallel - len(self.active)
            if free > 0 and queue:
                self._submit(queue[:free])
                queue = queue[free:]
            self._poll()
            if self.active:
                time.sleep(POLL_S)

    def _reattach(self, todo: list[SweepRun]) -> list[SweepRun]:
        """Runs whose recorded job Slurm still lists are watched again, not submitted twice."""
        import submitit

        if not self.real:
            return list(todo)
        recorded = {r.name: self.record[r.name]["job_id"] for r in todo if r.name in self.record}
        listed = slurm.queue_states(list(recorded.values())) or {}
        queue = []
        for r in todo:
            job_id = recorded.get(r.name)
            if job_id in listed:
                job = submitit.SlurmJob(self.folder, job_id, tasks=range(r.world_size))
                self.active.append((r, job))
                self.notify(r, f"reattached {job_id}")
            else:
                queue.append(r)
        return queue

    def _submit(self, runs: list[SweepRun]) -> None:
        import submitit
        from submitit.core.utils import FailedJobError

        groups: dict[str, list[SweepRun]] = {}
        for r in runs:  # one job array per distinct resource request
            groups.setdefault(repr(sorted(r.slurm.items())), []).append(r)
        for group in groups.values():
            ex = submitit.AutoExecutor(folder=self.folder, cluster=self.cluster)
            ex.update_parameters(name=self.sweep.path.stem,
                                 **executor_parameters(group[0].slurm, len(group), self.cluster))
            try:
                with ex.batch():
                    jobs = [ex.submit(SlurmRun(r.config)) for r in group]
            except FailedJobError as e:
                raise RobustscaleError(f"executor: slurm: sbatch refused the jobs of {group[0].name} "
                                       f"({_reason(e)})") from None
            for r, job in zip(group, jobs, strict=True):
                self.record[r.name] = {"job_id": job.job_id, "tasks": r.world_size, "submitted": time.time()}
            if self.real:  # kept before anything else can go wrong: a rerun reattaches to these jobs
                write_json(_job_record_path(self.sweep), self.record)
            for r, job in zip(group, jobs, strict=True):
                self.active.append((r, job))
                self.notify(r, f"submitted {job.job_id}")

    def _poll(self) -> None:
        if not self.active:
            return
        if self.real:
            self.active[0][1].get_info(mode="force")  # one sacct call refreshes every registered job
            listed = slurm.queue_states([job.job_id for _, job in self.active])
        else:
            listed = {}
        still = []
        for r, job in self.active:
            if listed is None:  # squeue did not answer this time: look again next time
                still.append((r, job))
            elif job.job_id in listed:
                self._queued(r, job, *listed[job.job_id])
                still.append((r, job))
            elif job.done():
                self._ended(r, job)
            elif self.real and job.state.upper() == "UNKNOWN":
                first = self.unknown_since.setdefault(job.job_id, time.monotonic())
                if time.monotonic() - first > self.state_timeout_s:
                    self._end(r, "failed", f"job {job.job_id}: neither in the queue nor in Slurm accounting "
                                           f"for {self.state_timeout_s:.0f} s (is slurmdbd running?)")
                else:
                    still.append((r, job))
            else:
                still.append((r, job))
        self.active = still

    def _queued(self, r: SweepRun, job, state: str, reason: str) -> None:
        """A job Slurm still lists: say why it pends (once a minute), give up on reasons that never clear."""
        self.unknown_since.pop(job.job_id, None)
        if state != "PENDING":
            self.pending_said.pop(job.job_id, None)
            return
        if reason in slurm.NEVER_CLEARS:
            slurm.cancel(job.job_id)  # the one job the sweep submitted for this run
            raise RobustscaleError(f"run {r.name}: job {job.job_id} can never start (pending: {reason}); "
                                   f"cancelled it — fix the run's slurm resources or the partition")
        if reason == "None":  # the scheduler has not looked at it yet
            return
        said, when = self.pending_said.get(job.job_id, ("", 0.0))
        if reason != said or time.monotonic() - when >= PENDING_REPORT_S:
            self.pending_said[job.job_id] = (reason, time.monotonic())
            self.notify(r, f"pending: {reason}")

    def _ended(self, r: SweepRun, job) -> None:
        """A job that left the queue: finished, cancelled (unless it finished before the cancel) or failed."""
        from submitit.core.utils import UncompletedJobError

        state, end = slurm.final_state(job.job_id) if self.real else (job.state, None)
        result = r.out / "result.json"
        if state.upper().startswith("CANCELLED"):  # whatever the job wrote after the scancel
            done_before = result.is_file() and end is not None and result.stat().st_mtime < end
            self._end(r, "finished" if done_before else "cancelled", f"job {job.job_id}: {state}")
            return
        try:
            job.results()  # every task's; rank 0 wrote result.json
        except UncompletedJobError:
            self._end(r, "failed", f"job {job.job_id}: ended without a result (Slurm state {state})")
            return
        except Exception as e:  # submitit re-raises the job's error
            self._end(r, "failed", f"job {job.job_id}: {_reason(e)}")
            return
        self._end(r, "finished", "")

    def _end(self, r: SweepRun, outcome: str, reason: str) -> None:
        if outcome == "finished":
            self.finished.append(r.name)
            self.notify(r, "finished")
        else:
            (self.cancelled if outcome == "cancelled" else self.failed)[r.name] = reason
            self.notify(r, f"{outcome}: {reason}")


def _run_slurm(sweep: SweepSpec, todo: list[SweepRun], max_parallel: int, notify, cluster: str,
               state_timeout_s: float) -> _SlurmSweep:
    if cluster == "slurm":
        slurm.check_reachable()
        seen = set()
        for r in todo:  # before anything is submitted: a request no node fits would pend forever
            key = repr(sorted(r.slurm.items()))
            if key not in seen:
                seen.add(key)
                slurm.check_fits(r.slurm, r.name, str(sweep.path))
    runner = _SlurmSweep(sweep, max_parallel, notify, cluster, state_timeout_s)
    runner.run(todo)
    return runner
