"""Approach 2 (§3.2.2, Eq 3, App. F.2): L = A/N^α + B'/D^β + E' with data-quality terms.

E' = exp(log E + log(1+FID)·ε), B' = exp(log B + log(1+FID)·ζ) (Quality = 1/FID).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from robustscale.errors import RobustscaleError
from robustscale.laws.base import ScalingLaw
from robustscale.laws.huber import grid, huber, multistart
from robustscale.laws.observations import sources
from robustscale.laws.optimal import omega_d, optimal_allocation

# App. F.2.1 initialisation grids (a = log A, b = log B, e = log E): 5^5 = 3125 base starts ...
BASE_GRID = ([0, 1, 2, 5, 10], [0, 1, 2, 5, 10], [-1, -0.5, 0, 0.5, 1], [0, 0.1, 0.25, 0.5, 1], [0, 0.1, 0.25, 0.5, 1])
# ... and 4 x 3 = 12 starts for (ζ, ε).
QUALITY_GRID = ([-0.3, -0.15, 0.15, 0.3], [0.01, 0.1, 0.2])


def log_loss_grad(theta: np.ndarray, log_n, log_d, q, grad: bool = True):
    """log L̂ = logsumexp(a − α log N, b + ζq − β log D, e + εq) for θ = (a, b, e, α, β, ε, ζ).

    theta (S, 7) (or (S, 5) for the base fit, ε = ζ = 0); log_n, log_d, q = log(1+FID) are (n,).
    Returns log L̂ (S, n) and d log L̂/dθ (S, n, P) (None when grad is False).
    """
    a, b, e, al, be = (theta[:, i : i + 1] for i in range(5))
    t0, t1, t2 = a - al * log_n, b - be * log_d, e
    quality = theta.shape[1] == 7
    if quality:
        t1 = t1 + theta[:, 6:7] * q
        t2 = t2 + theta[:, 5:6] * q
    m = np.maximum(np.maximum(t0, t1), t2)
    w0, w1, w2 = np.exp(t0 - m), np.exp(t1 - m), np.exp(t2 - m)
    z = w0 + w1 + w2
    log_l = m + np.log(z)
    if not grad:
        return log_l, None
    w0, w1, w2 = w0 / z, w1 / z, w2 / z
    cols = [w0, w1, w2, -w0 * log_n, -w1 * log_d] + ([w2 * q, w1 * q] if quality else [])
    return log_l, np.stack(cols, axis=-1)


def huber_objective(theta: np.ndarray, log_n, log_d, q, log_loss, delta: float, grad: bool = True):
    """Σ Huber_δ(log L̂ − log L) over observations, and its gradient in θ (None when grad is False)."""
    log_l, dlog = log_loss_grad(theta, log_n, log_d, q, grad)
    value, dh = huber(log_l - log_loss, delta)
    return value.sum(axis=1), (np.einsum("sn,snp->sp", dh, dlog) if grad else None)


class Approach2(ScalingLaw):
    """Eq 3 fitted as in App. F.2.1: base (A, B, E, α, β) on one source, then (ε, ζ) across sources.

    Parameters: huber_delta (App. F.2.1: δ = 1e-3 on log residuals); exclude_small_runs (drop runs
    with N < 100M, D > 10M, FID < 10, on by default like the paper); base_source (source of the
    base fit; None = the source with most runs, lowest FID on ties — the paper uses DG);
    quality_sources (sources for ε, ζ; None = all others; the paper uses EDM-7/10/20).
    The base fit holds ε = ζ = 0, so it learns the base source's own E', B'; the quality fit then
    keeps the base source's predictions fixed and learns how E', B' move with log(1+FID), giving
    E, B at FID = 0. With one source ε = ζ = 0 and E, B are that source's E', B'.
    Fitted: params_ {A, B, E, alpha, beta, epsilon, zeta}, objective_ (base-fit Huber objective),
    quality_objective_, n_obs_ (runs fitted), base_source_, sources_, accuracy_.
    """

    approach = 2
    PARAM_NAMES = ("A", "B", "E", "alpha", "beta", "epsilon", "zeta")

    def __init__(self, huber_delta: float = 1e-3, exclude_small_runs: bool = True,
                 base_source: str | None = None, quality_sources: list[str] | None = None):
        self.huber_delta = huber_delta
        self.exclude_small_runs = exclude_small_runs
        self.base_source = base_source
        self.quality_sources = quality_sources

    def fit(self, obs) -> "Approach2":
        """Fit to an observations table (path or DataFrame); returns self."""
        obs, runs = self._fit_runs(obs)
        if runs.empty:
            raise RobustscaleError("observations: no runs left after App. F.2.1's exclusion (N<100M, D>10M, FID<10); "
                                   "fit with exclude_small_runs=False")
        base = self.base_source if self.base_source is not None else _default_base(runs)
        base_runs = runs[runs["source"] == base]
        if len(base_runs) < 2:
            raise RobustscaleError(f"base_source: '{base}' has {len(base_runs)} run(s) to fit; need at least 2")
        delta = self.huber_delta
        ln, ld, q, ll = _arrays(base_runs)

        theta, self.objective_ = multistart(lambda t, g: huber_objective(t, ln, ld, q, ll, delta, g), grid(*BASE_GRID))
        a, b_s, e_s, alpha, beta = theta
        base_fid = float(base_runs["fid"].iloc[0])
        q_s = float(np.log1p(base_fid))
        others = self.quality_sources if self.quality_sources is not None else [s for s in runs["source"].unique() if s != base]
        qual_runs = runs[runs["source"].isin(others)]
        epsilon = zeta = 0.0
        self.quality_objective_ = None
        if (qual_runs["fid"] != base_fid).any():  # ε, ζ need another data quality
            qn, qd, qq, ql = _arrays(qual_runs)

            def quality_fg(t, need_grad):  # t = (ζ, ε); the base source's b, e stay fixed: b = b_s − ζ q_s
                z, ep = t[:, 0:1], t[:, 1:2]
                full = np.concatenate([np.full_like(z, a), b_s - z * q_s, e_s - ep * q_s,
                                       np.full_like(z, alpha), np.full_like(z, beta), ep, z], axis=1)
                v, g = huber_objective(full, qn, qd, qq, ql, delta, need_grad)
                return v, (np.stack([g[:, 6] - q_s * g[:, 1], g[:, 5] - q_s * g[:, 2]], axis=1) if need_grad else None)

            (zeta, epsilon), self.quality_objective_ = multistart(quality_fg, grid(*QUALITY_GRID), keep=12)
        self.params_ = {"A": float(np.exp(a)), "B": float(np.exp(b_s - zeta * q_s)), "E": float(np.exp(e_s - epsilon * q_s)),
                        "alpha": float(alpha), "beta": float(beta), "epsilon": float(epsilon), "zeta": float(zeta)}
        self.n_obs_ = int(len(base_runs) + len(qual_runs))
        self.base_source_ = base
        self.sources_ = sources(obs)
        self.accuracy_ = self._fit_accuracy(obs, base)
        self.bootstrap_ = None
        return self

    def _extra_dict(self) -> dict:
        return {"base_source": getattr(self, "base_source_", None), "quality_objective": getattr(self, "quality_objective_", None)}

    def _load_extra(self, d: dict) -> None:
        self.base_source_ = d.get("base_source")
        self.quality_objective_ = d.get("quality_objective")

    def quality_terms(self, fid: float = 0.0) -> tuple[float, float]:
        """(B', E') at this FID (Eq 3)."""
        self._check_fitted()
        p, lq = self.params_, np.log1p(fid)
        return p["B"] * np.exp(lq * p["zeta"]), p["E"] * np.exp(lq * p["epsilon"])

    def predict_loss(self, n, d, fid=0.0):
        """Eq 3 at model size n (parameters), dataset size d (samples) and FID (broadcasting)."""
        self._check_fitted()
        p = self.params_
        b_prime, e_prime = self.quality_terms(np.asarray(fid, dtype=float))
        return p["A"] * np.asarray(n, dtype=float) ** -p["alpha"] + b_prime * np.asarray(d, dtype=float) ** -p["beta"] + e_prime

    def irreducible_loss(self, fid: float = 0.0) -> float:
        return float(self.quality_terms(fid)[1])

    def optimum(self, flops, fid: float = 0.0):
        """Eq 4: (n_star, d_star, loss) at a FLOPs budget for data of this FID."""
        self._check_fitted()
        p = self.params_
        n, d = optimal_allocation(flops, p["A"], self.quality_terms(fid)[0], p["alpha"], p["beta"])
        return n, d, self.predict_loss(n, d, fid)

    def exponents(self, flops: float, fid: float = 0.0) -> tuple[float, float]:
        p = self.params_
        return p["beta"] / (p["alpha"] + p["beta"]), p["alpha"] / (p["alpha"] + p["beta"])

    def _omega_d(self, omega_n, n_star, d_star, loss, fid):
        p = self.params_
        return omega_d(omega_n, p["A"], p["alpha"], self.quality_terms(fid)[0], p["beta"], n_star, d_star)


def _default_base(runs: pd.DataFrame) -> str:
    counts = runs.groupby("source").agg(n=("run", "size"), fid=("fid", "first"))
    return str(counts.sort_values(["n", "fid"], ascending=[False, True]).index[0])


def _arrays(runs: pd.DataFrame):
    return (np.log(runs["params"].to_numpy()), np.log(runs["samples"].to_numpy()),
            np.log1p(runs["fid"].to_numpy()), np.log(runs["loss"].to_numpy()))
