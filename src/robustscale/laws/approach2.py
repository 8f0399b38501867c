"""Approach 2 (§3.2.2, Eq 3, App. F.2): L = A/N^α + B'/D^β + E' with data-quality terms.

E' = exp(log E + log(1+FID)·ε), B' = exp(log B + log(1+FID)·ζ) (Quality = 1/FID).
"""

from __future__ import annotations

from numbers import Real

import numpy as np
import pandas as pd

from robustscale.errors import RobustscaleError
from robustscale.laws.base import COMMON_CONSTRAINTS, Interval, ParametricLaw
from robustscale.laws.guard import (
    EXPONENT_BOUNDS,
    EXPONENTS,
    LOG_COEFFICIENT_BOUNDS,
    bound_findings,
    covariance,
    design_findings,
    finding,
    flat_findings,
    identified,
    log_bound_findings,
    require_finite,
    spread_findings,
)
from robustscale.laws.huber import grid, huber, multistart
from robustscale.laws.observations import HIGH_QUALITY_FID
from robustscale.laws.optimal import omega_d, optimal_allocation
from robustscale.laws.planning import default_budget
from robustscale.laws.presets import read_law

# App. F.2.1 initialisation grids (a = log A, b = log B, e = log E): 5^5 = 3125 base starts ...
BASE_GRID = ([0, 1, 2, 5, 10], [0, 1, 2, 5, 10], [-1, -0.5, 0, 0.5, 1], [0, 0.1, 0.25, 0.5, 1],
             [0, 0.1, 0.25, 0.5, 1])
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


