"""Adaptive sweeps: a sweep file's `design:` section -> rounds of train, fit, suggest.

    design: {rounds: 2, budget_per_round: 3e13, target_flops: 4e14}   # optional: bootstrap: 20

Round 1 trains the sweep's grid. After every round the observations of all runs so far are fitted
(Approach 2 with `bootstrap` resampled laws, anchored to the paper's law where the runs cannot pin
an exponent, exactly as the report fits) and `robustscale.laws.design.suggest_runs` picks, among
the sweep's models (counted by the one FLOPs function at the dataset's image shape), the runs
costing at most `budget_per_round` training FLOPs that are expected to shrink the interval of
N*(target_flops) the most; the next round trains them. The runs use the sweep's first source and
its settings (`train`, `evaluation`, `slurm`, data), and go into the sweep's `out` folder beside the grid.
Where suggest finds no run that narrows N* or cannot plan (the runs leave N* open: no run's
information reaches it through the law's flat directions), the next round extends the grid by its
next budget row within the budget instead, with a `warning:` and `chosen_by: grid-row` in
suggest.json: a study that cannot place N* yet needs more data more than it needs a plan.

Every round keeps its files in `design/round-K/` beside the sweep file: `sweep.yaml` (round K >= 2:
its runs, as a sweep file `robustscale sweep` also runs alone), `law.json` (the fit after round K's
runs) and `suggest.json` (round K+1's runs; the last round's suggestion is what to run next, written
as `design/next.yaml` and not run).

Resume: each step leaves a file and is skipped when its file exists, so a killed sweep started again
skips finished runs, the fits and suggestions already written, resumes its interrupted runs from
their checkpoints, and so goes on in the round it was in.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

from robustscale.errors import RobustscaleError
from robustscale.fileio import write_json, write_text
from robustscale.formatting import count
from robustscale.sweep.executors import run_sweep
from robustscale.sweep.spec import SweepRun, SweepSpec, _read_file, load_sweep

LEVEL = 0.9  # the interval of N* that the suggestion shrinks (as plan, tradeoff and the report)


def design_dir(sweep: SweepSpec) -> Path:
    """Where an adaptive sweep keeps its rounds: `design/` beside the sweep file."""
    return sweep.path.resolve().parent / "design"


def round_dir(sweep: SweepSpec, k: int) -> Path:
    return design_dir(sweep) / f"round-{k}"


def candidates(sweep: SweepSpec) -> list:
    """The sweep's models as suggest's candidates, counted by the one FLOPs function."""
    from robustscale.data.datasets import dataset_info
    from robustscale.flops import flops_summary
    from robustscale.laws.design import Candidate

    out = []
    for model in dict.fromkeys(r.model for r in sweep.runs):
        dataset = next(r.config.dataset for r in sweep.runs if r.model == model)
        cost = flops_summary(model, dataset_info(dataset).shape, "trades")
        out.append(Candidate(params=float(cost["params"]),
                             flops_per_sample=float(cost["train_flops_per_sample"]),
                             model=model))
    return out


@dataclasses.dataclass
class DesignResult:
    # per round: round, runs, finished, skipped, failed, law, suggest, next, n_star (after the round),
    # suggested (the next round's runs), expected (N* after them), spent, warnings
    rounds: list[dict]
    failed: dict[str, str]  # run -> reason (the design stops at the round with a failed run)
    resumed_in: int  # the round the design started in (1 for a fresh one)
    wall_s: float

    @property
    def finished(self) -> list[str]:
        return [name for r in self.rounds for name in r["finished"]]

    @property
    def skipped(self) -> list[str]:
        return [name for r in self.rounds for name in r["skipped"]]

    def asdict(self) -> dict:
        """Every field, and as a plain sweep's JSON: `finished` and `skipped` over all rounds."""
        return {**dataclasses.asdict(self), "finished": self.finished, "skipped": self.skipped}


def current_round(sweep: SweepSpec) -> int:
    """The first round without its law (rounds + 1 when every round is done)."""
    k = 1
    while k <= sweep.design.rounds and (round_dir(sweep, k) / "law.json").is_file():
        k += 1
    return k


