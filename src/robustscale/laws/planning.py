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


def bounded(value, lo=None, hi=None, *, floor: float = 1.0, seen: float | None = None,
            level: float | None = None, ceiling: float | None = None) -> dict:
    """An estimate of a count (parameters, samples) and its interval, with nothing below `floor`.

    A value or bound below one parameter or sample is not an answer: it means the data leave that side
    open. It becomes None, and `not_determined_below` says up to where the data do speak: the interval's
    upper end, else the estimate, else `seen` (the smallest count the runs tried). `ceiling` (e.g. F/c
    parameters for N*(F): at least one sample) is the same on the upper side: a value or bound above it
    is None too (an interval's upper end then reads "not determined above"). Returns {"value", "lo",
    "hi", "level", "open_below", "not_determined_below"}.
    """
    def ok(x):
        return (x is not None and np.isfinite(x) and x >= floor
                and (ceiling is None or x <= ceiling))

    value, lo, hi = (float(x) if ok(x) else None for x in (value, lo, hi))
    has_interval = level is not None
    open_below = value is None or (has_interval and lo is None)
    below = None
    if open_below:
        below = next((x for x in (hi, value, seen) if x is not None), None)
    return {"value": value, "lo": lo if has_interval else None, "hi": hi if has_interval else None,
            "level": level, "open_below": open_below, "not_determined_below": below}


def bounded_fields(key: str, value, lo=None, hi=None, *, seen: float | None = None,
                   level: float | None = None, ceiling: float | None = None) -> dict:
    """`bounded`'s record as the keys of a JSON row: {key, key_lo, key_hi (with a level),
    key_not_determined_below}; `plan_bounds` turns them back into the record."""
    b = bounded(value, lo, hi, seen=seen, level=level, ceiling=ceiling)
    out = {key: b["value"]}
    if level is not None:
        out[f"{key}_lo"], out[f"{key}_hi"] = b["lo"], b["hi"]
    out[f"{key}_not_determined_below"] = b["not_determined_below"]
    return out


def describe_bounded(b: dict, fmt, unit: str) -> str:
    """`bounded`'s record in words: "275,226 params [90% interval 12,003 to 510,078]", or
    "not determined below 510,078 params" where the data leave the lower side open."""
    level = f"{100 * b['level']:.0f}% interval" if b["level"] else None
    unit = f" {unit}" if unit else ""
    if b["value"] is None:
        text = (f"not determined below {fmt(b['not_determined_below'])}{unit}" if b["not_determined_below"]
                else "not determined")
        return text + (f" ({level} upper end {fmt(b['hi'])})" if level and b["hi"] is not None
                       and b["hi"] != b["not_determined_below"] else "")
    text = f"{fmt(b['value'])}{unit}"
    if not level:
        return text
    if b["open_below"]:
        return text + f" ({level}: not determined below {fmt(b['not_determined_below'])})"
    upper = fmt(b["hi"]) if b["hi"] is not None else "not determined above"
    return text + f" [{level} {fmt(b['lo'])} to {upper}]"


def bounded_plan(row: dict, seen: dict | None = None) -> dict:
    """A plan row (`plan_table`'s) with `bounded`'s rule on n_star and d_star: values and bounds below one
    become None, and `<key>_not_determined_below` (None where determined) says up to where the data speak.
    seen: {"n_star": smallest parameter count run, "d_star": smallest sample count}, the last resort of
    that (`law_seen` gives a fitted law's)."""
    out = dict(row)
    for key in ("n_star", "d_star"):
        fields = bounded_fields(key, row.get(key), row.get(f"{key}_lo"), row.get(f"{key}_hi"),
                                seen=(seen or {}).get(key), level=row.get("level"))
        out.update(fields)
    return out


def law_seen(est) -> dict:
    """{"n_star": the smallest parameter count, "d_star": the smallest sample count} of the runs a law was
    fitted to (`bounded_plan`'s seen; None for a preset or a law file written before they were kept)."""
    return {"n_star": getattr(est, "min_params_", None), "d_star": getattr(est, "min_samples_", None)}


def plan_bounds(row: dict, key: str, level: float | None = None) -> dict:
    """`bounded`'s record of one key ("n_star", "d_star") of a `bounded_plan` or `bounded_fields` row (for
    `describe_bounded`); level: the interval's where the row does not carry it."""
    below = row.get(f"{key}_not_determined_below")
    return {"value": row.get(key), "lo": row.get(f"{key}_lo"), "hi": row.get(f"{key}_hi"),
            "level": row.get("level", level) if f"{key}_lo" in row else None, "open_below": below is not None,
            "not_determined_below": below}
