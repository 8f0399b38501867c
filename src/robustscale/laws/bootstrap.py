"""Uncertainty beyond the paper: refit on resampled data, take percentile intervals.

A law with a loss formula (Approaches 2, 3) is resampled by residuals: every run keeps its model
size, dataset size and FID (the study's design), and its loss becomes the law's prediction times a
log residual drawn, with replacement, from those of the same source (rescaled by √(n/(n−p)) for the
p fitted parameters). Drawing whole runs instead would drop sizes from a 5-size grid at random and
give intervals hundreds of times wide. Approach 1 (no loss formula) resamples whole runs within each
source. Each refit starts from the point fit (`warm_start`): the question is how far the data move
the minimum, not which of the grid's basins a resample falls into. bench/bench_law_intervals.py
measures the coverage of the resulting 90% intervals on simulated studies.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from robustscale.errors import RobustscaleError
from robustscale.laws.observations import final_points, load_observations


def _resample_runs(obs: pd.DataFrame, rng) -> pd.DataFrame:
    """Runs drawn with replacement within each source; repeats renamed to stay distinct runs."""
    parts = []
    for _, grp in obs.groupby("source", sort=False):
        runs = [rows for _, rows in grp.groupby("run", sort=False)]
        parts += [runs[j].assign(run=f"{runs[j]['run'].iloc[0]}#{i}")
                  for i, j in enumerate(rng.integers(0, len(runs), size=len(runs)))]
    return pd.concat(parts, ignore_index=True)


def _residual_pools(est, obs: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Each run's final point with its predicted log loss, and each source's centred, rescaled
    log residuals."""
    runs = final_points(obs)
    predicted = est.predict_loss(runs["params"], runs["samples"], runs["fid"])
    runs["log_pred"] = np.log(np.asarray(predicted, dtype=float))
    resid = np.log(runs["loss"]) - runs["log_pred"]
    n_params = len(est.params_)
    pools = {}
    for source, r in resid.groupby(runs["source"]):
        r = r.to_numpy() - r.mean()
        pools[source] = r * np.sqrt(len(r) / max(len(r) - n_params, 1)) if len(r) > n_params else r
    return runs, pools


def _resample_residuals(obs: pd.DataFrame, runs: pd.DataFrame, pools: dict, rng) -> pd.DataFrame:
    """Every run's losses scaled so its final loss is prediction × exp(a drawn residual)."""
    draw = np.array([pools[s][rng.integers(len(pools[s]))] for s in runs["source"]])
    factor = pd.Series(np.exp(runs["log_pred"].to_numpy() + draw - np.log(runs["loss"].to_numpy())),
                       index=runs["run"].to_numpy())
    return obs.assign(loss=obs["loss"] * obs["run"].map(factor).to_numpy())


def bootstrap(estimator, obs, k: int, seed: int = 0, on_step: Callable[[], None] | None = None) -> list[dict]:
    """Refit a fitted estimator's settings on k resamples; stores the params dicts as bootstrap_.

    Parameters: estimator (fitted; its get_params() are reused), obs (the observations it was
    fitted to), k (resamples), seed, on_step (called after each refit, e.g. a progress bar).
    A resample the estimator cannot fit (a source left with too few runs) is drawn again.
    """
    estimator._check_fitted()
    if k < 2:
        raise RobustscaleError(f"bootstrap: expected k >= 2 resamples, got {k}")
    obs = load_observations(obs)
    rng = np.random.default_rng(seed)
    settings = estimator.get_params()
    if "warm_start" in settings:
        settings["warm_start"] = True
    if hasattr(estimator, "predict_loss"):
        runs, pools = _residual_pools(estimator, obs)
        resample = lambda: _resample_residuals(obs, runs, pools, rng)  # noqa: E731
    else:
        resample = lambda: _resample_runs(obs, rng)  # noqa: E731
    samples, failures = [], 0
    while len(samples) < k:
        est = type(estimator)(**settings)
        est.params_ = dict(estimator.params_)
        try:
            samples.append(est.fit(resample()).params_)
        except RobustscaleError:
            failures += 1
            if failures > k:
                raise RobustscaleError(f"bootstrap: {failures} resamples could not be fitted; "
                                       "too few runs") from None
            continue
        if on_step is not None:
            on_step()
    estimator.bootstrap_ = samples
    return samples