class Approach2(ParametricLaw):
    """Eq 3 fitted as in App. F.2.1: base (A, B, E, α, β) on one source, then (ε, ζ) across sources.

    Parameters (keyword-only, checked when `fit` starts):
    huber_delta: App. F.2.1's δ = 1e-3 on log residuals.
    exclude_small_runs: drop runs with N < 100M, D > 10M, FID < 10 (App. F.2.1; on by default).
    base_source: source of the base fit; None = the source with most runs, lowest FID on ties
        (the paper uses DG).
    quality_sources: sources for ε, ζ; None = the other sources with FID < 10 (the paper's
        EDM-7/10/20, §3.2.2: EDM-5 and EDM-6 are left out).
    flops_per_param_sample: c in FLOPs = c·N·D for Eq 4; None = measured from the observations.
    prior: a preset name or law.json whose exponents α, β (and ε, ζ when the runs have one data
        quality) are kept while the rest is fitted: an anchored fit for small studies.
    prior_strength: None keeps the prior's α, β fixed; a number λ instead adds λ·n·δ·Σ(θ − θ₀)²
        over α, β to the Huber objective (n runs): moving α by 1 then costs λ times what every run's
        log residual growing by 1 costs.
    warm_start: start from the current params_ instead of the App. F.2.1 grid (bootstrap refits).
    accuracy_map: 'runs' regresses accuracy on loss over the runs that measured it (none without);
        'paper-dg' borrows the paper's CIFAR-10 DG regression (App. F.2.2).
    The base fit holds ε = ζ = 0, so it learns the base source's own E', B'; the quality fit then
    keeps the base source's predictions fixed and learns how E', B' move with log(1+FID), giving
    E, B at FID = 0. With one source ε = ζ = 0 (or the prior's) and E, B are that source's E', B'.
    Fitted: params_ {A, B, E, alpha, beta, epsilon, zeta}, objective_ (base-fit Huber objective),
    quality_objective_, n_obs_ (runs fitted), base_source_, quality_sources_, sources_, accuracy_,
    accuracy_map_, excluded_runs_, flops_per_param_sample_, diagnostics_, identified_, anchored_.
    """

    approach = 2
    PARAM_NAMES = ("A", "B", "E", "alpha", "beta", "epsilon", "zeta")
    _parameter_constraints = {
        **COMMON_CONSTRAINTS,
        "base_source": [None, str],
        "quality_sources": [None, "str list"],
        "prior": [None, str],
        "prior_strength": [None, Interval(Real, 0, None, open_lo=True)],
        "warm_start": [bool],
    }

    def __init__(self, *, huber_delta: float = 1e-3, exclude_small_runs: bool = True,
                 base_source: str | None = None, quality_sources: list[str] | None = None,
                 flops_per_param_sample: float | None = None, prior: str | None = None,
                 prior_strength: float | None = None, warm_start: bool = False, accuracy_map: str = "runs"):
        self.huber_delta = huber_delta
        self.exclude_small_runs = exclude_small_runs
        self.base_source = base_source
        self.quality_sources = quality_sources
        self.flops_per_param_sample = flops_per_param_sample
        self.prior = prior
        self.prior_strength = prior_strength
        self.warm_start = warm_start
        self.accuracy_map = accuracy_map

    def fit(self, obs) -> "Approach2":
        """Fit to an observations table (path or DataFrame); returns self."""
        obs, runs = self._fit_runs(obs)
        if runs.empty:
            raise RobustscaleError("observations: no runs left after App. F.2.1's exclusion (N<100M, D>10M, "
                                   "FID<10); "
                                   "fit with exclude_small_runs=False")
        base = self.base_source if self.base_source is not None else _default_base(runs)
        base_runs = runs[runs["source"] == base]
        if len(base_runs) < 2:
            raise RobustscaleError(f"base_source: '{base}' has {len(base_runs)} run(s) to fit; need at least "
                                   "2")
        prior = _prior_values(self.prior)
        base_fid = float(base_runs["fid"].iloc[0])
        q_s = float(np.log1p(base_fid))
        others = self.quality_sources if self.quality_sources is not None else _default_quality(runs, base)
        qual_runs = runs[runs["source"].isin(others)]
        fit_quality = bool((qual_runs["fid"] != base_fid).any())  # ε, ζ need another data quality
        warm = self._warm_theta(q_s) if self.warm_start and hasattr(self, "params_") else None

        a, b_s, e_s, alpha, beta = self._fit_base(base_runs, prior, warm)
        findings = []
        if fit_quality:
            zeta, epsilon = self._fit_quality(qual_runs, (a, b_s, e_s, alpha, beta), q_s,
                                              None if warm is None else warm[5:])
        else:
            self.quality_objective_ = None
            from_prior = prior is not None and prior["approach"] == 2
            zeta, epsilon = (prior["zeta"], prior["epsilon"]) if from_prior else (0.0, 0.0)
            how = f"the prior's ({epsilon:.3g}, {zeta:.3g})" if from_prior else "0"
            findings += [finding(k, "design", f"one data quality (FID {base_fid:g}) among the fitted runs: "
                                              f"epsilon, zeta set to {how}") for k in ("epsilon", "zeta")]
        self.params_ = {"A": float(np.exp(a)), "B": float(np.exp(b_s - zeta * q_s)),
                        "E": float(np.exp(e_s - epsilon * q_s)), "alpha": float(alpha), "beta": float(beta),
                        "epsilon": float(epsilon), "zeta": float(zeta)}
        require_finite(self.params_)
        self.n_obs_ = int(len(base_runs) + (len(qual_runs) if fit_quality else 0))
        self.base_source_ = base
        self.quality_sources_ = sorted(qual_runs["source"].unique().tolist()) if fit_quality else []
        findings += self._fit_common(obs, base)
        self.anchored_ = None if prior is None else {"prior": self.prior, "reason": "requested",
                                                     "strength": self.prior_strength}
        self.diagnostics_ = self._guard(base_runs, qual_runs if fit_quality else None, q_s, prior) + findings
        self.identified_ = identified(self.PARAM_NAMES, self.diagnostics_)
        return self

    def _fit_base(self, base_runs, prior, warm):
        """(a, b_s, e_s, α, β) of the base source: all five fitted, or α, β fixed / pulled to the prior."""
        delta = self.huber_delta
        ln, ld, q, ll = _arrays(base_runs)
        bounds = np.array([LOG_COEFFICIENT_BOUNDS] * 3 + [EXPONENT_BOUNDS] * 2)
        starts = grid(*BASE_GRID) if warm is None else warm[None, :5]

        def objective(t, g):
            return huber_objective(t, ln, ld, q, ll, delta, g)

        if prior is None:
            theta, self.objective_ = multistart(objective, starts, bounds=bounds)
            return theta
        exps = np.array([prior["alpha"], prior["beta"]])
        if self.prior_strength is None:  # α, β fixed: fit (a, b, e) only
            def fixed(t, g):
                full = np.concatenate([t, np.broadcast_to(exps, (len(t), 2))], axis=1)
                v, gr = objective(full, g)
                return v, (gr[:, :3] if g else None)

            free = np.unique(starts[:, :3], axis=0)
            theta, self.objective_ = multistart(fixed, free, bounds=bounds[:3])
            return np.concatenate([theta, exps])
        weight = self.prior_strength * len(base_runs) * delta

        def penalised(t, g):
            v, gr = objective(t, g)
            diff = t[:, 3:5] - exps
            v = v + weight * (diff**2).sum(axis=1)
            if g:
                gr = gr.copy()
                gr[:, 3:5] += 2 * weight * diff
            return v, gr

        theta, self.objective_ = multistart(penalised, starts, bounds=bounds)
        return theta

    def _fit_quality(self, qual_runs, base_theta, q_s, warm):
        """(ζ, ε) with the base source's predictions held fixed (App. F.2.1's second fit)."""
        a, b_s, e_s, alpha, beta = base_theta
        qn, qd, qq, ql = _arrays(qual_runs)
        delta = self.huber_delta

        def quality_fg(t, need_grad):  # t = (ζ, ε); the base source's b, e stay fixed: b = b_s − ζ q_s
            z, ep = t[:, 0:1], t[:, 1:2]
            full = np.concatenate([np.full_like(z, a), b_s - z * q_s, e_s - ep * q_s,
                                   np.full_like(z, alpha), np.full_like(z, beta), ep, z], axis=1)
            v, g = huber_objective(full, qn, qd, qq, ql, delta, need_grad)
            if not need_grad:
                return v, None
            return v, np.stack([g[:, 6] - q_s * g[:, 1], g[:, 5] - q_s * g[:, 2]], axis=1)

        starts = grid(*QUALITY_GRID) if warm is None else np.array([[warm[1], warm[0]]])
        (zeta, epsilon), self.quality_objective_ = multistart(quality_fg, starts, keep=12)
        return zeta, epsilon

    def _warm_theta(self, q_s) -> np.ndarray:
        """The current fit as (a, b_s, e_s, α, β, ε, ζ) at the base source's quality."""
        p = self.params_
        return np.array([np.log(p["A"]), np.log(p["B"]) + p["zeta"] * q_s,
                         np.log(p["E"]) + p["epsilon"] * q_s, p["alpha"], p["beta"], p["epsilon"], p["zeta"]])

    def _guard(self, base_runs, qual_runs, q_s, prior) -> list[dict]:
        """Findings on the fitted parameters (see robustscale.laws.guard)."""
        p = self.params_
        theta = self._warm_theta(q_s)
        if prior is not None and self.prior_strength is None:
            # The exponents are the prior's; what is left to check is whether A, B, E found an
            # interior optimum (A -> 0 would say model size does not matter at all).
            return [finding(k, "anchored", f"{k} = {p[k]:.4g} kept from the prior {self.prior}, not fitted")
                    for k in EXPONENTS] + log_bound_findings(dict(zip(("A", "B", "E"), theta[:3])))
        out = (bound_findings(p) + log_bound_findings(dict(zip(("A", "B", "E"), theta[:3])))
               + design_findings(base_runs))
        ln, ld, q, ll = _arrays(base_runs)
        log_l, jac = log_loss_grad(theta[None, :5], ln, ld, q)
        cov = covariance(jac[0], log_l[0] - ll, self.huber_delta)
        se = np.sqrt(np.diag(cov))
        out += flat_findings(("A", "B", "E", "alpha", "beta"), theta[:5], se,
                             ("log", "log", "log", "exponent", "exponent"))
        flops = default_budget(self)
        grad = _log_n_star_grad(theta[:5], np.log(flops / self.flops_per_param_sample_))
        out += spread_findings(grad, cov, flops)
        if qual_runs is not None:  # the quality fit moves ε, ζ with b, e tied to the base source's
            qn, qd, qq, ql = _arrays(qual_runs)
            log_l, jac = log_loss_grad(self._warm_theta(0.0)[None, :], qn, qd, qq)
            jac = np.stack([jac[0, :, 5] - q_s * jac[0, :, 2], jac[0, :, 6] - q_s * jac[0, :, 1]], axis=1)
            se = np.sqrt(np.diag(covariance(jac, log_l[0] - ql, self.huber_delta)))
            out += flat_findings(("epsilon", "zeta"), [p["epsilon"], p["zeta"]], se, ("quality", "quality"))
        if prior is not None:
            out += [finding(k, "anchored", f"{k} pulled towards the prior {self.prior}'s {prior[k]:.4g} "
                                           f"(prior_strength {self.prior_strength:g})") for k in EXPONENTS]
        return out

    def _extra_dict(self) -> dict:
        return {"base_source": getattr(self, "base_source_", None),
                "quality_sources": getattr(self, "quality_sources_", None),
                "quality_objective": getattr(self, "quality_objective_", None)}

    def _load_extra(self, d: dict) -> None:
        self.base_source_ = d.get("base_source")
        self.quality_sources_ = d.get("quality_sources")
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
        n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
        return p["A"] * n ** -p["alpha"] + b_prime * d ** -p["beta"] + e_prime

    def irreducible_loss(self, fid: float = 0.0) -> float:
        return float(self.quality_terms(fid)[1])

    def optimum(self, flops, fid: float = 0.0):
        """Eq 4: (n_star, d_star, loss) at a FLOPs budget for data of this FID."""
        self._check_fitted()
        p = self.params_
        n, d = optimal_allocation(flops, p["A"], self.quality_terms(fid)[0], p["alpha"], p["beta"],
                                  self.flops_per_param_sample_)
        return n, d, self.predict_loss(n, d, fid)

    def _omega_d(self, omega_n, n_star, d_star, loss, fid):
        p = self.params_
        return omega_d(omega_n, p["A"], p["alpha"], self.quality_terms(fid)[0], p["beta"], n_star, d_star)


