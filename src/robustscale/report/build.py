"""Build a report: observations -> one fitted law (with intervals) -> figures, report.json, index.html.

The law is fitted once here (Approach 2 with the identifiability guard; where the runs cannot pin
an exponent, the fit is anchored to the paper's law and says so) and everything downstream — the
figures, the plan table, the page's opening paragraph, `robustscale demo`'s summary — reads this
one fit.
"""

from __future__ import annotations

import os
import time
from functools import partial
from pathlib import Path

from robustscale.errors import RobustscaleError
from robustscale.fileio import write_json, write_table, write_text
from robustscale.formatting import anchored_sentence, count, fixed, pct, sci
from robustscale.report.html import render_html

FORECAST_FLOPS = (1e24, 1e30)  # Fig. 1's horizon
BOOTSTRAP_K = 20  # resamples for the intervals; the paper reports none, so this is ours
LEVEL = 0.9  # default interval level of every bracket in the report (as `plan` and `tradeoff`)
PLAN_MULTIPLE = 10  # plans are made at 10x the largest budget observed: the next study one would run
AGREEMENT = 10  # Approaches 1 and 2 "agree" on N* within this factor (the paper's agree within ~2x, Table 3)
# A law that runs this small cannot pin is anchored to the paper's CIFAR-10 Approach 2 exponents.
AUTO_PRIOR = "paper-approach2"
FIGURES = ("training_curves", "isoflop", "law_fit", "forecast", "tradeoff")


def load_source(source: str | os.PathLike):
    """Observations from a runs directory (collected on the fly) or a .csv/.parquet table."""
    from robustscale.laws import load_observations

    path = Path(source)
    if path.is_dir():
        from robustscale.runs import observations

        return observations(path)
    if not path.exists():
        raise RobustscaleError(f"{path}: no such runs directory or observations table")
    return load_observations(path)


def write_report(source: str | os.PathLike, out: str | os.PathLike, law: str | os.PathLike | None = None,
                 bootstrap: int = BOOTSTRAP_K, level: float = LEVEL, progress: bool = False,
                 exclude_small_runs: bool = True, accuracy_map: str = "runs", budget: float | None = None,
                 design: list[dict] | None = None, marked: list[str] | None = None) -> dict:
    """Fit (or load) the law, draw every figure and write index.html; returns report.json's content.

    Parameters: source (runs dir or observations table), out (folder), law (law.json or preset
    name; None = fit Approach 2 here), bootstrap (resamples for intervals; 0 = none), level
    (interval level, in (0, 1)), progress (a progress bar on stderr), exclude_small_runs and
    accuracy_map (the fit's, see Approach2; for a law fitted here), budget (FLOPs of the plan;
    None = 10x the largest run's), design (an adaptive sweep's rounds, `demo.design_rounds`: N* after
    each is shown and drawn), marked (runs drawn apart on the isoFLOP figure: a design's later rounds).
    Returns: report.json's content; its approach2.excluded_runs lists the runs the fit left out.
    """
    from robustscale.laws import Approach1, fit_law, load_law, save_law
    from robustscale.progress import progress_bar

    if not 0 < level < 1:
        raise RobustscaleError(f"level: expected a number in (0, 1), got {level}")
    if bootstrap == 1 or bootstrap < 0:
        raise RobustscaleError(f"bootstrap: expected 0 (no intervals) or at least 2 resamples, "
                               f"got {bootstrap}")
    t0 = time.perf_counter()
    out = Path(out)
    obs = load_source(source)
    write_table(out / "observations.csv", obs)
    # The source with the most runs is the one the figures describe (the paper's PFGM++ / DG-20).
    main_source = str(obs.groupby("source")["run"].nunique().idxmax())
    fid = float(obs.loc[obs["source"] == main_source, "fid"].iloc[0])
    budget = PLAN_MULTIPLE * float(obs["flops"].max()) if budget is None else float(budget)
    # nothing below one parameter or sample is an answer (laws.planning.bounded)
    seen = {"n_star": float(obs["params"].min()), "d_star": float(obs["samples"].min())}

    k = bootstrap if law is None else 0
    with progress_bar(k + 1 + len(FIGURES), "report", enabled=progress) as advance:
        if law is None:
            law2 = fit_law(obs, approach=2, auto_prior=AUTO_PRIOR, bootstrap=k, on_step=advance,
                           exclude_small_runs=exclude_small_runs, accuracy_map=accuracy_map)
        else:
            law2 = load_law(law)
        if not hasattr(law2, "predict_loss"):
            raise RobustscaleError(f"law: {law} is approach {law2.approach}; "
                                   "the report needs approach 2 or 3")
        try:
            law1 = Approach1().fit(obs)
        except RobustscaleError:  # too few runs per source for an envelope: that figure fits its own
            law1 = None
        advance()
        figures, failed = _draw(obs, law2, law1, out, main_source, fid, budget, advance, design, marked)

    save_law(law2, out / "law.json")
    if law1 is not None:
        save_law(law1, out / "approach1.json")
    result = {
        "index": str(out / "index.html"), "figures": figures, "failed_figures": failed, "source": str(source),
        "observations": int(len(obs)), "runs": int(obs["run"].nunique()), "main_source": main_source,
        "fid": fid,
        "trained": _trained(obs),
        "approach2": _law_summary(law2, [budget, *FORECAST_FLOPS], fid, level, seen),
        "approach1": None if law1 is None else {"params": law1.params_,
                                                **_approach1_optimum(law1, budget, fid, seen)},
        "design": design,
        "wall_s": None,
    }
    result["plan"] = result["approach2"]["plans"][0]
    result["story"] = story(result)
    result["wall_s"] = round(time.perf_counter() - t0, 2)
    write_json(out / "report.json", result)
    write_text(out / "index.html", render_html(result))
    return result


