"""`robustscale demo`: a real, small scaling study end to end (sweep -> collect -> report).

The Fashion-MNIST preset trains 4 model sizes (WRN-10-1 to WRN-28-1: 78k to 369k parameters,
4.8x) at 3 sample budgets (1,024 to 16,384: 16x) with TRADES (eps = 0.1, beta = 5) on 2 CPU cores,
plus a standard-training baseline per size (the honesty check: adversarial training must beat it
on PGD robust accuracy). Every run is scored by PGD-CW on the same 1,024 test images, so a
point's accuracy has a standard error of at most 1.6 points. The CIFAR-10 preset is the paper's
study (§3.1, Table 2 sizes, 5M-30M samples) for a GPU machine.

Throughput behind the preset (`bench/bench_demo.py`; TRADES with 2 attack steps at batch 32-128,
2 threads, a 2-core machine at load < 1): wrn-10-1 ~540 images/s, wrn-16-1 ~370, wrn-22-1 ~240,
wrn-28-1 ~180 (scaled by its FLOPs). The demo runs its 16 runs side by side on one thread each,
costliest first: two single-thread runs keep both cores busy with no synchronisation between
threads, and on a machine shared with other work a two-thread run stalls badly (2,048 samples of
wrn-10-1 trained in 128 s on two threads, 6.5 s on one, both at load 6-8).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Callable

from robustscale.data.datasets import check_dataset
from robustscale.errors import RobustscaleError
from robustscale.fileio import write_json, write_text
from robustscale.formatting import anchored_sentence, count, pct, sci, with_interval
from robustscale.rundir import RunDir

PRESETS = {
    "fashion-mnist": {
        "dataset": "fashion-mnist",
        "models": ["wrn-10-1", "wrn-16-1", "wrn-22-1", "wrn-28-1"],
        # From 1,024 samples up: at 512 (16 steps) no model has learned enough for size to matter,
        # and those runs only blur the effect of N.
        "samples": [1024, 4096, 16384],
        "baselines": [4096],
        # Few samples, so many small steps: batch 32 with the learning rate scheduled per step (the
        # recipe's 50k-sample epochs would keep these runs at their first, near-zero rate), BatchNorm
        # statistics and an EMA that follow within tens of steps (the recipe's 0.01 and 0.995 need
        # hundreds), and TRADES with 2 attack steps of eps/1.7 instead of the paper's 10 (a step
        # costs ~12 forwards instead of ~27); beta and eps stay the recipe's (5; the dataset's 0.1).
        "train": {"batch_size": 32, "epoch_samples": 32, "lr": 0.1, "bn_momentum": 0.1, "ema_decay": 0.9,
                  "attack_steps": 2, "step_size": 0.06},
        # PGD-CW (the paper's evaluation attack) with 5 steps on 1,024 held-out images at the end of
        # each run and every 8,192 samples: an evaluation costs as much as training ~1,500 samples.
        "evaluation": {"eval_every": 8192, "eval_images": 1024, "eval_steps": 5},
        "bootstrap": 20,
    },
    "cifar10": {
        # §3.1: Table 2's WideResNets, budgets of 5M/10M/30M samples, the paper's training settings.
        "dataset": "cifar10",
        "models": ["wrn-28-4", "wrn-40-4", "wrn-82-4", "wrn-28-12", "wrn-58-12", "wrn-82-12", "wrn-70-16",
                   "wrn-82-16"],
        "samples": ["5M", "10M", "30M"],
        "baselines": ["5M"],
        "train": {},
        "evaluation": {},  # PGD-40-CW on 1024 held-out images, 10 evaluations per run (§3.1)
        "bootstrap": 100,
        "slurm": {"gpus_per_node": 1, "cpus_per_task": 8, "mem_gb": 64, "timeout_min": 72 * 60},
    },
}
QUICK = {  # tests and smoke checks: two sizes, two tiny budgets, light evaluations
    "models": ["wrn-10-1", "wrn-16-1"],
    "samples": [128, 256],
    "baselines": [256],
    "train": {"batch_size": 16, "epoch_samples": 16, "lr": 0.2, "bn_momentum": 0.3, "ema_decay": 0.5,
              "attack_steps": 1, "step_size": 0.1},
    "evaluation": {"eval_every": 128, "eval_images": 128, "eval_steps": 3},
    "bootstrap": 0,
}


def sweep_spec(preset: str, data_dir: str | os.PathLike | None, quick: bool, norm: str = "linf") -> dict:
    """The sweep file content of a preset (written to OUT/sweep.yaml and run by the sweep) under `norm`."""
    from robustscale.data.datasets import check_norm

    if preset not in PRESETS:
        raise RobustscaleError(f"preset: expected one of {', '.join(PRESETS)}, got {preset!r}")
    spec = {**PRESETS[preset], **(QUICK if quick else {})}
    spec.pop("bootstrap")
    if check_norm(norm) != "linf":  # the presets' L-inf attack step does not carry over: the norm's default
        spec["train"] = {**{k: v for k, v in spec["train"].items() if k != "step_size"}, "norm": norm}
    return {"name": f"demo-{preset}", "out": "runs", "data_dir": None if data_dir is None else str(Path(data_dir).resolve()),
            "sources": ["real"], **spec}


def run_demo(out: str | os.PathLike = "demo-out", preset: str = "fashion-mnist",
             data_dir: str | os.PathLike | None = None, quick: bool = False, norm: str = "linf",
             log: Callable[[str], None] = print, data_option: str = "data_dir") -> dict:
    """Run the whole study; returns the summary (also written to OUT/summary.json).

    Everything the study needs is checked before any work (`data_option` is how the caller names
    the data folder in the error, e.g. the CLI's `--data-dir`).
    """
    t_start = time.perf_counter()
    spec = sweep_spec(preset, data_dir, quick, norm)
    check_dataset(spec["dataset"], data_dir, option=data_option)
    import yaml

    from robustscale.report import write_report
    from robustscale.runs import collect, list_runs
    from robustscale.sweep import load_sweep, plan, run_sweep

    phases: dict[str, float] = {}
    out = Path(out).resolve()
    bootstrap_k = 0 if quick else PRESETS[preset]["bootstrap"]

    t = time.perf_counter()
    write_text(out / "sweep.yaml", yaml.safe_dump(spec, sort_keys=False))
    sweep = load_sweep(out / "sweep.yaml")
    grid = plan(sweep)
    phases["plan"] = time.perf_counter() - t
    log(f"demo: {len(sweep.runs)} runs ({len(spec['models'])} sizes x {len(spec['samples'])} budgets TRADES "
        f"+ standard baselines), {grid['total_flops']:.3g} training FLOPs -> {sweep.out}")

    t = time.perf_counter()
    done = [0]

    def on_run(run, state):
        if state.split(":")[0] in ("finished", "failed", "skipped"):  # "failed: reason"
            done[0] += 1
        if state != "running":
            log(f"  [{done[0]}/{len(sweep.runs)}] {state:8s} {run.name}  ({time.perf_counter() - t_start:.0f} s)")

    # Runs this small train faster one thread each, side by side, than one at a time on every core
    # (see the module docstring; bench/bench_demo.py --threads). Costliest first, so no core idles at the end.
    cost = {r["run"]: r["flops"] for r in grid["runs"]}
    sweep.runs.sort(key=lambda r: -cost[r.name])
    workers = max(1, min(os.cpu_count() or 1, len(sweep.runs)))
    with _env(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"):  # read by each worker's torch at import
        result = run_sweep(sweep, executor="local", max_parallel=workers, on_run=on_run)
    phases["train"] = time.perf_counter() - t
    if result.failed:
        raise RobustscaleError(f"demo: {len(result.failed)} run(s) failed: "
                               + "; ".join(f"{k}: {v}" for k, v in result.failed.items()))

    t = time.perf_counter()
    collect(sweep.out, out / "observations.csv")
    phases["collect"] = time.perf_counter() - t

    # One fit, in the report: the summary below reads the law, intervals and plan it made.
    t = time.perf_counter()
    report = write_report(out / "observations.csv", out / "report", bootstrap=bootstrap_k)
    phases["fit+report"] = time.perf_counter() - t

    law, plan_row, a1 = report["approach2"], report["plan"], report["approach1"]
    summary = {
        "preset": preset, "quick": quick, "norm": norm,
        "out": str(out), "runs_dir": str(sweep.out), "runs": len(sweep.runs),
        "observations": str(out / "observations.csv"), "report": report["index"],
        "law": str(out / "report" / "law.json"), "story": report["story"], "trained": report["trained"],
        # the held-out images behind every point (a point's accuracy has standard error <= 0.5/sqrt(this))
        "eval_images": sweep.runs[0].config.eval_images,
        "approach2": {k: law[k] for k in ("params", "level", "k", "intervals", "identified", "status", "anchored",
                                          "diagnostics", "excluded_runs", "accuracy_map")},
        "approach1": None if a1 is None else {
            "params": a1["params"], "n_star": a1["n_star"], "d_star": a1["d_star"],
            # the cross-check: Approach 2's N* over Approach 1's at the same budget
            "n_star_ratio": plan_row["n_star"] / a1["n_star"] if a1["n_star"] else None},
        "compute_optimal": {**plan_row, "largest_flops": report["trained"]["flops"][1]},
        "honesty": _honesty(list_runs(sweep.out)),
        "phases": {k: round(v, 1) for k, v in phases.items()},
    }
    summary["approach2"]["alpha"], summary["approach2"]["beta"] = law["params"]["alpha"], law["params"]["beta"]
    summary["honest"] = bool(summary["honesty"]) and all(h["margin"] > 0 for h in summary["honesty"])
    summary["wall_s"] = round(time.perf_counter() - t_start, 1)
    write_json(out / "summary.json", summary)
    write_text(out / "summary.txt", format_summary(summary) + "\n")
    return summary


@contextlib.contextmanager
def _env(**values: str):
    """Environment variables set for the block (those the user set already are kept)."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def _honesty(runs) -> list[dict]:
    """TRADES vs standard training of the same size and budget: final PGD robust accuracy."""
    final = {}
    for r in runs:
        result = RunDir(r.path).read_result()
        final[(r.model, r.samples_target, r.mode)] = (r.params, result["final"]["accuracy"])
    rows = []
    for (model, samples, mode), (params, acc) in sorted(final.items()):
        if mode == "standard" and (model, samples, "trades") in final:
            adv = final[(model, samples, "trades")][1]
            rows.append({"model": model, "params": params, "samples": samples, "trades_accuracy": adv,
                         "standard_accuracy": acc, "margin": adv - acc})
    return rows


def format_summary(s: dict) -> str:
    co, a2, a1 = s["compute_optimal"], s["approach2"], s["approach1"]
    p, ranges = a2["params"], a2["intervals"]
    level = f"{100 * a2['level']:.0f}% intervals" if a2["level"] else "no intervals (no bootstrap)"

    def exponent(k):
        r = f" [{ranges[k][0]:.2f}, {ranges[k][1]:.2f}]" if k in ranges else ""
        return f"{k} = {p[k]:.2f}{r} ({a2['status'][k]})"

    lines = [
        f"robustscale demo ({s['preset']}{', quick' if s['quick'] else ''}): {s['runs']} runs in {s['runs_dir']}",
        "  " + s["story"],
        f"  Approach 2 law ({level}): {exponent('alpha')}, {exponent('beta')}, E = {p['E']:.3g}",
    ]
    if a2["anchored"]:
        lines.append(f"  {anchored_sentence(a2['anchored'])} (why: summary.json's approach2.anchored.reason)")
    lines.append(f"  compute-optimal at 10x the largest budget ({sci(co['flops'])} FLOPs): "
                 f"N* = {with_interval(co, 'n_star', count)} params, "
                 f"D* = {with_interval(co, 'd_star', count)} samples, "
                 f"robust accuracy {with_interval(co, 'accuracy', pct)}")
    if a1 is not None:
        lines.append(f"  Approach 1 (envelope) at the same budget: N* = {count(a1['n_star'])}, "
                     f"D* = {count(a1['d_star'])} (the law's N* is {co['n_star'] / a1['n_star']:.2g}x this)")
    for h in s["honesty"]:
        lines.append(f"  honesty {h['model']} @ {h['samples']:,} samples: TRADES {pct(h['trades_accuracy'])} "
                     f"vs standard {pct(h['standard_accuracy'])} PGD accuracy "
                     f"({100 * h['margin']:+.1f} points)")
    lines.append(f"  adversarial training beats standard training at every size: {'yes' if s['honest'] else 'NO'}")
    lines.append(f"  report: {s['report']}")
    lines.append("  phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in s["phases"].items())
                 + f"; total wall time {s['wall_s']:.1f} s")
    return "\n".join(lines)
