"""Build a report: observations -> one fitted law (with intervals) -> figures, report.json, index.html.

The law is fitted once here (Approach 2 with the identifiability guard; where the runs cannot pin
an exponent, the fit is anchored to the paper's law and says so) and everything downstream — the
figures, the plan table, the page's opening paragraph, `robustscale demo`'s summary — reads this
one fit.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from robustscale.errors import RobustscaleError
from robustscale.fileio import write_json, write_table, write_text
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
                 budget: float | None = None, design: list[dict] | None = None,
                 marked: list[str] | None = None) -> dict:
    """Fit (or load) the law, draw every figure and write index.html; returns report.json's content.

    Parameters: source (runs dir or observations table), out (folder), law (law.json or preset
    name; None = fit Approach 2 here), bootstrap (resamples for intervals; 0 = none), level
    (interval level, in (0, 1)), progress (a progress bar on stderr), budget (FLOPs of the plan;
    None = 10x the largest run's), design (an adaptive sweep's rounds, `demo.design_rounds`: N* after
    each is shown and drawn), marked (runs drawn apart on the isoFLOP figure: a design's later rounds).
    """
    from robustscale.laws import Approach1, fit_law, load_law, save_law
    from robustscale.progress import progress_bar

    if not 0 < level < 1:
        raise RobustscaleError(f"level: expected a number in (0, 1), got {level}")
    if bootstrap == 1 or bootstrap < 0:
        raise RobustscaleError(f"bootstrap: expected 0 (no intervals) or at least 2 resamples, got {bootstrap}")
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
            law2 = fit_law(obs, approach=2, auto_prior=AUTO_PRIOR, bootstrap=k, on_step=advance)
        else:
            law2 = load_law(law)
        if not hasattr(law2, "predict_loss"):
            raise RobustscaleError(f"law: {law} is approach {law2.approach}; the report needs approach 2 or 3")
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
        "observations": int(len(obs)), "runs": int(obs["run"].nunique()), "main_source": main_source, "fid": fid,
        "trained": _trained(obs),
        "approach2": _law_summary(law2, [budget, *FORECAST_FLOPS], fid, level, seen),
        "approach1": None if law1 is None else {"params": law1.params_, **_approach1_optimum(law1, budget, fid, seen)},
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
        "isoflop": lambda p: plots.plot_isoflop(obs, law2, p, fid=fid, marked=marked, n_star_rounds=n_star_rounds),
        "law_fit": lambda p: plots.plot_law_fit(obs, law2, p),
        # from the runs' own compute out to Fig. 1's horizon, so the forecast starts where the data are
        "forecast": lambda p: plots.plot_forecast(law2, p, fid=sorted({0.0, fid}), flops_range=(
            min(getattr(law2, "max_flops_", None) or FORECAST_FLOPS[0], FORECAST_FLOPS[0]), FORECAST_FLOPS[1])),
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
            "flops": [float(obs["flops"].min()), float(obs["flops"].max())]}


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
        "status": {k: "anchored" if k in anchored else "identified" if identified.get(k, True) else "not identified"
                   for k in est.params_},
        "anchored": getattr(est, "anchored_", None),
        "diagnostics": diagnostics,
        "plans": [bounded_plan(row, seen) for row in plan_table(est, budgets, fid, level)],
    }


def _count(x: float) -> str:
    if x >= 1e12:
        return f"{x:.2g}"
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if x >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


def _range(lo, hi, fmt, level) -> str:
    return "" if lo is None or hi is None or not level else f" ({100 * level:.0f}% interval {fmt(lo)}–{fmt(hi)})"


def story(r: dict) -> str:
    """The report's opening paragraph, in plain words: what was trained, what the law says, how sure."""
    from robustscale.laws.planning import describe_bounded, plan_bounds

    t, law, plan = r["trained"], r["approach2"], r["plan"]
    p = law["params"]
    n, d = t["params"], t["samples"]

    def pct(x):
        return f"{100 * x:.0f}%"

    trained = (f"{t['runs']} adversarially trained models ({len(n)} sizes from {_count(n[0])} to {_count(n[-1])} "
               f"parameters, each trained on {_count(d[0])} to {_count(d[-1])} samples) were each scored by their "
               f"robust loss on held-out images.")
    n_text, d_text = (describe_bounded(plan_bounds(plan, k), _count, unit)
                      for k, unit in (("n_star", "parameters"), ("d_star", "samples")))
    split = (f"the best split is a model of {n_text} trained on {d_text}" if plan["n_star"] is not None
             else f"the runs leave the best model size open ({n_text}; data {d_text})")
    says = (f"The fitted law says the loss falls like N^-{p['alpha']:.2f} with model size and D^-{p['beta']:.2f} "
            f"with training data, towards a floor of {p['E']:.3g}. With {plan['flops']:.2g} FLOPs "
            f"({plan['flops'] / t['flops'][1]:.2g}x the largest compute used here), {split}, predicted to reach "
            f"{pct(plan['accuracy'])} robust accuracy"
            f"{_range(plan.get('accuracy_lo'), plan.get('accuracy_hi'), pct, law['level'])}.")
    for rd in r.get("design") or []:
        says += (f" After round {rd['round']} of the design ({len(rd['runs'])} {'' if rd['round'] == 1 else 'more '}"
                 f"run{'s' if len(rd['runs']) > 1 else ''}), N* = "
                 f"{describe_bounded(rd['n_star'], _count, 'parameters')}.")
    a1 = r.get("approach1")
    if a1 and a1.get("n_star") and plan["n_star"]:
        ratio = plan["n_star"] / a1["n_star"]
        if not 1 / AGREEMENT <= ratio <= AGREEMENT:
            says += (f" But Approach 1 (the envelope of the training curves) puts N* at {_count(a1['n_star'])} "
                     f"(the law's N* is {ratio:.2g}x that): the two disagree by more than {AGREEMENT:g}x, so take "
                     f"neither plan at its word at these sizes.")
    unknown = [k for k in ("alpha", "beta") if not law["identified"].get(k, True)]
    anchored = law.get("anchored")
    if anchored and anchored.get("strength") is None:
        sure = (f"How sure: these runs alone do not pin down the exponents, so they are taken from the prior law "
                f"{anchored.get('prior')} (an anchored fit); N* follows that prior more than these runs.")
    elif anchored:
        sure = (f"How sure: these runs alone do not pin down the exponents, and with the prior law "
                f"{anchored.get('prior')}'s exponents fixed they leave no room for model size, so the exponents are "
                f"pulled towards the prior instead (prior strength {anchored['strength']:g}); N* rests on both the "
                f"prior and these runs, and its interval is wide.")
    elif unknown:
        sure = (f"How sure: {' and '.join(unknown)} is not identified by these runs (see the findings below); "
                f"treat N* as a rough guide.")
    else:
        sure = "How sure: both exponents are identified by these runs" + (
            f"; brackets are {100 * (law['level'] or 0):.0f}% bootstrap intervals (the runs' losses redrawn from their residuals)." if law["level"] else ".")
    return " ".join((trained, says, sure))
