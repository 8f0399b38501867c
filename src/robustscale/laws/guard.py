"""The identifiability guard: which fitted parameters the data actually determine.

A finding is a dict {"param", "kind", "message"}; kinds:
  bound      the fit sits on a parameter bound (α, β are kept in [0.01, 2])
  design     the runs cannot inform the parameter (< 3 distinct N for α, < 3 distinct D for β,
             one data quality for ε, ζ)
  flat       the objective is flat along the parameter: its linearised standard error is large
  bootstrap  the resampled fits spread N* over more than a factor of 10
  anchored   the parameter was taken from a prior law, not from these data
  flops      the observations' FLOPs per parameter-sample differ from the paper's 7822 by > 1%
"""

from __future__ import annotations

import numpy as np

from robustscale.errors import RobustscaleError

# Paper-scale laws sit well inside (App. F.2.1: α = 0.24, β = 0.23); outside, a fit is degenerate.
EXPONENT_BOUNDS = (0.01, 2.0)
# log A, log B, log E stay where exp() is finite, so no law is ever written with Infinity.
LOG_COEFFICIENT_BOUNDS = (-30.0, 60.0)
# Limits on linearised standard errors beyond which a parameter counts as not identified:
# exponents α, β relative to their value, quality exponents ε, ζ absolute, log-coefficients a
# factor of 10.
MAX_RELATIVE_SE = 0.5
MAX_QUALITY_SE = 0.1
MAX_LOG_SE = float(np.log(10.0))
MAX_BOOTSTRAP_SPREAD = 10.0  # N* interval wider than this factor: not identified
# Within this of a bound (in the exponent, or ×100 in a log-coefficient) counts as on it: the batched
# search stops within ~1e-5 of a bound the objective keeps pushing against.
BOUND_TOLERANCE = 1e-4
EXPONENTS = ("alpha", "beta")


def finding(param: str, kind: str, message: str) -> dict:
    return {"param": param, "kind": kind, "message": message}


def require_finite(params: dict) -> None:
    """Raise (exit 2 at the CLI) rather than ever write a non-finite law."""
    bad = [k for k, v in params.items() if not np.isfinite(v)]
    if bad:
        raise RobustscaleError(f"observations: the fit gave non-finite {', '.join(bad)}; "
                               "the runs cannot determine this law (fit with a prior)")


def bound_findings(params: dict, names=EXPONENTS, bounds=EXPONENT_BOUNDS) -> list[dict]:
    lo, hi = bounds
    return [finding(k, "bound", f"{k} = {params[k]:.4g} sits on its bound [{lo:g}, {hi:g}]; the data do not "
                                "pin it")
            for k in names if min(abs(params[k] - lo), abs(params[k] - hi)) < BOUND_TOLERANCE]


def log_bound_findings(log_values: dict) -> list[dict]:
    """A coefficient whose log sits on LOG_COEFFICIENT_BOUNDS (e.g. E -> 0: no floor seen in the runs)."""
    lo, hi = LOG_COEFFICIENT_BOUNDS
    return [finding(k, "bound", f"{k} = {np.exp(v):.3g} sits on its bound (log in [{lo:g}, {hi:g}]); the "
                                "data do not pin it")
            for k, v in log_values.items() if min(abs(v - lo), abs(v - hi)) < 100 * BOUND_TOLERANCE]


def design_findings(runs, names_n=("alpha",), names_d=("beta",)) -> list[dict]:
    """Too few distinct model or dataset sizes among the fitted runs to learn an exponent."""
    out = []
    n_sizes, d_sizes = runs["params"].nunique(), runs["samples"].nunique()
    if n_sizes < 3:
        out += [finding(k, "design", f"{n_sizes} distinct model size(s) N; {k} needs at least 3")
                for k in names_n]
    if d_sizes < 3:
        out += [finding(k, "design", f"{d_sizes} distinct dataset size(s) D; {k} needs at least 3")
                for k in names_d]
    return out