def _approach1_optimum(law1, budget: float, fid: float, seen: dict) -> dict:
    """Approach 1's N*, D* at the budget; below one parameter or sample: None and not determined below X."""
    from robustscale.laws.planning import bounded

    out = {}
    for key, value in zip(("n_star", "d_star"), law1.optimum(budget, fid)[:2]):
        b = bounded(float(value), seen=seen[key])
        out[key], out[f"{key}_not_determined_below"] = b["value"], b["not_determined_below"]
    return out


def _draw(obs, law2, law1, out: Path, main_source: str, fid: float, budget: float, advance, design=None,
          marked=None):
    """Every figure of FIGURES as out/NAME.png; ({name: path}, {name: why not drawn})."""
    from robustscale.laws import plots

    # an adaptive sweep's N* intervals, one per round, drawn at their target on the isoFLOP figure
    n_star_rounds = [(f"N* after round {r['round']}", budget, r["n_star"]) for r in design or []]
    draw = {
        "training_curves": lambda p: plots.plot_envelope(obs, p, law=law1, source=main_source),
        "isoflop": lambda p: plots.plot_isoflop(obs, law2, p, fid=fid, marked=marked,
                                                n_star_rounds=n_star_rounds),
        "law_fit": lambda p: plots.plot_law_fit(obs, law2, p),
        # from the runs' own compute out to Fig. 1's horizon, so the forecast starts where the data are
        "forecast": lambda p: plots.plot_forecast(
            law2, p, fid=sorted({0.0, fid}), metric="loss" if law2.accuracy_ is None else "accuracy",
            flops_range=(min(getattr(law2, "max_flops_", None) or FORECAST_FLOPS[0], FORECAST_FLOPS[0]),
                         FORECAST_FLOPS[1])),
        "tradeoff": lambda p: plots.plot_tradeoff(law2, p, flops=budget, fid=fid),
    }
    figures, failed = {}, {}
    for name in FIGURES:
        path = out / f"{name}.png"
        try:
            draw[name](path)
            figures[name] = str(path)
        except (RobustscaleError, ValueError, FloatingPointError) as e:
            # a degenerate fit (e.g. runs too short to learn) has no finite optimum to draw:
            # the page says so instead of the whole report failing
            failed[name] = f"{type(e).__name__}: {e}"
            path.unlink(missing_ok=True)
        advance()
    return figures, failed


def _trained(obs) -> dict:
    """What the runs were: how many, their model sizes and their sample budgets."""
    final = obs.loc[obs.groupby("run")["samples"].idxmax()]
    return {"runs": int(len(final)), "params": sorted(int(n) for n in final["params"].unique()),
            "samples": sorted(int(d) for d in final["samples"].unique()),
            "flops": [float(obs["flops"].min()), float(obs["flops"].max())],
            # which images the loss was measured on (runs.EVAL_SPLITS); None for tables that do not say
            "eval_split": sorted(obs["eval_split"].dropna().unique()) if "eval_split" in obs else None}


def _scored_images(splits: list[str] | None) -> str:
    """The images behind the law's loss, in words (training's eval_split)."""
    if splits == ["test"]:
        return "the same test-split images (the paper's CW_test_loss)"
    if splits == ["heldout"]:
        return "the same training images, held out of training"
    if not splits:
        return "held-out images"
    return "held-out images (the test split for some runs, held-out training images for others)"


