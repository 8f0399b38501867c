"""Sweep files: a YAML or TOML file -> a validated grid of training runs (`SweepSpec`), and its FLOPs.

A sweep file describes the grid once (paper §3.1: models x sample budgets x data sources):

    dataset: fashion-mnist          # the real data: held-out set, attack radius
    data_dir: null                  # where the real data lives (null -> the dataset's default)
    out: runs                       # run directories go under here (relative to the sweep file)
    models: [wrn-10-1, {name: wrn-16-1, slurm: {cpus_per_task: 2}}]   # per-run Slurm resources
    samples: [1024, 2k, 4k]         # sample budgets D (k/M suffixes allowed)
    # a model's own budgets replace `samples` for it: {name: wrn-22-1, samples: [8k]} (what
    # `robustscale suggest --out` writes: chosen runs, not a full grid; then `samples` may be left out)
    sources:                        # real data alone, and synthetic stores with their FID
      - name: real
      - {name: edm-20, path: stores/edm20, fid: 1.82}
    baselines: [4k]                 # budgets at which a standard (non-adversarial) run is added too
    design: {rounds: 2, budget_per_round: 1e14, target_flops: 1e15}   # adaptive: see sweep.design
    train: {batch_size: 128, lr: 0.1, attack_steps: 3}         # TrainConfig overrides
    evaluation: {eval_every: 512, eval_images: 256, eval_steps: 40}   # held-out PGD-CW attack
    slurm: {partition: debug, cpus_per_task: 2, mem_gb: 8, timeout_min: 120, gpus_per_node: 0}

`load_sweep(path)` validates everything (models, budgets, sources, overrides, that the batch
splits over the run's processes) before anything runs; stores are opened cheaply (manifest and
sizes, no hashing), so loading a sweep over a 300M-image store takes milliseconds. A synthetic
source's FID is the sweep file's or its store manifest's (they must agree); with neither, the
sweep is refused. Each run carries its resolved TrainConfig, source name and FID included, which
the trainer records in the run's config.json. A run whose Slurm resources ask for more than one
task (`nodes` x `tasks_per_node`) is one DDP job of that world size; with `gpus_per_node` > 1 and
no `tasks_per_node`, one task per GPU.
Running the grid is `robustscale.sweep.executors`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustscale.errors import RobustscaleError
from robustscale.rundir import RunDir

if TYPE_CHECKING:
    from robustscale.train.config import TrainConfig

SWEEP_KEYS = ("dataset", "data_dir", "out", "models", "samples", "sources", "baselines", "train",
              "evaluation", "slurm", "name", "design")
# Evaluation attack settings of a run (§3.1: PGD-40 on the CW loss; on test images by default).
EVALUATION_KEYS = ("eval_every", "eval_images", "eval_steps", "eval_split")
# Keys the sweep fixes per run: overriding them in `train:` would break the grid.
GRID_KEYS = ("model", "dataset", "data_dir", "samples", "out", "synthetic", "mode", "source", "fid")
SLURM_KEYS = ("partition", "cpus_per_task", "gpus_per_node", "mem_gb", "timeout_min", "nodes",
              "tasks_per_node", "constraint", "account", "qos", "additional_parameters")
DEFAULT_SLURM = {"cpus_per_task": 2, "mem_gb": 8, "timeout_min": 24 * 60, "gpus_per_node": 0}
REAL_SOURCE = "real"


# `design:` of an adaptive sweep (run by robustscale.sweep.design): rounds of runs chosen by `suggest`.
DESIGN_KEYS = ("rounds", "budget_per_round", "target_flops", "bootstrap")
# Resampled laws per fit: the report's default (robustscale.report.build.BOOTSTRAP_K); the paper reports none.
DEFAULT_BOOTSTRAP = 20


@dataclasses.dataclass(frozen=True)
class Design:
    rounds: int
    budget_per_round: float
    target_flops: float
    bootstrap: int = DEFAULT_BOOTSTRAP


def parse_design(value: Any, where: str) -> Design:
    """The validated `design:` section; RobustscaleError naming the field otherwise."""
    if not isinstance(value, dict):
        raise RobustscaleError(f"{where}: expected a mapping {{rounds, budget_per_round, target_flops}}, "
                               f"got {value!r}")
    unknown = sorted(set(value) - set(DESIGN_KEYS))
    if unknown:
        raise RobustscaleError(f"{where}.{unknown[0]}: unknown design key (known: {', '.join(DESIGN_KEYS)})")
    for key in ("rounds", "budget_per_round", "target_flops"):
        if key not in value:
            raise RobustscaleError(f"{where}.{key}: required")
    rounds, bootstrap = value["rounds"], value.get("bootstrap", DEFAULT_BOOTSTRAP)
    for key, v, least in (("rounds", rounds, 1), ("bootstrap", bootstrap, 0)):
        if not isinstance(v, int) or isinstance(v, bool) or v < least:
            raise RobustscaleError(f"{where}.{key}: expected a whole number >= {least}, got {v!r}")
    if bootstrap == 1:
        raise RobustscaleError(f"{where}.bootstrap: expected 0 (no intervals) or at least 2 resamples, got 1")
    numbers = {}
    for key in ("budget_per_round", "target_flops"):
        try:
            numbers[key] = float(value[key])  # YAML reads 3e13 (no dot) as a string
        except (TypeError, ValueError):
            numbers[key] = float("nan")
        if not numbers[key] > 0 or numbers[key] == float("inf"):
            raise RobustscaleError(f"{where}.{key}: expected a number of FLOPs > 0, got {value[key]!r}")
    return Design(rounds, numbers["budget_per_round"], numbers["target_flops"], bootstrap)


@dataclasses.dataclass(frozen=True)
class SweepRun:
    """One training run of the grid: its name, its resolved TrainConfig (source name and FID included)
    and its Slurm resources."""

    name: str
    model: str
    samples: int
    source: str
    fid: float
    mode: str
    config: TrainConfig
    slurm: dict[str, Any]

    @property
    def out(self) -> Path:
        return Path(self.config.out)

    @property
    def run_dir(self) -> RunDir:
        return RunDir(self.config.out)

    @property
    def finished(self) -> bool:
        return self.run_dir.is_finished()

    @property
    def world_size(self) -> int:
        """Processes of the run on Slurm: nodes x tasks per node (one DDP job)."""
        return world_size(self.slurm)


@dataclasses.dataclass
class SweepSpec:
    path: Path
    out: Path
    runs: list[SweepRun]
    design: Design | None = None  # when the file has a `design:` section (an adaptive sweep)


def tasks_per_node(slurm: dict) -> int:
    """Tasks per node: as asked, else one per GPU when several GPUs are asked for, else one."""
    if slurm.get("tasks_per_node") is not None:
        return int(slurm["tasks_per_node"])
    gpus = slurm.get("gpus_per_node") or 0
    return int(gpus) if gpus > 1 else 1


def world_size(slurm: dict) -> int:
    return int(slurm.get("nodes") or 1) * tasks_per_node(slurm)


def _read_file(path: Path) -> dict:
    if not path.is_file():
        raise RobustscaleError(f"{path}: no such sweep file")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            raise RobustscaleError(f"{path}: expected a .yaml, .yml or .toml sweep file")
    except RobustscaleError:
        raise
    except Exception as e:  # yaml/tomllib parse errors
        raise RobustscaleError(f"{path}: not valid {path.suffix[1:].upper()} "
                               f"({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise RobustscaleError(f"{path}: expected a mapping of sweep settings at the top level")
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
        raise RobustscaleError(f"{field}.{unknown[0]}: unknown Slurm resource "
                               f"(known: {', '.join(SLURM_KEYS)})")
    for key in ("nodes", "tasks_per_node", "gpus_per_node", "cpus_per_task"):
        v = value.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)
                              or v < (0 if key == "gpus_per_node" else 1)):
            raise RobustscaleError(f"{field}.{key}: expected a whole number >= "
                                   f"{0 if key == 'gpus_per_node' else 1}, "
                                   f"got {v!r}")
    return dict(value)


def _source(entry: Any, field: str, base: Path, verify: bool = False) -> dict:
    """{"name", "path" (None for real data), "fid", "real_fraction"?}, the store checked on disk."""
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict) or "name" not in entry:
        raise RobustscaleError(f"{field}: expected 'real' or a mapping with name, path and fid")
    unknown = sorted(set(entry) - {"name", "path", "fid", "real_fraction"})
    if unknown:
        raise RobustscaleError(f"{field}.{unknown[0]}: unknown source key "
                               "(known: name, path, fid, real_fraction)")
    name, fid = str(entry["name"]), entry.get("fid")
    number = isinstance(fid, (int, float)) and not isinstance(fid, bool)
    if fid is not None and not (number and math.isfinite(fid) and fid >= 0):
        raise RobustscaleError(f"{field}.fid: expected the source's FID, a number >= 0, got {fid!r}")
    if entry.get("path") is None:
        if name != REAL_SOURCE:
            raise RobustscaleError(f"{field}.path: source {name!r} needs the path of its synthetic store "
                                   f"(only '{REAL_SOURCE}' may omit it)")
        if fid:
            raise RobustscaleError(f"{field}.fid: real data's FID is 0, got {fid!r}")
        return {"name": name, "path": None, "fid": 0.0}
    path = (base / str(entry["path"])).resolve()
    if not path.exists():
        raise RobustscaleError(f"{field}.path: data source {name!r} not found at {path}")
    from robustscale.data.store import open_store, pool_fid

    try:
        store = open_store(path, verify=verify)  # without verify: manifest and sizes only, no hashing
        fid = pool_fid([store], fid)  # the sweep's FID, checked against the manifest's, or the manifest's
    except RobustscaleError as e:
        raise RobustscaleError(f"{field}: source {name!r}: {e}") from None
    out = {"name": name, "path": str(path), "fid": fid}
    if "real_fraction" in entry:
        out["real_fraction"] = entry["real_fraction"]
    return out


def _samples_label(n: int) -> str:
    for div, suffix in ((10**9, "B"), (10**6, "M"), (10**3, "k")):
        if n >= div and n % div == 0:
            return f"{n // div}{suffix}"
    return str(n)


def load_sweep(path: str | os.PathLike, verify: bool = False) -> SweepSpec:
    """Read and validate a sweep file into its grid of runs; nothing is launched.

    verify: also re-hash every synthetic store (checksums and label ranges; reads all their data).
    Raises RobustscaleError naming the field (e.g. `models[1]`, `samples[0]`, `sources[1].path`).
    """
    path = Path(path)
    data = _read_file(path)
    where = str(path)
    unknown = sorted(set(data) - set(SWEEP_KEYS))
    if unknown:
        raise RobustscaleError(f"{where}: {unknown[0]}: unknown sweep key (known: {', '.join(SWEEP_KEYS)})")
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
        own = None
        if isinstance(entry, dict):
            extra = sorted(set(entry) - {"name", "slurm", "samples"})
            if "name" not in entry or extra:
                raise RobustscaleError(f"{where}: models[{i}]: expected a name or {{name, slurm, samples}}")
            name, slurm = str(entry["name"]), _slurm(entry.get("slurm"), f"{where}: models[{i}].slurm")
            if "samples" in entry:
                try:
                    own = [_budget(s, f"models[{i}].samples[{j}]")
                           for j, s in enumerate(_as_list(entry, "samples", f"models[{i}]"))]
                except RobustscaleError as e:
                    raise RobustscaleError(f"{where}: {e}") from None
        else:
            name, slurm = str(entry), {}
        try:
            parse_model_name(name)
        except RobustscaleError as e:
            raise RobustscaleError(f"{where}: models[{i}]: {e}") from None
        models.append((name, slurm, own))
    try:
        every_own = all(own is not None for _, _, own in models)
        budgets = [_budget(s, f"samples[{i}]")
                   for i, s in enumerate(_as_list(data, "samples", where, required=not every_own))]
        baselines = [_budget(s, f"baselines[{i}]")
                     for i, s in enumerate(_as_list(data, "baselines", where, required=False))]
    except RobustscaleError as e:
        raise RobustscaleError(f"{where}: {e}") from None
    sources = [_source(s, f"{where}: sources[{i}]", base, verify)
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
    sweep_slurm = {**DEFAULT_SLURM, **_slurm(data.get("slurm"), f"{where}: slurm")}

    runs = []
    for model, model_slurm, own in models:
        for source in sources:
            grid = ([(s, "trades") for s in (budgets if own is None else own)]
                    + [(s, "standard") for s in baselines])
            for samples, mode in grid:
                name = f"{model}_{source['name']}_{_samples_label(samples)}"
                if mode == "standard":
                    name += "_standard"
                config = {**overrides, "model": model, "dataset": dataset, "data_dir": data_dir,
                          "samples": samples, "out": str(out / name), "mode": mode,
                          "synthetic": [source["path"]] if source["path"] else [],
                          "source": source["name"], "fid": source["fid"]}
                if "real_fraction" in source:
                    config["real_fraction"] = source["real_fraction"]
                slurm = {**sweep_slurm, **model_slurm}
                try:
                    resolved = TrainConfig.from_dict(config).resolved()  # every override checked now
                except RobustscaleError as e:
                    raise RobustscaleError(f"{where}: train: {e}") from None
                per_step = world_size(slurm) * resolved.accum_steps
                if resolved.batch_size % per_step:
                    raise RobustscaleError(f"{where}: train.batch_size: {resolved.batch_size} does not split "
                                           f"into {world_size(slurm)} Slurm tasks x {resolved.accum_steps} "
                                           f"micro-batches (run {name})")
                runs.append(SweepRun(name, model, samples, source["name"], source["fid"], mode, resolved,
                                     slurm))
    seen = set()
    for r in runs:
        if r.name in seen:
            raise RobustscaleError(f"{where}: run {r.name!r} appears twice in the grid "
                                   "(duplicate model or budget)")
        seen.add(r.name)
    design = None
    if data.get("design") is not None:
        design = parse_design(data["design"], f"{where}: design")
    return SweepSpec(path=path, out=out, runs=runs, design=design)


def plan(sweep: SweepSpec) -> dict:
    """The grid with each run's training FLOPs and the totals: the trainer's own count (the one FLOPs
    function, at the dataset's image shape), so a planned run and its finished result.json agree."""
    import math

    from robustscale.data.datasets import dataset_info
    from robustscale.flops import flops_summary

    costs: dict[tuple, dict] = {}
    rows = []
    for r in sweep.runs:
        key = (r.model, r.config.dataset, r.mode)
        if key not in costs:
            info = dataset_info(r.config.dataset)
            costs[key] = flops_summary(r.model, info.shape, r.mode, num_classes=info.num_classes)
        cost = costs[key]
        batch = r.config.batch_size
        trained = math.ceil(r.samples / batch) * batch  # whole steps, as the trainer records them
        rows.append({"run": r.name, "model": r.model, "params": cost["params"], "source": r.source,
                     "fid": r.fid, "samples": r.samples, "mode": r.mode, "world_size": r.world_size,
                     "flops": cost["train_flops_per_sample"] * trained, "finished": r.finished,
                     "out": str(r.out)})
    return {"sweep": str(sweep.path), "out": str(sweep.out), "runs": rows,
            "total_flops": sum(r["flops"] for r in rows),
            "todo_flops": sum(r["flops"] for r in rows if not r["finished"])}
