"""The run store: training run folders -> a summary table and the observations table.

Run folders are read through `robustscale.rundir.RunDir` (their files and formats live there).
`list_runs` summarises each run; `collect` turns every evaluation point of every adversarial run
into one row of the observations table that `robustscale fit` (robustscale.laws.load_observations)
reads. A synthetic run whose FID is unknown is refused, never recorded as real data's 0.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from robustscale.errors import RobustscaleError
from robustscale.rundir import RunDir, find_runs

OBSERVATION_COLUMNS = ("run", "source", "fid", "params", "samples", "flops", "loss", "accuracy",
                       "clean_accuracy", "train_fraction", "eval_split", "dataset", "norm", "eps")


@dataclasses.dataclass
class RunSummary:
    run: str
    path: str
    model: str
    params: int
    source: str
    fid: float | None  # None: a synthetic run whose FID nobody gave
    mode: str
    samples_done: int
    samples_target: int
    state: str  # finished | running | stopped | pending
    best_accuracy: float | None
    evaluations: int

    def asdict(self) -> dict:
        return dataclasses.asdict(self)


def source_name(config: dict) -> str:
    """The run's data source: config.json's `source`; in older folders 'real' for real data alone,
    else the synthetic sources' names joined by '+'."""
    if config.get("source"):
        return str(config["source"])
    synthetic = {str(Path(p).resolve()) for p in config.get("synthetic") or []}
    names = [s["name"] for s in config.get("sources") or []
             if s.get("path") and str(Path(s["path"]).resolve()) in synthetic]
    return "+".join(names) if names else "real"


def run_fid(config: dict) -> float | None:
    """The FID of the run's training data: 0 for real data alone, else the recorded one (None: unknown)."""
    if not config.get("synthetic"):
        return 0.0
    return None if config.get("fid") is None else float(config["fid"])


def summarize_run(run_dir: str | os.PathLike | RunDir) -> RunSummary:
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    config = run.read_config()
    metrics = run.read_metrics()
    accs = [m["accuracy"] for m in metrics if m.get("accuracy") is not None]
    return RunSummary(
        run=run.name, path=str(run.path), model=config["model"], params=int(config.get("params", 0)),
        source=source_name(config), fid=run_fid(config), mode=config.get("mode", "trades"),
        samples_done=int(max((m["samples"] for m in metrics), default=0)),
        samples_target=int(config["samples"]), state=run.state(metrics),
        best_accuracy=max(accs) if accs else None, evaluations=len(metrics))


def list_runs(runs_dir: str | os.PathLike) -> list[RunSummary]:
    """One summary per run directory under runs_dir."""
    return [summarize_run(run) for run in find_runs(runs_dir)]


def observations(runs_dir: str | os.PathLike, include_standard: bool = False):
    """The observations table (pandas, validated by laws.load_observations): one row per evaluation.

    Standard-training runs (the honesty baselines) are left out unless include_standard: the
    scaling laws are fit to adversarial training (§3.1).
    """
    import pandas as pd

    from robustscale.laws import load_observations

    rows = []
    for run in find_runs(runs_dir):
        config = run.read_config()
        if config.get("mode", "trades") != "trades" and not include_standard:
            continue
        source, target, fid = source_name(config), int(config["samples"]), run_fid(config)
        if fid is None:
            raise RobustscaleError(f"{run.config_path}: fid: unknown for synthetic run {run.name} (source "
                                   f"{source}); the FID is an input of the law and is not taken to be 0: "
                                   f"measure it (`robustscale data fid`) and record it as config.json's fid")
        for m in run.read_metrics():
            if m["samples"] <= 0:  # an evaluation before training says nothing about D
                continue
            rows.append({"run": run.name, "source": source, "fid": fid,
                         "params": int(config["params"]), "samples": int(m["samples"]),
                         "flops": float(m["flops"]), "loss": float(m["loss"]),
                         "accuracy": m.get("accuracy"), "clean_accuracy": m.get("clean_accuracy"),
                         "train_fraction": m["samples"] / target,
                         # the images the loss is on (TrainConfig.eval_split); runs from before it: heldout
                         "eval_split": config.get("eval_split", "heldout"), "dataset": config.get("dataset"),
                         # runs from before the norm existed were L-inf
                         "norm": config.get("norm", "linf"), "eps": config.get("eps")})
    if not rows:
        raise RobustscaleError(f"{runs_dir}: no evaluation points in any adversarial run "
                               "(nothing to collect)")
    threats = sorted({(r["dataset"], r["norm"], r["eps"]) for r in rows}, key=str)
    if len(threats) > 1:  # losses under different attacks or data are different quantities: one law each
        raise RobustscaleError(f"{runs_dir}: runs of {len(threats)} different datasets / threat models "
                               f"({', '.join(f'{d} {n} eps={e!s:.6}' for d, n, e in threats[:3])}); collect "
                               f"each into its own table")
    return load_observations(pd.DataFrame(rows, columns=list(OBSERVATION_COLUMNS)))


def collect(runs_dir: str | os.PathLike, out: str | os.PathLike, include_standard: bool = False):
    """Write the observations table to out (.csv or .parquet, atomically); returns the DataFrame."""
    from robustscale.fileio import write_table

    out = Path(out)
    if out.suffix not in (".csv", ".parquet"):  # checked before the runs are read, not after
        raise RobustscaleError(f"out: expected a .csv or .parquet path, got {out}")
    obs = observations(runs_dir, include_standard=include_standard)
    write_table(out, obs)
    return obs
