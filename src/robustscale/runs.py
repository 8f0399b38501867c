"""The run store: training run directories -> a summary table and the observations table.

A run directory (written by robustscale.train) holds config.json, metrics.jsonl (one JSON object
per evaluation) and, once complete, result.json. `list_runs` summarises each run; `collect`
turns every evaluation point of every adversarial run into one row of the observations table
that `robustscale fit` (robustscale.laws.load_observations) reads.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

from robustscale.errors import RobustscaleError

# A run whose files changed this recently, without result.json, is taken to be training now.
RUNNING_WINDOW_S = 600
OBSERVATION_COLUMNS = ("run", "source", "fid", "params", "samples", "flops", "loss", "accuracy",
                       "clean_accuracy", "train_fraction", "dataset", "norm", "eps")


@dataclasses.dataclass
class RunSummary:
    run: str
    path: str
    model: str
    params: int
    source: str
    fid: float
    mode: str
    samples_done: int
    samples_target: int
    state: str  # finished | running | stopped | pending
    best_pgd_acc: float | None
    evaluations: int

    def asdict(self) -> dict:
        return dataclasses.asdict(self)


def find_runs(runs_dir: str | os.PathLike) -> list[Path]:
    """Run directories (those with a config.json) under runs_dir, sorted by path."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise RobustscaleError(f"{root}: no such runs directory")
    if (root / "config.json").is_file():
        return [root]
    return sorted(p.parent for p in root.rglob("config.json") if ".submitit" not in p.parts)


def read_metrics(run_dir: Path) -> list[dict]:
    """The evaluations of a run; a torn last line (run killed mid-write) is ignored."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _read_config(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "config.json").read_text())
    except json.JSONDecodeError as e:
        raise RobustscaleError(f"{run_dir / 'config.json'}: not valid JSON ({e})") from None


def source_name(config: dict) -> str:
    """'real' for real data alone, else the synthetic sources' names joined by '+'."""
    synthetic = {str(Path(p).resolve()) for p in config.get("synthetic") or []}
    names = [s["name"] for s in config.get("sources") or []
             if s.get("path") and str(Path(s["path"]).resolve()) in synthetic]
    return "+".join(names) if names else "real"


def summarize_run(run_dir: str | os.PathLike) -> RunSummary:
    run_dir = Path(run_dir)
    config = _read_config(run_dir)
    metrics = read_metrics(run_dir)
    if (run_dir / "result.json").is_file():
        state = "finished"
    elif not metrics and not (run_dir / "checkpoint.pt").exists():
        state = "pending"
    else:
        files = [run_dir / n for n in ("metrics.jsonl", "checkpoint.pt") if (run_dir / n).exists()]
        newest = max(p.stat().st_mtime for p in files)
        state = "running" if time.time() - newest < RUNNING_WINDOW_S else "stopped"
    accs = [m["pgd_acc"] for m in metrics if m.get("pgd_acc") is not None]
    return RunSummary(
        run=run_dir.name, path=str(run_dir), model=config["model"], params=int(config.get("params", 0)),
        source=source_name(config), fid=float(config.get("fid") or 0.0), mode=config.get("mode", "trades"),
        samples_done=int(max((m["samples"] for m in metrics), default=0)),
        samples_target=int(config["samples"]), state=state,
        best_pgd_acc=max(accs) if accs else None, evaluations=len(metrics))


def list_runs(runs_dir: str | os.PathLike) -> list[RunSummary]:
    """One summary per run directory under runs_dir."""
    return [summarize_run(p) for p in find_runs(runs_dir)]


def observations(runs_dir: str | os.PathLike, include_standard: bool = False):
    """The observations table (pandas, validated by laws.load_observations): one row per evaluation.

    Standard-training runs (the honesty baselines) are left out unless include_standard: the
    scaling laws are fit to adversarial training (§3.1).
    """
    import pandas as pd

    from robustscale.laws import load_observations

    rows = []
    for run_dir in find_runs(runs_dir):
        config = _read_config(run_dir)
        if config.get("mode", "trades") != "trades" and not include_standard:
            continue
        source, target = source_name(config), int(config["samples"])
        for m in read_metrics(run_dir):
            if m["samples"] <= 0:  # an evaluation before training says nothing about D
                continue
            rows.append({"run": run_dir.name, "source": source, "fid": float(config.get("fid") or 0.0),
                         "params": int(config["params"]), "samples": int(m["samples"]),
                         "flops": float(m["flops"]), "loss": float(m["loss"]),
                         "accuracy": m.get("pgd_acc"), "clean_accuracy": m.get("clean_acc"),
                         "train_fraction": m["samples"] / target, "dataset": config.get("dataset"),
                         # runs from before the norm existed were L-inf
                         "norm": config.get("norm", "linf"), "eps": config.get("eps")})
    if not rows:
        raise RobustscaleError(f"{runs_dir}: no evaluation points in any adversarial run (nothing to collect)")
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