def covariance(jac: np.ndarray, resid: np.ndarray, noise_floor: float) -> np.ndarray:
    """Linearised (Gauss-Newton) covariance of the fitted values from d log L̂/dθ (n, p).

    σ is the residuals' RMS (n − p degrees of freedom), at least `noise_floor` (Huber's δ: below it
    the fit treats residuals as noise). Directions the runs do not constrain (fewer runs than
    parameters, or a flat direction of JᵀJ) get infinite variance.
    """
    n, p = jac.shape
    if n <= p:
        return np.full((p, p), np.inf)
    sigma = max(float(np.sqrt((resid**2).sum() / (n - p))), noise_floor)
    scale = np.linalg.norm(jac, axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    vals, vecs = np.linalg.eigh((jac / scale).T @ (jac / scale))
    flat = vals <= 1e-10 * max(vals.max(), 1e-300)
    inv = np.where(flat, 0.0, 1.0 / np.where(flat, 1.0, vals))
    cov = (vecs * inv) @ vecs.T / np.outer(scale, scale) * sigma**2
    on_flat = (vecs[:, flat] ** 2).sum(axis=1) > 1e-3 if flat.any() else np.zeros(p, bool)
    cov[on_flat, :] = np.inf
    cov[:, on_flat] = np.inf
    return cov


def spread_findings(grad: np.ndarray, cov: np.ndarray, flops: float, names=EXPONENTS) -> list[dict]:
    """Flag α, β when the linearised 90% interval of log N* (gradient `grad` in θ) at the planning
    budget spans more than a factor of MAX_BOOTSTRAP_SPREAD."""
    with np.errstate(invalid="ignore", over="ignore"):
        var = float(grad @ cov @ grad) if np.isfinite(cov[np.ix_(grad != 0, grad != 0)]).all() else np.inf
        factor = float(np.exp(2 * 1.645 * np.sqrt(var))) if np.isfinite(var) and var >= 0 else np.inf
    if factor <= MAX_BOOTSTRAP_SPREAD:
        return []
    shown = "an unbounded range" if not np.isfinite(factor) else f"a factor of {factor:.3g}"
    return [finding(k, "flat", f"the runs leave N* at {flops:.3g} FLOPs open over {shown} (linearised 90% "
                               f"interval, > {MAX_BOOTSTRAP_SPREAD:g}x): {k} is not identified")
            for k in names]


def flat_findings(names, values, se, kinds) -> list[dict]:
    """kinds[i]: 'exponent' (relative limit), 'quality' (absolute), 'log' (a factor of 10)."""
    out = []
    for name, v, s, kind in zip(names, values, se, kinds):
        limit = {"exponent": MAX_RELATIVE_SE * abs(v), "quality": MAX_QUALITY_SE, "log": MAX_LOG_SE}[kind]
        if not s <= limit:
            shown = "unbounded" if not np.isfinite(s) else f"±{s:.3g}"
            out.append(finding(name, "flat", f"{name} is on a flat direction of the objective "
                                             f"(linearised standard error {shown}); the runs do not "
                                             "determine it"))
    return out


def bootstrap_findings(est, level: float = 0.9) -> list[dict]:
    """N* spread over the resampled laws at the planning budget (10× the largest observed)."""
    from robustscale.laws.planning import default_budget, plan_table

    if not getattr(est, "bootstrap_", None):
        return []
    fid = min(est.sources_.values()) if est.sources_ else 0.0
    flops = default_budget(est)
    row = plan_table(est, [flops], fid, level)[0]
    lo, hi = row.get("n_star_lo"), row.get("n_star_hi")
    if lo is None or hi is None or not (lo > 0 and hi / lo <= MAX_BOOTSTRAP_SPREAD):
        spread = "unbounded" if lo is None or hi is None or lo <= 0 else f"{hi / lo:.3g}x"
        return [finding(k, "bootstrap", f"the {100 * level:.0f}% bootstrap interval of N* at {flops:.3g} "
                                        f"FLOPs spans {spread} (> {MAX_BOOTSTRAP_SPREAD:g}x): {k} is not "
                                        "identified")
                for k in EXPONENTS if k in est.params_]
    return []


def flops_findings(observed: float | None) -> list[dict]:
    """The observations' FLOPs per parameter-sample, when more than 1% from the paper's 7822."""
    from robustscale.laws.optimal import FLOPS_PER_PARAM_SAMPLE

    if observed is None or abs(observed / FLOPS_PER_PARAM_SAMPLE - 1) <= 0.01:
        return []
    return [finding("flops_per_param_sample", "flops",
                    f"the observations report {observed:.5g} FLOPs per parameter-sample (median over runs), "
                    f"{100 * (observed / FLOPS_PER_PARAM_SAMPLE - 1):+.1f}% from the paper's "
                    f"{FLOPS_PER_PARAM_SAMPLE:g}; plans use {observed:.5g}")]


def identified(names, findings: list[dict]) -> dict[str, bool]:
    """{param: True unless a finding (other than 'anchored' / 'flops') names it}."""
    bad = {f["param"] for f in findings if f["kind"] not in ("anchored", "flops")}
    return {k: k not in bad for k in names}