def _log_n_star_grad(theta: np.ndarray, log_c: float) -> np.ndarray:
    """d log N*/dθ of Eq 4 at θ = (log A, log B', log E, α, β), for N·D = c (= FLOPs / 7822)."""
    a, b, _, al, be = theta
    s = al + be
    lead = np.log(al) + a - np.log(be) - b
    return np.array([1 / s, -1 / s, 0.0, 1 / (al * s) - lead / s**2 - be * log_c / s**2,
                     -1 / (be * s) - lead / s**2 + al * log_c / s**2])


def _prior_values(prior: str | None) -> dict | None:
    """{approach, alpha, beta, epsilon, zeta} of a prior law (a preset name or law.json)."""
    if prior is None:
        return None
    law = read_law(prior)
    params = law["params"]
    if "alpha" not in params or "beta" not in params:
        raise RobustscaleError(f"prior: {prior} is an approach {law['approach']} law; a prior needs alpha "
                               "and beta "
                               "(approach 2 or 3)")
    return {"approach": law["approach"],
            **{k: float(params.get(k, 0.0)) for k in ("alpha", "beta", "epsilon", "zeta")}}


def _default_quality(runs: pd.DataFrame, base: str) -> list[str]:
    """§3.2.2: ε, ζ are fitted on EDM-7/10/20 — every non-base source with FID < 10 (HIGH_QUALITY_FID)."""
    fids = runs.groupby("source")["fid"].first()
    return [s for s, f in fids.items() if s != base and f < HIGH_QUALITY_FID]


def _default_base(runs: pd.DataFrame) -> str:
    counts = runs.groupby("source").agg(n=("run", "size"), fid=("fid", "first"))
    return str(counts.sort_values(["n", "fid"], ascending=[False, True]).index[0])


def _arrays(runs: pd.DataFrame):
    return (np.log(runs["params"].to_numpy()), np.log(runs["samples"].to_numpy()),
            np.log1p(runs["fid"].to_numpy()), np.log(runs["loss"].to_numpy()))