def run_design(sweep: SweepSpec, executor: str = "local", max_parallel: int = 1,
               on_run: Callable[[SweepRun, str], None] | None = None,
               on_round: Callable[[dict], None] | None = None, cluster: str | None = None) -> DesignResult:
    """Run an adaptive sweep's rounds (see the module docstring), resuming where the files say it stopped.

    executor, max_parallel, on_run, cluster: as `run_sweep`, for every round's runs. on_round(summary)
    is called after each round's fit and suggestion. Raises RobustscaleError when the sweep has no
    design or its budget per round cannot pay for the cheapest run.
    """
    design = sweep.design
    if design is None:
        raise RobustscaleError(f"{sweep.path}: design: the sweep file has no design section")
    t0 = time.perf_counter()
    pool = candidates(sweep)
    cheapest = min(c.flops_per_sample for c in pool) * min(r.samples for r in sweep.runs)
    if design.budget_per_round < cheapest:
        raise RobustscaleError(f"{sweep.path}: design.budget_per_round: {design.budget_per_round:.3g} FLOPs "
                               f"cannot pay for the cheapest run of the sweep ({cheapest:.3g} FLOPs)")
    resumed_in = min(current_round(sweep), design.rounds)
    rounds: list[dict] = []
    for k in range(1, design.rounds + 1):
        runs_file = round_dir(sweep, k) / "sweep.yaml"
        if k > 1 and not runs_file.is_file():
            break  # the previous round suggested nothing to run
        spec = sweep if k == 1 else load_sweep(runs_file)
        if k > 1:  # costliest first: with runs side by side, no worker idles at the round's end
            per_sample = {c.model: c.flops_per_sample for c in pool}
            spec.runs.sort(key=lambda r: -per_sample[r.model] * r.samples)
        result = run_sweep(spec, executor=executor, max_parallel=max_parallel, on_run=on_run, cluster=cluster)
        summary = {"round": k, "runs": [r.name for r in spec.runs], "finished": result.finished,
                   "skipped": result.skipped, "failed": result.failed}
        rounds.append(summary)
        if result.failed:  # a law fitted without them would plan from a different study
            return DesignResult(rounds, dict(result.failed), resumed_in, time.perf_counter() - t0)
        summary.update(_fit_and_suggest(sweep, k, pool))
        if on_round is not None:
            on_round(summary)
    return DesignResult(rounds, {}, resumed_in, time.perf_counter() - t0)


def _fit_and_suggest(sweep: SweepSpec, k: int, pool: list) -> dict:
    """Round k's law and suggestion (each read back when a previous attempt wrote it) and the next
    sweep file."""
    from robustscale.laws import fit_law, load_law, save_law
    from robustscale.laws.design import suggest_runs
    from robustscale.report.build import AUTO_PRIOR
    from robustscale.runs import observations

    design, folder = sweep.design, round_dir(sweep, k)
    obs = observations(sweep.out)
    law_path, suggest_path = folder / "law.json", folder / "suggest.json"
    if law_path.is_file():
        law = load_law(law_path)
    else:
        law = fit_law(obs, approach=2, auto_prior=AUTO_PRIOR, bootstrap=design.bootstrap)
        save_law(law, law_path)
    last = k == design.rounds
    if suggest_path.is_file():
        suggestion = json.loads(suggest_path.read_text())
    else:
        source = sweep.runs[0]
        try:
            suggestion = suggest_runs(obs, law, budget=design.budget_per_round,
                                      target_flops=design.target_flops,
                                      candidates=pool, fid=source.fid, source=source.source,
                                      level=LEVEL).to_dict()
        except RobustscaleError as e:  # e.g. a law with no finite N* near the target
            # after the last round it is advice, not part of the study: say why there is none
            suggestion = {"runs": [], "spent": 0.0, "before": {}, "expected": {},
                          "warnings": [
                              f"no suggestion{' for the runs after the last round' if last else ''}: {e}"]}
        else:
            suggestion["chosen_by"] = "suggest"
        if not suggestion["runs"] and not last:
            runs, spent, why = grid_row(sweep, pool, design.budget_per_round)
            suggestion.update(runs=runs, spent=spent, chosen_by="grid-row",
                              warnings=[*suggestion["warnings"], why])
        if suggestion.get("chosen_by"):
            write_json(suggest_path, suggestion)
    next_file = design_dir(sweep) / "next.yaml" if last else round_dir(sweep, k + 1) / "sweep.yaml"
    if suggestion["runs"] and not next_file.is_file():
        write_sweep_file(sweep, suggestion["runs"], next_file, f"round {k + 1}")
    if not suggestion["before"]:  # suggest could not run: N* from the law's own plan
        from robustscale.laws.planning import plan_table

        row = plan_table(law, [design.target_flops], sweep.runs[0].fid, LEVEL)[0]
        suggestion["before"] = {key: row.get(key) for key in ("n_star", "n_star_lo", "n_star_hi")}
    return {"law": str(law_path), "suggest": str(suggest_path) if suggest_path.is_file() else None,
            "next": str(next_file) if suggestion["runs"] else None,
            "smallest_params": float(obs["params"].min()),
            "n_star": suggestion["before"], "suggested": suggestion["runs"],
            "expected": suggestion["expected"],
            "spent": suggestion["spent"], "chosen_by": suggestion.get("chosen_by"),
            "warnings": suggestion.get("warnings", [])}


