"""`robustscale demo`: a real, small scaling study that learns its law, end to end (an adaptive
sweep of two rounds -> collect -> report).

The Fashion-MNIST preset's first round trains 3 model sizes (WRN-10-1, WRN-16-1, WRN-28-1: 78k to
369k parameters, 4.8x) at 3 sample budgets (1,024 to 8,192: 8x) with TRADES (eps = 0.1, beta = 5)
on 2 CPU cores, plus a standard-training baseline per size (the honesty check: adversarial training
must beat it on PGD robust accuracy), and fits the law with bootstrap intervals; its second round
trains the runs `robustscale suggest` picks for SECOND_ROUND_FLOPS to narrow N* at the target budget,
and fits again (`robustscale.sweep.design`). Every run is scored by PGD-CW on the same 1,024 test
images (the first of the test split: the law's loss is measured on them), so a point's accuracy has
a standard error of at most 1.6 points. The CIFAR-10 preset is the paper's study (§3.1, Table 2
sizes, 5M-30M samples) for a GPU machine.

Time (measured on an idle 2-core AMD EPYC machine, 2026-11-29): with budgets up to 16,384 samples
and a 2e13-FLOP second round the demo took 662 s (round 1: 8.5e13 FLOPs in 455 s, ~1.9e11 counted
FLOPs/s for two runs side by side, evaluations included; round 2: 201 s); the preset was halved to
fit about 5.5 minutes (another 2-core machine of the project ran the demo 1.8x slower). The demo
runs its runs side by side on one thread each, costliest first: two single-thread runs keep both
cores busy with no synchronisation between threads, and on a machine shared with other work a
two-thread run stalls badly (2,048 samples of wrn-10-1 trained in 128 s on two threads, 6.5 s on
one, both at load 6-8). Per-model throughput: `bench/bench_demo.py`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from robustscale.data.datasets import check_dataset
from robustscale.errors import RobustscaleError
from robustscale.fileio import write_json, write_text
from robustscale.formatting import anchored_sentence, count, pct
from robustscale.rundir import RunDir

# The demo's length in one number: the training FLOPs (the one FLOPs count) of its second round, the
# runs `suggest` chooses. At the measured ~1.9e11 counted FLOPs/s (module docstring) the first round
# (3 sizes x 3 budgets + 3 standard baselines, 4.4e13 FLOPs) takes ~4 min with its evaluations, this
# round ~1 min, fits, suggestion and report a few seconds.
SECOND_ROUND_FLOPS = 1e13

PRESETS = {
    "fashion-mnist": {
        "dataset": "fashion-mnist",
        # A 3 x 3 first round (the shape bench/bench_design.py starts from) leaves the second round
        # its budget.
        "models": ["wrn-10-1", "wrn-16-1", "wrn-28-1"],
        # From 1,024 samples up: at 512 (16 steps) no model has learned enough for size to matter,
        # and those runs only blur the effect of N.
        "samples": [1024, 2048, 8192],
        "baselines": [2048],
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
        # Round 2 runs what `suggest` picks to narrow N* at 10x the first round's largest run (1.8e13 FLOPs).
        "design": {"rounds": 2, "budget_per_round": SECOND_ROUND_FLOPS, "target_flops": 2e14,
                   "bootstrap": 20},
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
        # the grid is 3.4e20 FLOPs, its largest run 7.5e19: a second round of ~30% of it, N* at 10x that run
        "design": {"rounds": 2, "budget_per_round": 1e20, "target_flops": 7.5e20, "bootstrap": 100},
        "slurm": {"gpus_per_node": 1, "cpus_per_task": 8, "mem_gb": 64, "timeout_min": 72 * 60},
    },
}
QUICK = {  # tests and smoke checks: two sizes, two tiny budgets, light evaluations, a small second round
    "models": ["wrn-10-1", "wrn-16-1"],
    "samples": [128, 256],
    "baselines": [256],
    "train": {"batch_size": 16, "epoch_samples": 16, "lr": 0.2, "bn_momentum": 0.3, "ema_decay": 0.5,
              "attack_steps": 1, "step_size": 0.1},
    "evaluation": {"eval_every": 128, "eval_images": 128, "eval_steps": 3},
    # ~2 runs of 256 samples of wrn-10-1; N* at 10x the largest run (wrn-16-1 at 256: 2.8e11 FLOPs)
    "design": {"rounds": 2, "budget_per_round": 3e11, "target_flops": 3e12, "bootstrap": 0},
}


def sweep_spec(preset: str, data_dir: str | os.PathLike | None, quick: bool, norm: str = "linf") -> dict:
    """The sweep file content of a preset (written to OUT/sweep.yaml and run by the sweep) under `norm`: an
    adaptive sweep of two rounds, the grid and then the runs `suggest` chooses
    (`robustscale.sweep.design`)."""
    from robustscale.data.datasets import check_norm

    if preset not in PRESETS:
        raise RobustscaleError(f"preset: expected one of {', '.join(PRESETS)}, got {preset!r}")
    spec = {**PRESETS[preset], **(QUICK if quick else {})}
    if check_norm(norm) != "linf":  # the presets' L-inf attack step does not carry over: the norm's default
        spec["train"] = {**{k: v for k, v in spec["train"].items() if k != "step_size"}, "norm": norm}
    return {"name": f"demo-{preset}", "out": "runs",
            "data_dir": None if data_dir is None else str(Path(data_dir).resolve()),
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
    from robustscale.sweep import load_sweep, plan
    from robustscale.sweep.design import render_design, run_design

    phases: dict[str, float] = {}
    out = Path(out).resolve()

    t = time.perf_counter()
    write_text(out / "sweep.yaml", yaml.safe_dump(spec, sort_keys=False))
    sweep = load_sweep(out / "sweep.yaml")
    grid = plan(sweep)
    design = sweep.design
    phases["plan"] = time.perf_counter() - t
    log(f"demo: round 1: {len(sweep.runs)} runs ({len(spec['models'])} sizes x {len(spec['samples'])} "
        f"budgets TRADES + standard baselines), {grid['total_flops']:.3g} training FLOPs; "
        f"then {design.rounds - 1} round(s) of runs chosen by suggest for {design.budget_per_round:.3g} "
        f"FLOPs each -> {sweep.out}")

    t = time.perf_counter()
    done = [0]

    def on_run(run, state):
        if state.split(":")[0] in ("finished", "failed", "skipped"):  # "failed: reason"
            done[0] += 1
        if state != "running":
            log(f"  [{done[0]}] {state:8s} {run.name}  ({time.perf_counter() - t_start:.0f} s)")

    def on_round(summary):
        nonlocal t
        phases[f"round {summary['round']}"] = time.perf_counter() - t
        t = time.perf_counter()
        log(render_design(summary))

    # Runs this small train faster one thread each, side by side, than one at a time on every core
    # (see the module docstring; bench/bench_demo.py --threads). Costliest first, so no core idles at the end.
    cost = {r["run"]: r["flops"] for r in grid["runs"]}
    sweep.runs.sort(key=lambda r: -cost[r.name])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = max(1, min(cores, len(sweep.runs)))
    with _env(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"):  # read by each worker's torch at import
        result = run_design(sweep, executor="local", max_parallel=workers, on_run=on_run, on_round=on_round)
    if result.failed:
        raise RobustscaleError(f"demo: {len(result.failed)} run(s) failed: "
                               + "; ".join(f"{k}: {v}" for k, v in result.failed.items()))

    t = time.perf_counter()
    obs = collect(sweep.out, out / "observations.csv")
    phases["collect"] = time.perf_counter() - t

    # No new fit: the report draws and plans from the last round's law (the summary reads both).
    t = time.perf_counter()
    rounds = result.rounds
    seen = {"n_star": float(obs["params"].min()), "d_star": float(obs["samples"].min())}
    later = [name for r in rounds[1:] for name in r["runs"]]
    by_round = design_rounds(rounds, seen["n_star"])
    report = write_report(out / "observations.csv", out / "report", law=rounds[-1]["law"],
                          budget=design.target_flops,
                          design=by_round, marked=later)
    phases["report"] = time.perf_counter() - t

    law, plan_row, a1 = report["approach2"], report["plan"], report["approach1"]
    summary = {
        "preset": preset, "quick": quick, "norm": norm, "out": str(out), "runs_dir": str(sweep.out),
        "runs": sum(len(r["runs"]) for r in rounds),
        "observations": str(out / "observations.csv"), "report": report["index"],
        "law": rounds[-1]["law"], "story": report["story"], "trained": report["trained"],
        # the held-out images behind every point (a point's accuracy has standard error <= 0.5/sqrt(this))
        "eval_images": sweep.runs[0].config.eval_images,
        "design": {"target_flops": design.target_flops, "budget_per_round": design.budget_per_round,
                   "rounds": by_round},
        "approach2": {k: law[k] for k in ("params", "level", "k", "intervals", "identified", "status",
                                          "anchored", "diagnostics", "excluded_runs", "accuracy_map")},
        "approach1": None if a1 is None else {
            **a1,  # N*, D* below one parameter or sample are None there too (not determined)
            # the cross-check: Approach 2's N* over Approach 1's at the same budget
            "n_star_ratio": plan_row["n_star"] / a1["n_star"]
            if plan_row["n_star"] and a1["n_star"] else None},
        "compute_optimal": {**plan_row, "largest_flops": report["trained"]["flops"][1]},
        "honesty": _honesty(list_runs(sweep.out)),
        "phases": {k: round(v, 1) for k, v in phases.items()},
    }
    summary["approach2"]["alpha"], summary["approach2"]["beta"] = (law["params"]["alpha"],
                                                                   law["params"]["beta"])
    summary["honest"] = bool(summary["honesty"]) and all(h["margin"] > 0 for h in summary["honesty"])
    summary["wall_s"] = round(time.perf_counter() - t_start, 1)
    write_json(out / "summary.json", summary)
    write_text(out / "summary.txt", format_summary(summary) + "\n")
    return summary


def design_rounds(rounds: list[dict], smallest_params: float) -> list[dict]:
    """Each round in the summary and the report: its runs, N* at the target after it (`bounded`'s record:
    nothing below one parameter), and the runs it suggested with the N* they were expected to give."""
    from robustscale.sweep.design import n_star_record

    return [{"round": r["round"], "runs": r["runs"], "law": r["law"], "suggest": r["suggest"],
             "n_star": n_star_record(r["n_star"], seen=smallest_params), "suggested": r["suggested"],
             "spent": r["spent"], "chosen_by": r["chosen_by"],
             "expected": n_star_record(r["expected"], seen=smallest_params),
             "warnings": r["warnings"]} for r in rounds]


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
    from robustscale.laws.planning import bounded, describe_bounded, plan_bounds

    co, a2, a1, design = s["compute_optimal"], s["approach2"], s["approach1"], s["design"]
    p, ranges = a2["params"], a2["intervals"]
    level = f"{100 * a2['level']:.0f}% intervals" if a2["level"] else "no intervals (no bootstrap)"

    def exponent(k):
        r = f" [{ranges[k][0]:.2f}, {ranges[k][1]:.2f}]" if k in ranges else ""
        return f"{k} = {p[k]:.2f}{r} ({a2['status'][k]})"

    lines = [
        (f"robustscale demo ({s['preset']}{', quick' if s['quick'] else ''}): {s['runs']} runs in "
         f"{len(design['rounds'])} rounds in {s['runs_dir']}"),
        "  " + s["story"],
        f"  Approach 2 law after the last round ({level}): {exponent('alpha')}, {exponent('beta')}, "
        f"E = {p['E']:.3g}",
    ]
    if a2["anchored"]:
        lines.append(f"  {anchored_sentence(a2['anchored'])} (why: summary.json's approach2.anchored.reason)")
    for before, r in zip([None, *design["rounds"]], design["rounds"]):
        what = ("the grid" if before is None else "the grid's next row" if before["chosen_by"] == "grid-row"
                else "chosen by suggest")
        lines.append(f"  N* at {design['target_flops']:.3g} FLOPs after round {r['round']} ({len(r['runs'])} "
                     f"run(s), {what}): {describe_bounded(r['n_star'], count, 'params')}")
    accuracy = pct(co["accuracy"]) if co["accuracy"] is not None else "not determined"
    if co.get("accuracy_lo") is not None and co.get("accuracy_hi") is not None:
        accuracy += f" [{pct(co['accuracy_lo'])}, {pct(co['accuracy_hi'])}]"
    lines.append(f"  compute-optimal at {co['flops']:.3g} FLOPs: "
                 f"N* = {describe_bounded(plan_bounds(co, 'n_star'), count, 'params')}, "
                 f"D* = {describe_bounded(plan_bounds(co, 'd_star'), count, 'samples')}, "
                 f"robust accuracy {accuracy}")
    if a1 is not None:
        n1, d1 = (bounded(a1[k], seen=a1[f"{k}_not_determined_below"]) for k in ("n_star", "d_star"))
        ratio = f" (the law's N* is {a1['n_star_ratio']:.2g}x this)" if a1["n_star_ratio"] else ""
        lines.append("  Approach 1 (envelope) at the same budget: "
                     f"N* = {describe_bounded(n1, count, 'params')}, "
                     f"D* = {describe_bounded(d1, count, 'samples')}{ratio}")
    for h in s["honesty"]:
        lines.append(f"  honesty {h['model']} @ {h['samples']:,} samples: TRADES {pct(h['trades_accuracy'])} "
                     f"vs standard {pct(h['standard_accuracy'])} PGD accuracy "
                     f"({100 * h['margin']:+.1f} points)")
    lines.append("  adversarial training beats standard training at every size: "
                 f"{'yes' if s['honest'] else 'NO'}")
    lines.append(f"  report: {s['report']}")
    lines.append("  phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in s["phases"].items())
                 + f"; total wall time {s['wall_s']:.1f} s")
    return "\n".join(lines)