def _law_summary(est, budgets: list[float], fid: float, level: float, seen: dict | None = None) -> dict:
    """The law as every reader shows it: parameters, their intervals, the guard's verdict, plans."""
    from robustscale.laws import parameter_intervals, plan_table
    from robustscale.laws.planning import bounded_plan

    boot = bool(getattr(est, "bootstrap_", None))
    diagnostics = list(getattr(est, "diagnostics_", None) or [])
    identified = dict(getattr(est, "identified_", None) or {})
    anchored = {d["param"] for d in diagnostics if d["kind"] == "anchored"}
    return {
        "params": dict(est.params_),
        "level": level if boot else None,
        "k": len(est.bootstrap_) if boot else 0,
        "intervals": parameter_intervals(est, level) if boot else {},
        "identified": identified,
        # per parameter, in words: taken from a prior law, determined by the runs, or not
        "status": {k: "anchored" if k in anchored else "identified" if identified.get(k, True)
                   else "not identified" for k in est.params_},
        "anchored": getattr(est, "anchored_", None),
        "diagnostics": diagnostics,
        "plans": [bounded_plan(row, seen) for row in plan_table(est, budgets, fid, level)],
        "excluded_runs": list(getattr(est, "excluded_runs_", None) or []),
        # where predicted accuracy comes from: "runs", a borrowed map by name, or None (not predicted)
        "accuracy_map": getattr(est, "accuracy_map_", None),
    }


def _range(lo, hi, fmt, level) -> str:
    if lo is None or hi is None or not level:
        return ""
    return f" ({100 * level:.0f}% interval {fmt(lo)}–{fmt(hi)})"


def story(r: dict) -> str:
    """The report's opening paragraph, in plain words: what was trained, what the law says, how sure.
    It claims only what the observations hold (any study's runs, not only adversarial training)."""
    from robustscale.laws.planning import describe_bounded, plan_bounds

    t, law, plan = r["trained"], r["approach2"], r["plan"]
    p = law["params"]
    n, d = t["params"], t["samples"]
    trained = (f"{t['runs']} runs ({len(n)} model sizes from {count(n[0])} to {count(n[-1])} parameters, "
               f"trained on {count(d[0])} to {count(d[-1])} samples), each scored by its robust loss on "
               f"{_scored_images(t.get('eval_split'))}.")
    excluded = law.get("excluded_runs") or []
    if excluded:
        trained += (f" The fit leaves {len(excluded)} of them out by {excluded[0]['reason']}; "
                    "refit with them kept to compare.")
    n_text, d_text = (describe_bounded(plan_bounds(plan, k), count, unit)
                      for k, unit in (("n_star", "parameters"), ("d_star", "samples")))
    split = (f"the best split is a model of {n_text} trained on {d_text}" if plan["n_star"] is not None
             else f"the runs leave the best model size open ({n_text}; data {d_text})")
    says = (f"The fitted law says the loss falls like N^-{p['alpha']:.2f} with model size and "
            f"D^-{p['beta']:.2f} with training data, towards a floor of {p['E']:.3g}. With "
            f"{sci(plan['flops'])} FLOPs ({plan['flops'] / t['flops'][1]:.2g}x the largest compute used "
            f"here), {split}, predicted to reach a loss of {fixed(plan['loss'], 3)}"
            f"{_range(plan.get('loss_lo'), plan.get('loss_hi'), lambda x: fixed(x, 3), law['level'])}")
    if plan.get("accuracy") is not None:
        borrowed = law.get("accuracy_map") not in (None, "runs")
        whole_pct = partial(pct, decimals=0)
        says += (f", or {pct(plan['accuracy'], 0)} robust accuracy"
                 f"{_range(plan.get('accuracy_lo'), plan.get('accuracy_hi'), whole_pct, law['level'])}")
        if borrowed:
            says += f" by the borrowed loss-to-accuracy regression {law['accuracy_map']}"
    says += "."
    for rd in r.get("design") or []:
        says += (f" After round {rd['round']} of the design ({len(rd['runs'])} "
                 f"{'' if rd['round'] == 1 else 'more '}run{'s' if len(rd['runs']) > 1 else ''}), N* = "
                 f"{describe_bounded(rd['n_star'], count, 'parameters')}.")
    a1 = r.get("approach1")
    if a1 and a1.get("n_star") and plan["n_star"]:
        ratio = plan["n_star"] / a1["n_star"]
        if not 1 / AGREEMENT <= ratio <= AGREEMENT:
            says += (f" But Approach 1 (the envelope of the training curves) puts N* at "
                     f"{count(a1['n_star'])} (the law's N* is {ratio:.2g}x that): the two disagree by more "
                     f"than {AGREEMENT:g}x, so take neither plan at its word at these sizes.")
    unknown = [k for k in ("alpha", "beta") if not law["identified"].get(k, True)]
    anchored = law.get("anchored")
    if anchored:
        follows = ("N* follows that prior more than these runs" if anchored.get("strength") is None
                   else "its interval is wide")
        sure = f"How sure: this is {anchored_sentence(anchored)}; {follows}."
    elif unknown:
        sure = (f"How sure: {' and '.join(unknown)} is not identified by these runs (see the findings "
                "below); treat N* as a rough guide.")
    else:
        sure = "How sure: both exponents are identified by these runs" + (
            f"; brackets are {100 * law['level']:.0f}% bootstrap intervals (the runs' losses redrawn from "
            "their residuals)." if law["level"] else ".")
    return " ".join((trained, says, sure))
