"""Scaling-study sweeps: a study file (YAML or TOML) -> a grid of training runs -> local or Slurm.

A study file describes the grid once (paper §3.1: models x sample budgets x data sources):

    dataset: fashion-mnist          # the real data: held-out set, attack radius
    data_dir: null                  # where the real data lives (null -> the dataset's default)
    out: runs                       # run directories go under here (relative to the study file)
    models: [wrn-10-1, {name: wrn-16-1, slurm: {cpus_per_task: 2}}]   # per-run Slurm resources
    samples: [1024, 2k, 4k]         # sample budgets D (k/M suffixes allowed)
    sources:                        # real data alone, and synthetic stores with their FID
      - name: real
      - {name: edm-20, path: stores/edm20, fid: 1.82}
    baselines: [4k]                 # budgets at which a standard (non-adversarial) run is added too
    train: {batch_size: 128, lr: 0.1, attack_steps: 3}         # TrainConfig overrides
    evaluation: {eval_every: 512, eval_images: 256, eval_steps: 40}   # held-out PGD-CW attack
    slurm: {partition: debug, cpus_per_task: 2, mem_gb: 8, timeout_min: 120, gpus_per_node: 0}

`load_study(path)` validates everything (models, budgets, sources, overrides) before anything
runs; `run_sweep(study, executor="local"|"slurm")` skips finished runs (result.json present),
resumes interrupted ones from their checkpoint, and reports failures at the end instead of
stopping at the first one.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from robustscale.errors import RobustscaleError

STUDY_KEYS = ("dataset", "data_dir", "out", "models", "samples", "sources", "baselines", "train",
              "evaluation", "slurm", "name")
# Evaluation attack settings of a run (§3.1: PGD-40 on the CW loss on held-out images).
EVALUATION_KEYS = ("eval_every", "eval_images", "eval_steps")
# Keys the study fixes per run: overriding them in `train:` would break the grid.
GRID_KEYS = ("model", "dataset", "data_dir", "samples", "out", "synthetic", "mode")
SLURM_KEYS = ("partition", "cpus_per_task", "gpus_per_node", "mem_gb", "timeout_min", "nodes",
              "tasks_per_node", "constraint", "account", "qos", "additional_parameters")
DEFAULT_SLURM = {"cpus_per_task": 2, "mem_gb": 8, "timeout_min": 24 * 60, "gpus_per_node": 0}
REAL_SOURCE = "real"


@dataclasses.dataclass(frozen=True)
class StudyRun:
    """One training run of the grid: its name, its TrainConfig dict and its Slurm resources."""

    name: str
    model: str
    samples: int
    source: str
    fid: float
    mode: str
    config: dict[str, Any]
    slurm: dict[str, Any]

    @property
    def out(self) -> Path:
        return Path(self.config["out"])

    @property
    def finished(self) -> bool:
        return (self.out / "result.json").is_file()


@dataclasses.dataclass
class Study:
    path: Path
    out: Path
    runs: list[StudyRun]


def _read_file(path: Path) -> dict:
    if not path.is_file():
        raise RobustscaleError(f"{path}: no such study file")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            raise RobustscaleError(f"{path}: expected a .yaml, .yml or .toml study file")
    except RobustscaleError:
        raise
    except Exception as e:  # yaml/tomllib parse errors
        raise RobustscaleError(f"{path}: not valid {path.suffix[1:].upper()} ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise RobustscaleError(f"{path}: expected a mapping of study settings at the top level")
    return data


def _as_list(data: dict, key: str, where: str, required: bool = True) -> list:
    value = data.get(key)
    if value is None:
        if required:
            raise RobustscaleError(f"{where}: {key}: required (expected a non-empty list)")
        return []
    if not isinstance(value, list) or (required and not value):
        raise RobustscaleError(f"{where}: {key}: expected a non-empty list, got {value!r}")
    return value


def _budget(value: Any, field: str) -> int:
    from robustscale.train.config import parse_samples

    return parse_samples(value, field)


def _slurm(value: Any, field: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RobustscaleError(f"{field}: expected a mapping of Slurm resources, got {value!r}")
    unknown = sorted(set(value) - set(SLURM_KEYS))
    if unknown:
        raise RobustscaleError(f"{field}.{unknown[0]}: unknown Slurm resource (known: {', '.join(SLURM_KEYS)})")
    return dict(value)


def _source(entry: Any, field: str, base: Path) -> dict:
    """{"name", "path" (None for real data), "fid", "real_fraction"?}, the store checked on disk."""
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict) or "name" not in entry:
        raise RobustscaleError(f"{field}: expected 'real' or a mapping with name, path and fid")
    unknown = sorted(set(entry) - {"name", "path", "fid", "real_fraction"})
    if unknown:
        raise RobustscaleError(f"{field}.{unknown[0]}: unknown source key (known: name, path, fid, real_fraction)")
    name = str(entry["name"])
    if entry.get("path") is None:
        if name != REAL_SOURCE:
            raise RobustscaleError(f"{field}.path: source {name!r} needs the path of its synthetic store "
                                   f"(only '{REAL_SOURCE}' may omit it)")
        return {"name": name, "path": None, "fid": 0.0}
    path = (base / str(entry["path"])).resolve()
    if not path.exists():
        raise RobustscaleError(f"{field}.path: data source {name!r} not found at {path}")
    fid = entry.get("fid")
    if fid is None:
        from robustscale.data.store import open_store

        fid = open_store(path).fid
    if not isinstance(fid, (int, float)) or isinstance(fid, bool) or fid < 0:
        raise RobustscaleError(f"{field}.fid: expected the source's FID, a number >= 0, got {fid!r}")
    out = {"name": name, "path": str(path), "fid": float(fid)}
    if "real_fraction" in entry:
        out["real_fraction"] = entry["real_fraction"]
    return out


def _samples_label(n: int) -> str:
    for div, suffix in ((10**9, "B"), (10**6, "M"), (10**3, "k")):
        if n >= div and n % div == 0:
            return f"{n // div}{suffix}"
    return str(n)


def load_study(path: str | os.PathLike) -> Study:
    """Read and validate a study file into its grid of runs; nothing is launched.

    Raises RobustscaleError naming the field (e.g. `models[1]`, `samples[0]`, `sources[1].path`).
    """
    path = Path(path)
    data = _read_file(path)
    where = str(path)
    unknown = sorted(set(data) - set(STUDY_KEYS))
    if unknown:
        raise RobustscaleError(f"{where}: {unknown[0]}: unknown study key (known: {', '.join(STUDY_KEYS)})")
    base = path.resolve().parent
    from robustscale.models.registry import parse_model_name
    from robustscale.train.config import TrainConfig

    dataset = data.get("dataset", "fashion-mnist")
    data_dir = data.get("data_dir")
    if data_dir is not None:
        data_dir = str((base / str(data_dir)).resolve())
    out = (base / str(data.get("out", "runs"))).resolve()

    models = []
    for i, entry in enumerate(_as_list(data, "models", where)):
        if isinstance(entry, dict):
            extra = sorted(set(entry) - {"name", "slurm"})
            if "name" not in entry or extra:
                raise RobustscaleError(f"{where}: models[{i}]: expected a name or {{name, slurm}}")
            name, slurm = str(entry["name"]), _slurm(entry.get("slurm"), f"{where}: models[{i}].slurm")
        else:
            name, slurm = str(entry), {}
        try:
            parse_model_name(name)
        except RobustscaleError as e:
            raise RobustscaleError(f"{where}: models[{i}]: {e}") from None
        models.append((name, slurm))
    try:
        budgets = [_budget(s, f"samples[{i}]") for i, s in enumerate(_as_list(data, "samples", where))]
        baselines = [_budget(s, f"baselines[{i}]")
                     for i, s in enumerate(_as_list(data, "baselines", where, required=False))]
    except RobustscaleError as e:
        raise RobustscaleError(f"{where}: {e}") from None
    sources = [_source(s, f"{where}: sources[{i}]", base)
               for i, s in enumerate(_as_list(data, "sources", where))]
    names = [s["name"] for s in sources]
    if len(set(names)) != len(names):
        raise RobustscaleError(f"{where}: sources: names must be unique, got {names}")

    overrides = {}
    for key, allowed in (("train", None), ("evaluation", EVALUATION_KEYS)):
        section = data.get(key) or {}
        if not isinstance(section, dict):
            raise RobustscaleError(f"{where}: {key}: expected a mapping of TrainConfig fields")
        for field in section:
            if field in GRID_KEYS or (allowed is not None and field not in allowed):
                known = ", ".join(allowed) if allowed else "any TrainConfig field but " + ", ".join(GRID_KEYS)
                raise RobustscaleError(f"{where}: {key}.{field}: not settable here (expected {known})")
        overrides.update(section)
    study_slurm = {**DEFAULT_SLURM, **_slurm(data.get("slurm"), f"{where}: slurm")}

    runs = []
    for model, model_slurm in models:
        for source in sources:
            grid = [(s, "trades") for s in budgets] + [(s, "standard") for s in baselines]
            for samples, mode in grid:
                name = f"{model}_{source['name']}_{_samples_label(samples)}"
                if mode == "standard":
                    name += "_standard"
                config = {**overrides, "model": model, "dataset": dataset, "data_dir": data_dir,
                          "samples": samples, "out": str(out / name), "mode": mode,
                          "synthetic": [source["path"]] if source["path"] else []}
                if "real_fraction" in source:
                    config["real_fraction"] = source["real_fraction"]
                try:
                    TrainConfig.from_dict(config)  # every override checked before anything runs
                except RobustscaleError as e:
                    raise RobustscaleError(f"{where}: train: {e}") from None
                runs.append(StudyRun(name, model, samples, source["name"], source["fid"], mode, config,
                                     {**study_slurm, **model_slurm}))
    seen = set()
    for r in runs:
        if r.name in seen:
            raise RobustscaleError(f"{where}: run {r.name!r} appears twice in the grid (duplicate model or budget)")
        seen.add(r.name)
    return Study(path=path, out=out, runs=runs)


def plan(study: Study) -> dict:
    """The grid with each run's training FLOPs (App. B: 27 forwards per sample) and the total."""
    from robustscale.flops import flops_summary

    summaries: dict[str, dict] = {}
    rows = []
    for r in study.runs:
        if r.model not in summaries:
            summaries[r.model] = flops_summary(r.model)
        s = summaries[r.model]
        # standard training costs 3 forward-equivalents per sample, not TRADES' 27 (App. B).
        per_sample = s["train_flops_per_sample"] if r.mode == "trades" else 3 * s["forward_flops"]
        rows.append({"run": r.name, "model": r.model, "params": s["params"], "source": r.source,
                     "fid": r.fid, "samples": r.samples, "mode": r.mode,
                     "flops": per_sample * r.samples, "finished": r.finished, "out": str(r.out)})
    return {"study": str(study.path), "out": str(study.out), "runs": rows,
            "total_flops": sum(r["flops"] for r in rows),
            "todo_flops": sum(r["flops"] for r in rows if not r["finished"])}


