"""Uncertainty beyond the paper: resample runs with replacement, refit, take percentile intervals."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from robustscale.errors import RobustscaleError
from robustscale.laws.observations import load_observations


def bootstrap(estimator, obs, k: int, seed: int = 0, on_step: Callable[[], None] | None = None) -> list[dict]:
    """Refit a fitted estimator's settings on k resamples of the runs; stores them as bootstrap_.

    Parameters: estimator (fitted; its get_params() are reused), obs (the observations it was
    fitted to), k (resamples), seed, on_step (called after each refit, e.g. a progress bar).
    Each resample draws runs with replacement within each source (so every source keeps its run
    count) and renames repeats so they stay distinct runs. Returns the list of params dicts.
    """
    estimator._check_fitted()
    if k < 2:
        raise RobustscaleError(f"bootstrap: expected K >= 2 resamples, got {k}")
    obs = load_observations(obs)
    rng = np.random.default_rng(seed)
    by_source = {source: [rows for _, rows in grp.groupby("run", sort=False)] for source, grp in obs.groupby("source", sort=False)}
    samples = []
    for _ in range(k):
        parts = []
        for runs in by_source.values():
            for i, j in enumerate(rng.integers(0, len(runs), size=len(runs))):
                parts.append(runs[j].assign(run=f"{runs[j]['run'].iloc[0]}#{i}"))
        est = type(estimator)(**estimator.get_params())
        samples.append(est.fit(pd.concat(parts, ignore_index=True)).params_)
        if on_step is not None:
            on_step()
    estimator.bootstrap_ = samples
    return samples


def intervals(estimator, flops: float, fid: float = 0.0, level: float = 0.95) -> dict:
    """Percentile intervals from estimator.bootstrap_: every parameter, and n_star, d_star, loss
    (L*), accuracy at (flops, fid). Returns {"level", "k", "params": {name: [lo, hi]},
    "n_star": [lo, hi], "d_star": [lo, hi], "loss": [lo, hi], "accuracy": [lo, hi]}."""
    samples = getattr(estimator, "bootstrap_", None)
    if not samples:
        raise RobustscaleError("law: has no bootstrap samples; fit with --bootstrap K")
    q = [50 * (1 - level), 50 * (1 + level)]

    def pct(values):
        return [float(v) for v in np.percentile(np.asarray(values, dtype=float), q)]

    params = {}
    for name, v in samples[0].items():
        if isinstance(v, dict):  # Approach 1: {source: {a, b, ...}}
            params[name] = {key: pct([s[name][key] for s in samples if name in s]) for key in v if key != "fid"}
        else:
            params[name] = pct([s[name] for s in samples])
    plans = [estimator.with_params(s).plan(flops, fid) for s in samples]
    out = {"level": level, "k": len(samples), "params": params}
    for key in ("n_star", "d_star", "loss", "accuracy"):
        out[key] = pct([p[key] for p in plans])
    return out