def grid_row(sweep: SweepSpec, pool: list, budget: float) -> tuple[list[dict], float, str]:
    """When suggest finds no run that narrows N* (a law whose N* the runs leave open: every run's gain is
    lost in the flat directions), the study still needs data: the grid's next budget row (the largest
    budget times the grid's step), smallest models first, as far as the budget goes. Announced and
    recorded (`chosen_by: grid-row`) in the round's suggest.json."""
    budgets = sorted({r.samples for r in sweep.runs if r.mode == "trades"})
    step = budgets[-1] / budgets[-2] if len(budgets) > 1 else 2.0
    source = sweep.runs[0]
    samples = round(budgets[-1] * step)
    while samples > budgets[0] and min(c.flops_per_sample for c in pool) * samples > budget:
        samples //= 2  # the whole row costs more than a round: the largest budget the round can pay for
    runs, spent = [], 0.0
    for c in sorted(pool, key=lambda c: c.params):
        cost = c.flops_per_sample * samples
        if spent + cost <= budget:
            runs.append({"params": c.params, "samples": samples, "source": source.source, "fid": source.fid,
                         "flops": cost, "model": c.model})
            spent += cost
    why = (f"suggest found no run within {budget:.3g} FLOPs that narrows N* (the runs leave it open), so the "
           f"next round extends the grid: {len(runs)} run(s) at {samples:,} samples")
    return runs, spent, why


def write_sweep_file(sweep: SweepSpec, runs: list[dict], path: Path, label: str) -> None:
    """The suggested runs as a sweep file of the original's settings: each model with its own budgets,
    the suggestion's source, the same out folder (paths made absolute), no baselines and no design."""
    import yaml

    data = _read_file(sweep.path)
    base = sweep.path.resolve().parent
    for key in ("design", "baselines", "samples"):
        data.pop(key, None)
    data["name"] = f"{data.get('name') or sweep.path.stem} ({label})"
    data["out"] = str(sweep.out)
    if data.get("data_dir") is not None:
        data["data_dir"] = str((base / str(data["data_dir"])).resolve())
    wanted = {r["source"] for r in runs}
    sources = []
    for entry in data["sources"]:
        entry = {"name": entry} if isinstance(entry, str) else dict(entry)
        if str(entry["name"]) in wanted:
            if entry.get("path") is not None:
                entry["path"] = str((base / str(entry["path"])).resolve())
            sources.append(entry)
    data["sources"] = sources
    slurm = {}
    for entry in data["models"]:
        if isinstance(entry, dict) and entry.get("slurm"):
            slurm[str(entry["name"])] = entry["slurm"]
    budgets: dict[str, list[int]] = {}
    for r in runs:
        if r.get("model") is None:
            raise RobustscaleError(f"suggestion: run of {r['params']:.3g} parameters names no model "
                                   "of the sweep")
        budgets.setdefault(r["model"], []).append(round(r["samples"]))
    data["models"] = [{"name": m, "samples": sorted(set(s)), **({"slurm": slurm[m]} if m in slurm else {})}
                      for m, s in budgets.items()]
    write_text(path, yaml.safe_dump(data, sort_keys=False))


def n_star_record(plan: dict, seen: float | None = None) -> dict:
    """A suggestion's `before`/`expected` ({n_star, n_star_lo, n_star_hi}) as
    `laws.planning.bounded`'s record."""
    from robustscale.laws.planning import bounded

    keys = ("n_star_lo", "n_star_hi", "n_star_not_determined_below")
    has_interval = any(plan.get(k) is not None for k in keys)
    seen = plan.get("n_star_not_determined_below") or seen
    return bounded(plan.get("n_star"), plan.get("n_star_lo"), plan.get("n_star_hi"), seen=seen,
                   level=plan.get("level", LEVEL) if has_interval else None)


def render_design(summary: dict) -> str:
    """One round in words: N* at the target after it, and what the suggestion is expected to give."""
    from robustscale.laws.planning import describe_bounded

    def describe(plan):
        return describe_bounded(n_star_record(plan, summary.get("smallest_params")), count, "params")

    lines = [(f"design round {summary['round']}: {len(summary['finished'])} run(s) trained, "
              f"{len(summary['skipped'])} already done; N* = {describe(summary['n_star'])}")]
    if summary.get("next"):
        how = "the grid's next row" if summary.get("chosen_by") == "grid-row" else "suggest"
        lines.append(f"  next: {len(summary['suggested'])} run(s) chosen by {how} for {summary['spent']:.3g} "
                     f"FLOPs -> {summary['next']}; expected N* = {describe(summary['expected'])}")
    lines += [f"warning: {w}" for w in summary.get("warnings", [])]
    return "\n".join(lines)