def run_one(config: dict) -> dict:
    """Train one run to completion, resuming from its checkpoint if one exists; result.json content."""
    from robustscale.train import TrainConfig, train

    cfg = TrainConfig.from_dict(config)
    if (Path(cfg.out) / "checkpoint.pt").is_file():  # the log line a requeued Slurm job leaves
        print(f"[sweep] resuming {cfg.out} from its checkpoint", file=sys.stderr, flush=True)
    # resume=True also covers a run killed before its first checkpoint: it then starts afresh.
    return train(cfg, resume=True, progress=False)


class SlurmRun:
    """The callable a Slurm job runs. On preemption/timeout submitit calls `checkpoint`, which
    requeues the same call; `run_one` then resumes from the run's own checkpoint.pt."""

    def __init__(self, config: dict):
        self.config = config

    def __call__(self) -> dict:
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
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[-1] if text else ''}"


def run_sweep(study: Study, executor: str = "local", max_parallel: int = 1,
              on_run: Callable[[StudyRun, str], None] | None = None, cluster: str | None = None) -> SweepResult:
    """Run every unfinished run of the study; failures are collected, not raised.

    executor: "local" (in this process, in grid order; with max_parallel > 1, that many worker
    processes) or "slurm" (one submitit job per run, job arrays grouped by resources, at most
    max_parallel running at once). cluster: submitit cluster for "slurm" ("slurm" unless a test
    passes "local", submitit's stand-in). on_run(run, state) is called as runs start/finish.
    """
    if executor not in ("local", "slurm"):
        raise RobustscaleError(f"--executor: expected local or slurm, got {executor!r}")
    if max_parallel < 1:
        raise RobustscaleError(f"--max-parallel: expected an integer >= 1, got {max_parallel}")
    t0 = time.perf_counter()
    notify = on_run or (lambda run, state: None)
    skipped = [r.name for r in study.runs if r.finished]
    todo = [r for r in study.runs if not r.finished]
    for r in study.runs:
        if r.finished:
            notify(r, "skipped")
    if executor == "local":
        finished, failed = _run_local(todo, max_parallel, notify)
    else:
        finished, failed = _run_slurm(study, todo, max_parallel, notify, cluster or "slurm")
    return SweepResult(finished, skipped, failed, time.perf_counter() - t0)


