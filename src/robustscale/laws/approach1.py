"""Approach 1 (§3.2.1, App. F.1): the envelope of training curves, per source.

At 1000 log-spaced FLOPs values the lowest loss over all runs' (interpolated) training curves
gives the envelope; App. F.1's monotone filter keeps only the values where no smaller budget
reached a lower loss; log-space regressions give N* ∝ F^a, D* ∝ F^b and L* ∝ F^c.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import pandas as pd

from robustscale.errors import RobustscaleError
from robustscale.laws.base import COMMON_CONSTRAINTS, Interval, ScalingLaw
from robustscale.laws.observations import load_observations, sources

N_QUERY_FLOPS = 1000  # App. F.1: "a set F of 1000 logarithmically spaced values of training FLOPs"


def envelope(obs: pd.DataFrame, n_flops: int = N_QUERY_FLOPS) -> pd.DataFrame:
    """The filtered envelope of one source's training curves.

    Parameters: obs (validated observations of one source), n_flops (query budgets).
    Returns: DataFrame with flops, loss, n (params of the best run), d (its samples), run.
    """
    query = np.geomspace(obs["flops"].min(), obs["flops"].max(), n_flops)
    best_loss = np.full(n_flops, np.inf)
    best_n = np.full(n_flops, np.nan)
    best_d = np.full(n_flops, np.nan)
    best_run = np.full(n_flops, "", dtype=object)
    for run, curve in obs.sort_values("flops").groupby("run", sort=False):
        lf = np.log(curve["flops"].to_numpy())
        first, last = curve["flops"].iloc[0], curve["flops"].iloc[-1]
        inside = (query >= first * (1 - 1e-12)) & (query <= last * (1 + 1e-12))
        lq = np.log(query[inside])
        loss = np.interp(lq, lf, curve["loss"].to_numpy())
        d = np.exp(np.interp(lq, lf, np.log(curve["samples"].to_numpy())))
        better = loss < best_loss[inside]
        idx = np.flatnonzero(inside)[better]
        best_loss[idx], best_d[idx], best_run[idx] = loss[better], d[better], run
        best_n[idx] = curve["params"].iloc[0]
    covered = np.isfinite(best_loss)
    # App. F.1 monotone filter: drop f_i if some f_j < f_i has a strictly lower loss.
    running_min = np.minimum.accumulate(np.where(covered, best_loss, np.inf))
    keep = covered & (best_loss <= running_min)
    return pd.DataFrame({"flops": query[keep], "loss": best_loss[keep], "n": best_n[keep],
                         "d": best_d[keep], "run": best_run[keep]})


def _power_law(x, y) -> tuple[float, float]:
    """(exponent, log coefficient) of y = exp(coef)·x^exponent by least squares in log space."""
    slope, coef = np.polyfit(np.log(x), np.log(y), 1)
    return float(slope), float(coef)


class Approach1(ScalingLaw):
    """Envelope regressions per source (App. F.1).

    Parameters (keyword-only, checked when `fit` starts): source (fit only this source; None =
    every source with at least 2 runs), n_flops (query budgets, 1000 in the paper), accuracy_map
    (as Approach 2's).
    Fitted: params_ {source: {fid, a, b, c, log_n0, log_d0, log_l0, n_points}} with
    N* = exp(log_n0)·F^a, D* = exp(log_d0)·F^b, L* = exp(log_l0)·F^c; a_, b_ ({source: value});
    envelopes_ ({source: DataFrame from `envelope`}); objective_ (sum of squared log residuals).
    Approach 1 has no loss formula, so no trade-off (Eq 6) and no infinite-compute limit.
    """

    approach = 1
    _parameter_constraints = {"source": [None, str], "n_flops": [Interval(Integral, 2, None)],
                              "accuracy_map": COMMON_CONSTRAINTS["accuracy_map"]}

    def __init__(self, *, source: str | None = None, n_flops: int = N_QUERY_FLOPS,
                 accuracy_map: str = "runs"):
        self.source = source
        self.n_flops = n_flops
        self.accuracy_map = accuracy_map

    def fit(self, obs) -> "Approach1":
        """Fit to an observations table (path or DataFrame); returns self."""
        self._validate_params()
        obs = load_observations(obs)
        names = [self.source] if self.source is not None else list(sources(obs))
        params, envelopes, sse = {}, {}, 0.0
        for name in names:
            rows = obs[obs["source"] == name]
            # an envelope of training curves needs curves: runs with at least 2 evaluations each
            curves = rows.groupby("run").filter(lambda run: len(run) >= 2)
            if curves["run"].nunique() < 2:
                if self.source is not None:
                    raise RobustscaleError(f"source: '{name}' has {curves['run'].nunique()} run(s) with a "
                                           "training curve "
                                           "(2 or more evaluations); Approach 1 needs at least 2")
                continue
            rows = curves
            env = envelope(rows, self.n_flops)
            if env["flops"].nunique() < 2:
                continue
            a, log_n0 = _power_law(env["flops"], env["n"])
            b, log_d0 = _power_law(env["flops"], env["d"])
            c, log_l0 = _power_law(env["flops"], env["loss"])
            lf = np.log(env["flops"].to_numpy())
            for slope, coef, col in ((a, log_n0, "n"), (b, log_d0, "d"), (c, log_l0, "loss")):
                sse += float(((coef + slope * lf - np.log(env[col].to_numpy())) ** 2).sum())
            params[name] = {"fid": float(rows["fid"].iloc[0]), "a": a, "b": b, "c": c, "log_n0": log_n0,
                            "log_d0": log_d0, "log_l0": log_l0, "n_points": int(len(env))}
            envelopes[name] = env
        if not params:
            raise RobustscaleError("observations: no source has 2 runs with training curves (2 or more "
                                   "evaluations "
                                   "each) spanning distinct FLOPs; Approach 1 cannot fit")
        self.params_, self.envelopes_, self.objective_ = params, envelopes, sse
        self.a_ = {k: v["a"] for k, v in params.items()}
        self.b_ = {k: v["b"] for k, v in params.items()}
        self.n_obs_ = int(obs["source"].isin(list(params)).sum())
        self.diagnostics_ = self._fit_common(obs, self.source)
        self.identified_ = {}
        self.anchored_ = None
        self.excluded_runs_ = []
        return self

    def _load_extra(self, d: dict) -> None:
        self.a_ = {k: v["a"] for k, v in self.params_.items()}
        self.b_ = {k: v["b"] for k, v in self.params_.items()}

    def source_for(self, fid: float | None = None, source: str | None = None) -> str:
        """The fitted source named, else the one whose FID is nearest `fid`, else the first."""
        self._check_fitted()
        if source is not None:
            if source not in self.params_:
                raise RobustscaleError(f"source: '{source}' not fitted (fitted: {', '.join(self.params_)})")
            return source
        if fid is None:
            return next(iter(self.params_))
        return min(self.params_, key=lambda s: abs(self.params_[s]["fid"] - fid))

    def optimum(self, flops, fid: float | None = None, source: str | None = None):
        """(n_star, d_star, loss) from the power laws of the source nearest in FID."""
        p = self.params_[self.source_for(fid, source)]
        f = np.asarray(flops, dtype=float)
        return (np.exp(p["log_n0"]) * f ** p["a"], np.exp(p["log_d0"]) * f ** p["b"],
                np.exp(p["log_l0"]) * f ** p["c"])

    def exponents(self, flops: float, fid: float = 0.0) -> tuple[float, float]:
        """The envelope regressions' a, b of the source nearest in FID."""
        p = self.params_[self.source_for(fid)]
        return p["a"], p["b"]
