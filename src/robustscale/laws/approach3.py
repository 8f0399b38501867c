"""Approach 3 (§3.2.3, Eq 5, App. F.3): a data-quality bottleneck on the benefit of more data.

L = A/N^α + (B/D + (Q·FID)^(κ/β))^β + E',  E' = E + log(1+FID)·ε   (Quality = 1/FID).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from robustscale.errors import RobustscaleError
from robustscale.laws.base import COMMON_CONSTRAINTS, ParametricLaw
from robustscale.laws.guard import (
    EXPONENT_BOUNDS,
    LOG_COEFFICIENT_BOUNDS,
    bound_findings,
    design_findings,
    identified,
    require_finite,
)
from robustscale.laws.huber import grid, huber, multistart

# App. F.3.1 initialisation grid over (A, B, E, Q, α, β, κ, ε): 3·3·2·2·3·3·2·1 = 648 starts.
# A, B, Q are optimised in log space (positive by construction).
INIT_GRID = ([5, 6, 7], [6500, 7000, 7500], [0.6, 0.5], [0.01, 0.5], [0.1, 0.2, 0.3], [0.1, 0.2, 0.3],
             [0.8, 0.6], [0.01])


def loss_grad(theta: np.ndarray, log_n, log_d, fid):
    """L̂ and dL̂/dθ for θ = (log A, log B, E, log Q, α, β, κ, ε) (S, 8) at observations (n,)."""
    la, lb, e, lq, al, be, ka, ep = (theta[:, i : i + 1] for i in range(8))
    has_q = fid > 0
    log_fid = np.log(np.where(has_q, fid, 1.0))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        t1 = np.exp(la - al * log_n)
        u = np.exp(lb - log_d)
        expo = (ka / be) * (lq + log_fid)
        v = np.where(has_q, np.exp(np.minimum(expo, 700.0)), 0.0)
        inner = u + v
        log_inner = np.log(inner)
        t2 = np.exp(be * log_inner)
        c = np.log1p(fid)
        pred = t1 + t2 + e + ep * c
        dt2_dinner = be * t2 / inner
        grad = np.stack([
            t1,
            dt2_dinner * u,
            np.ones_like(pred),
            dt2_dinner * v * (ka / be),
            -log_n * t1,
            t2 * log_inner - dt2_dinner * v * (ka / be**2) * (lq + log_fid),
            dt2_dinner * v * (lq + log_fid) / be,
            np.broadcast_to(c, pred.shape),
        ], axis=-1)
    return pred, grad


def huber_objective(theta, log_n, log_d, fid, log_loss, delta):
    """Σ Huber_δ(log L̂ − log L) and its gradient; +inf where L̂ <= 0 somewhere."""
    pred, grad = loss_grad(theta, log_n, log_d, fid)
    bad = ~(pred > 0).all(axis=1) | ~np.isfinite(pred).all(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(np.where(pred > 0, pred, 1.0)) - log_loss
    value, dh = huber(r, delta)
    g = np.einsum("sn,snp->sp", dh / np.where(pred > 0, pred, 1.0), grad)
    v = np.where(bad, np.inf, value.sum(axis=1))
    return v, np.where(bad[:, None] | ~np.isfinite(g), 0.0, g)


class Approach3(ParametricLaw):
    """Eq 5 fitted to all sources at once with the App. F.3.1 grid; N*, D* numerically (App. F.3.2).

    Parameters (keyword-only, checked when `fit` starts): huber_delta (δ = 1e-3, as Approach 2),
    exclude_small_runs (App. F.2.1/F.3.1 rule, on by default), flops_per_param_sample (c in
    FLOPs = c·N·D; None = measured from the observations), warm_start (start from the current
    params_ instead of the grid: bootstrap refits), accuracy_map (as Approach 2's).
    Fitted: params_ {A, B, E, Q, alpha, beta, kappa, epsilon}, objective_, n_obs_, sources_,
    accuracy_, flops_per_param_sample_, diagnostics_, identified_. Note B enters as (B/D)^β, so B^β
    compares with Approach 2's B.
    """

    approach = 3
    PARAM_NAMES = ("A", "B", "E", "Q", "alpha", "beta", "kappa", "epsilon")
    _parameter_constraints = {**COMMON_CONSTRAINTS, "warm_start": [bool]}
    # (log A, log B, E, log Q, α, β, κ, ε): E ≥ 0 and α, β in the guard's range.
    BOUNDS = np.array([LOG_COEFFICIENT_BOUNDS, LOG_COEFFICIENT_BOUNDS, (0.0, 100.0), LOG_COEFFICIENT_BOUNDS,
                       EXPONENT_BOUNDS, EXPONENT_BOUNDS, (-10.0, 10.0), (-10.0, 10.0)])

    def __init__(self, *, huber_delta: float = 1e-3, exclude_small_runs: bool = True,
                 flops_per_param_sample: float | None = None, warm_start: bool = False,
                 accuracy_map: str = "runs"):
        self.huber_delta = huber_delta
        self.exclude_small_runs = exclude_small_runs
        self.flops_per_param_sample = flops_per_param_sample
        self.warm_start = warm_start
        self.accuracy_map = accuracy_map

    def fit(self, obs) -> "Approach3":
        """Fit to an observations table (path or DataFrame); returns self."""
        obs, runs = self._fit_runs(obs)
        if len(runs) < 2:
            raise RobustscaleError(f"observations: {len(runs)} run(s) left to fit Approach 3; need at least "
                                   "2")
        ln, ld = np.log(runs["params"].to_numpy()), np.log(runs["samples"].to_numpy())
        fid, ll = runs["fid"].to_numpy(), np.log(runs["loss"].to_numpy())
        if self.warm_start and hasattr(self, "params_"):
            p = self.params_
            starts = np.array([[np.log(p["A"]), np.log(p["B"]), p["E"], np.log(p["Q"]), p["alpha"], p["beta"],
                                p["kappa"], p["epsilon"]]])
        else:
            starts = grid(*INIT_GRID)
            starts[:, [0, 1, 3]] = np.log(starts[:, [0, 1, 3]])
        delta = self.huber_delta
        theta, self.objective_ = multistart(lambda t, g: huber_objective(t, ln, ld, fid, ll, delta), starts,
                                            bounds=self.BOUNDS)
        la, lb, e, lq, al, be, ka, ep = theta
        self.params_ = {"A": float(np.exp(la)), "B": float(np.exp(lb)), "E": float(e), "Q": float(np.exp(lq)),
                        "alpha": float(al), "beta": float(be), "kappa": float(ka), "epsilon": float(ep)}
        require_finite(self.params_)
        self.n_obs_ = int(len(runs))
        flops = self._fit_common(obs, None)
        self.anchored_ = None
        self.diagnostics_ = bound_findings(self.params_) + design_findings(runs) + flops
        self.identified_ = identified(self.PARAM_NAMES, self.diagnostics_)
        return self

    def predict_loss(self, n, d, fid=0.0):
        """Eq 5 at model size n, dataset size d and FID (broadcasting)."""
        self._check_fitted()
        p = self.params_
        fid = np.asarray(fid, dtype=float)
        bottleneck = np.where(fid > 0, (p["Q"] * fid) ** (p["kappa"] / p["beta"]), 0.0)
        data_term = (p["B"] / np.asarray(d, dtype=float) + bottleneck) ** p["beta"]
        return p["A"] * np.asarray(n, dtype=float) ** -p["alpha"] + data_term + self.irreducible_loss(fid)

    def irreducible_loss(self, fid=0.0):
        self._check_fitted()
        return self.params_["E"] + np.log1p(fid) * self.params_["epsilon"]

    def optimum(self, flops, fid: float = 0.0):
        """N*, D* minimising Eq 5 on FLOPs = c·N·D, found numerically (App. F.3.2 uses fsolve).

        Returns: (n_star, d_star, loss); flops may be an array.
        """
        self._check_fitted()
        flops = np.atleast_1d(np.asarray(flops, dtype=float))
        out = np.array([self._optimum_one(f, fid) for f in flops]).T
        return tuple(o if o.size > 1 else float(o[0]) for o in out)

    def _optimum_one(self, flops: float, fid: float):
        c = flops / self.flops_per_param_sample_

        def loss(log_n):
            return float(self.predict_loss(np.exp(log_n), c / np.exp(log_n), fid))

        lo, hi = np.log(c) * 0.05, np.log(c) * 0.95  # N and D both at least c^0.05
        res = minimize_scalar(loss, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
        n = float(np.exp(res.x))
        return n, c / n, loss(res.x)

    def _omega_d(self, omega_n, n_star, d_star, loss, fid):
        """The ω_D of Eq 6 found numerically: L(ω_N·N*, ω_D·D*) = L(N*, D*)."""
        n = omega_n * n_star

        def gap(log_w):
            return float(self.predict_loss(n, np.exp(log_w) * d_star, fid)) - loss

        if gap(np.log(1e12)) >= 0:
            return np.inf
        lo = 0.0 if gap(0.0) >= 0 else np.log(1e-12)
        return float(np.exp(brentq(gap, lo, np.log(1e12), xtol=1e-13)))