def _run_local(todo: list[StudyRun], max_parallel: int, notify) -> tuple[list[str], dict[str, str]]:
    finished, failed = [], {}
    if max_parallel == 1:
        for r in todo:
            notify(r, "running")
            try:
                run_one(r.config)
            except Exception as e:  # one broken run must not stop the study
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


def _executor_parameters(slurm: dict, max_parallel: int, cluster: str) -> dict:
    s = dict(slurm)
    params: dict[str, Any] = {"timeout_min": s.pop("timeout_min"), "slurm_array_parallelism": max_parallel}
    for key in ("cpus_per_task", "gpus_per_node", "mem_gb", "nodes", "tasks_per_node"):
        if key in s:
            params[key] = s.pop(key)
    if not params.get("gpus_per_node"):
        params.pop("gpus_per_node", None)
    if cluster == "slurm":
        for key in ("partition", "constraint", "account", "qos", "additional_parameters"):
            if key in s:
                params[f"slurm_{key}"] = s.pop(key)
    return params


def _run_slurm(study: Study, todo: list[StudyRun], max_parallel: int, notify,
               cluster: str) -> tuple[list[str], dict[str, str]]:
    import submitit

    if cluster == "slurm" and not shutil.which("sbatch"):
        raise RobustscaleError("--executor slurm: no Slurm here (sbatch not found on PATH)")
    folder = study.out / ".submitit" / "%j"
    groups: dict[str, list[StudyRun]] = {}
    for r in todo:  # one job array per distinct resource request
        groups.setdefault(repr(sorted(r.slurm.items())), []).append(r)
    jobs = []
    for runs in groups.values():
        ex = submitit.AutoExecutor(folder=folder, cluster=cluster)
        ex.update_parameters(name=study.path.stem, **_executor_parameters(runs[0].slurm, max_parallel, cluster))
        with ex.batch():
            batch = [ex.submit(SlurmRun(r.config)) for r in runs]
        jobs.extend(zip(runs, batch))
    for r, job in jobs:
        notify(r, f"submitted {job.job_id}")
    finished, failed = [], {}
    for r, job in jobs:
        try:
            job.result()
        except Exception as e:  # submitit re-raises the job's error (or its failure to start)
            failed[r.name] = f"job {job.job_id}: {_reason(e)}"
            notify(r, "failed")
            continue
        finished.append(r.name)
        notify(r, "finished")
    return finished, failed
