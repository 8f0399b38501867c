"""Plans at the user's budgets, with bootstrap intervals: the one function every stage calls.

`plan_table` is what `robustscale plan`, `tradeoff`, the report and the demo print; a law fitted
with bootstrap samples (`robustscale.laws.bootstrap`) gives every number an interval (`<key>_lo`,
`<key>_hi`), and `parameter_intervals` / `intervals` give the parameters theirs.
"""

from __future__ import annotations

import numpy as np

from robustscale.errors import RobustscaleError

INTERVAL_KEYS = ("n_star", "d_star", "loss", "accuracy")
DEFAULT_LEVEL = 0.9
# Where a study plans next: one decade beyond its largest run (the guard's bootstrap check and the
# fit's printed intervals use it).
PLANNING_MULTIPLE = 10.0


def percentiles(values, level: float) -> list[float | None]:
    """[lo, hi] of the central `level` interval of the finite values (None when there are none)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return [None, None]
    return [float(x) for x in np.percentile(v, [50 * (1 - level), 50 * (1 + level)])]


def parameter_intervals(estimator, level: float = 0.9) -> dict:
    """{name: [lo, hi]} for every parameter (Approach 1: {source: {key: [lo, hi]}})."""
    samples = getattr(estimator, "bootstrap_", None)
    if not samples:
        raise RobustscaleError("law: has no bootstrap samples; fit with bootstrap=K")
    out = {}
    for name, v in samples[0].items():
        if isinstance(v, dict):
            out[name] = {key: percentiles([s[name][key] for s in samples if name in s], level)
                         for key in v if key not in ("fid", "n_points")}
        else:
            out[name] = percentiles([s[name] for s in samples], level)
    return out


def intervals(estimator, flops: float, fid: float = 0.0, level: float = 0.9) -> dict:
    """Every parameter's interval and the plan's at one budget: {"level", "k", "params",
    "n_star": [lo, hi], "d_star", "loss", "accuracy"} (the plan's come from `plan_table`)."""
    row = plan_table(estimator, [flops], fid, level)[0]
    out = {"level": level, "k": len(estimator.bootstrap_), "params": parameter_intervals(estimator, level)}
    out.update({key: [row[f"{key}_lo"], row[f"{key}_hi"]] for key in INTERVAL_KEYS})
    return out


def default_budget(est) -> float:
    """The planning budget of a fitted law: 10× the largest observed training FLOPs (1e25, Table
    3's budget, for the presets, which carry no observations)."""
    largest = getattr(est, "max_flops_", None)
    return PLANNING_MULTIPLE * largest if largest else 1e25


def _check_level(level: float) -> float:
    level = float(level)
    if not 0 < level < 1:
        raise RobustscaleError(f"level: expected a number in (0, 1), got {level:g}")
    return level


def _sample_laws(est):
    return [est.with_params(s) for s in (getattr(est, "bootstrap_", None) or [])]


def _finite_or_none(row: dict) -> dict:
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}


def plan_table(est, flops_list, fid: float = 0.0, level: float = DEFAULT_LEVEL) -> list[dict]:
    """One plan per budget: n_star, d_star, loss, accuracy (+ irreducible_loss, accuracy_limit,
    flops, fid, a, b); with bootstrap samples also `<key>_lo`, `<key>_hi` for n_star, d_star, loss,
    accuracy at the central `level` interval, and `level`. Non-finite numbers are None.
    """
    level = _check_level(level)
    samples = _sample_laws(est)
    rows = []
    for flops in np.atleast_1d(np.asarray(flops_list, dtype=float)):
        row = est.plan(float(flops), fid)
        if samples:
            plans = []
            for law in samples:
                try:
                    plans.append(law.plan(float(flops), fid))
                except RobustscaleError:
                    continue
            for key in INTERVAL_KEYS:
                row[f"{key}_lo"], row[f"{key}_hi"] = percentiles([p[key] for p in plans], level)
            row["level"] = level
        rows.append(_finite_or_none(row))
    return rows


def tradeoff_table(est, flops: float, fid: float, omega_n: float, level: float = DEFAULT_LEVEL) -> dict:
    """Eq 6's trade-off at one budget, its plan (`plan_table`'s row) under "plan", and with
    bootstrap samples `omega_d_lo/hi`, `overhead_lo/hi` at the central `level` interval."""
    if not hasattr(est, "tradeoff"):
        raise RobustscaleError(f"law: approach {est.approach} has no loss formula; the trade-off needs "
                               "approach 2 or 3")
    row = est.tradeoff(flops, fid, omega_n)
    samples = _sample_laws(est)
    if samples:
        trades = []
        for law in samples:
            try:
                trades.append(law.tradeoff(flops, fid, omega_n))
            except RobustscaleError:  # in this resample no dataset size reaches the optimal loss
                continue
        for key in ("omega_d", "overhead"):
            row[f"{key}_lo"], row[f"{key}_hi"] = percentiles([t[key] for t in trades], level)
        row["level"] = level
    row["plan"] = plan_table(est, [flops], fid, level)[0]
    return _finite_or_none(row)
