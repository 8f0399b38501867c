"""Which runs to do next: the candidate runs that shrink the interval of N*(F) most per FLOP.

Method (the delta method on the law's Jacobian, Gauss-Newton information):
- θ are the parameters a refit would estimate, in the fit's own coordinates: the log of the
  positive coefficients (A, B, E for Approach 2; A, B, Q for Approach 3), the rest as they are.
  Exponents fixed by a prior, and Approach 2's ε, ζ when the law did not fit them, are constants.
- Each fitted run (and each candidate run) contributes j jᵀ / σ² to the information, with j =
  d log L̂/dθ at its (N, D, FID) by central differences. σ² is the residual variance of the fitted
  runs (n − p degrees of freedom, at least Huber's δ) times the Huber fit's efficiency loss at
  Gaussian noise, E[ψ²]/E[ψ']² (π/2 when δ ≪ σ, as for the paper's δ = 1e-3 and 1% noise).
- The fit's parameter bounds enter as a weak Gaussian prior (sd = half their width), so a direction
  the runs leave flat has a finite but huge variance instead of a singular matrix; a soft prior
  (prior_strength) adds its penalty's curvature on α, β.
- Var log N*(F) = gᵀ I⁻¹ g with g = d log N*/dθ at the target budget and FID (central differences).
- Runs are chosen greedily: each step adds the candidate (N, D) with the largest relative drop in
  Var log N* per FLOP that still fits the remaining budget (Sherman-Morrison over all candidates at
  once, rank-one updates), and, separately, the one with the largest drop; the set that ends with
  the smaller variance is kept. The drop is averaged over the point fit and up to MAX_ENSEMBLE of
  the law's bootstrap laws, each linearised at its own parameters, so the choice does not hinge on
  one fit. A run already done or already chosen is not repeated (training is deterministic: the
  same run again says nothing new). Stops when no run lowers the variance by MIN_GAIN.
- Intervals: log N* ± t·sd with Student's t at n − p degrees of freedom (σ is estimated from
  those few residuals); the expected interval uses n + K − p. A law with bootstrap laws gives the
  bootstrap interval as `before` (what `plan` prints) and the expected interval shrinks each of its
  sides by the predicted factor t'·sd'/(t·sd), sd'² / sd² the mean over the laws scored (the variance
  expected after the runs over the plausible laws, not under the point fit alone).
- N* lies in [1, F/c] (at least one parameter and one sample): `laws.planning.bounded` decides, as for
  `plan`: an estimate or bound outside that range is null, and `n_star_not_determined_below` says up to
  where the runs speak (the interval's upper end, else the estimate, else the smallest run's N).

Assumptions: the law's form is right; the residuals of all runs, new ones included, are
independent with one σ; the fit is close to linear over the interval (weakest with few runs far
below the target budget: then the predicted shrinkage is optimistic or pessimistic, and
bench/bench_design.py measures how it turns out); the information of a new run is evaluated at
the current fit, not at the unknown truth; Approach 2's two-stage fit (base source, then ε, ζ) is
treated as one joint fit; runs cost flops_per_sample × samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr, stdtrit

from robustscale.errors import RobustscaleError
from robustscale.laws.guard import EXPONENT_BOUNDS, LOG_COEFFICIENT_BOUNDS
from robustscale.laws.observations import final_points, load_observations, small_run_mask

# Coefficients fitted in log space (positive by construction), per approach.
LOG_PARAMS = {2: ("A", "B", "E"), 3: ("A", "B", "Q")}
# Half the width of each fitted coordinate's search range: the weak prior's standard deviation.
# Approach 2's ε, ζ have no bound in the fit; 10 is far beyond any fitted value (paper: 0.16, -0.28).
PRIOR_SD = {
    "log": (LOG_COEFFICIENT_BOUNDS[1] - LOG_COEFFICIENT_BOUNDS[0]) / 2,
    "exponent": (EXPONENT_BOUNDS[1] - EXPONENT_BOUNDS[0]) / 2,
    "E3": 50.0,
    "other": 10.0,
}
# Default sample grid: factors of 2 from the smallest observed D to SAMPLES_REACH x the largest.
SAMPLES_REACH = 100.0
SAMPLES_STEP = 2.0
# A run that lowers Var log N* by less than this fraction is not worth its FLOPs: stop there.
MIN_GAIN = 1e-3
# Bootstrap laws scored alongside the point fit (more add time, not judgement).
MAX_ENSEMBLE = 10
JACOBIAN_STEP = 1e-6
N_STAR_STEP = 1e-4  # Approach 3's N* is found numerically (to 1e-10 in log N): a coarser step


@dataclass(frozen=True)
class Candidate:
    """A model size the next runs may use: params N, training FLOPs per sample (None: c·N), name."""

    params: float
    flops_per_sample: float | None = None
    model: str | None = None


@dataclass
class Suggestion:
    """The chosen runs (greedy order: most useful first) and the N* interval before and after."""

    runs: list[dict]
    budget: float
    spent: float
    target: dict
    before: dict
    expected: dict
    warnings: list[str] = field(default_factory=list)
    level: float = 0.9

    def to_dict(self) -> dict:
        return {
            "runs": [dict(r) for r in self.runs],
            "budget": self.budget,
            "spent": self.spent,
            "target": dict(self.target),
            "level": self.level,
            "before": dict(self.before),
            "expected": dict(self.expected),
            "warnings": list(self.warnings),
        }


def suggest_runs(
    observations,
    law,
    *,
    budget: float,
    target_flops: float,
    candidates: list[Candidate],
    fid: float | None = None,
    source: str | None = None,
    samples=None,
    max_runs: int | None = None,
    level: float = 0.9,
) -> Suggestion:
    """The runs within `budget` FLOPs expected to narrow the `level` interval of N*(target_flops) most.

    Parameters: observations (path or DataFrame the law was fitted to), law (a fitted Approach 2
    or 3 estimator, e.g. from `fit_law` or `load_law`), budget (FLOPs for the new runs),
    target_flops (F of N*(F)), candidates (model sizes), fid (target data quality; default the
    main source's), source (the new runs' source; default the main one), samples (dataset sizes
    to consider; default factors of 2 from the smallest observed D to 100x the largest), max_runs,
    level. Returns a Suggestion. See the module docstring for the method and its assumptions.
    """
    budget, target_flops, level = (
        _positive(budget, "budget"),
        _positive(target_flops, "target_flops"),
        _level(level),
    )
    if max_runs is not None and (
        isinstance(max_runs, bool) or not isinstance(max_runs, (int, np.integer)) or max_runs < 1
    ):
        raise RobustscaleError(f"max_runs: expected a whole number >= 1, got {max_runs!r}")
    runs, source, source_fid, fid = _prepare(observations, law, fid, source)
    pool = _candidate_runs(law, runs, candidates, samples, source)
    cheapest = int(np.argmin(pool["cost"]))
    if budget < pool["cost"][cheapest]:
        raise RobustscaleError(
            f"budget: {budget:.3g} FLOPs is less than the cheapest candidate run "
            f"(N = {pool['params'][cheapest]:.3g}, D = {pool['samples'][cheapest]:.3g}: "
            f"{pool['cost'][cheapest]:.3g} FLOPs)"
        )

    model = _LinearisedLaw(law, runs)
    warnings = model.warnings(law, fid, source_fid, len(runs))
    # The bootstrap laws are the other plausible laws: a run is scored by the drop it brings under
    # each of them (linearised at each), so the choice does not hinge on the point fit alone.
    ensemble = [(model, model.log_n_star_grad(target_flops, fid))]
    for params in (getattr(law, "bootstrap_", None) or [])[:MAX_ENSEMBLE]:
        try:
            other = _LinearisedLaw(law.with_params(params), runs, model.noise_var)
            ensemble.append((other, other.log_n_star_grad(target_flops, fid)))
        except RobustscaleError:  # a resampled law with no finite N* or loss there: leave it out
            continue
    fids = np.full(len(pool["params"]), source_fid)
    states = [
        (m.covariance, g, m.log_loss_jacobian(pool["params"], pool["samples"], fids)) for m, g in ensemble
    ]
    chosen, ratios = _choose(states, model.noise_var, pool["cost"], budget, max_runs)

    n_star = float(law.optimum(target_flops, fid)[0])
    grad = ensemble[0][1]
    t_before = stdtrit(model.dof, (1 + level) / 2)
    t_after = stdtrit(model.dof + len(chosen), (1 + level) / 2)
    limit = target_flops / law.flops_per_param_sample_  # N* <= F/c: at least one sample
    seen = float(runs["params"].min())
    boot = _bootstrap_interval(law, target_flops, fid, level)
    if boot is None:
        sd_before = float(np.sqrt(grad @ model.covariance @ grad))
        sd_after = sd_before * np.sqrt(ratios[0])
        before = _interval(n_star, -t_before * sd_before, t_before * sd_before, limit, level, seen)
        expected = _interval(n_star, -t_after * sd_after, t_after * sd_after, limit, level, seen)
        warnings.append(
            f"the law has no bootstrap laws: the suggestion and its intervals rest on the delta method "
            f"at the point fit alone (linearised at its {len(runs)} runs, residual noise "
            f"{np.sqrt(model.noise_var):.3g} in log loss, Student's t at {model.dof} degrees of freedom)"
        )
    else:
        shrink = float(np.sqrt(np.mean(ratios))) * t_after / t_before
        before = _interval(n_star, *boot, limit, level, seen)
        expected = _interval(n_star, boot[0] * shrink, boot[1] * shrink, limit, level, seen)
    picked = [
        {
            "params": float(pool["params"][i]),
            "samples": int(pool["samples"][i]),
            "source": source,
            "fid": source_fid,
            "flops": float(pool["cost"][i]),
            "model": pool["model"][i],
        }
        for i in chosen
    ]
    if not picked:
        warnings.append(f"no candidate run narrows the interval of N* at {target_flops:.3g} FLOPs by more "
                        f"than {100 * MIN_GAIN:g}% of its variance: nothing suggested")
    return Suggestion(
        runs=picked,
        budget=budget,
        spent=float(sum(r["flops"] for r in picked)),
        target={"flops": target_flops, "fid": fid},
        before=before,
        expected=expected,
        warnings=warnings,
        level=level,
    )


def n_star_interval(observations, law, *, flops: float, fid: float | None = None, level: float = 0.9) -> dict:
    """The delta method's interval of N*(flops) for a law and the runs it was fitted to (no bootstrap
    needed): {n_star, n_star_lo, n_star_hi, n_star_not_determined_below}, as `laws.planning.bounded`
    says it (nothing outside [1, flops/c] parameters). fid: default the main source's."""
    flops, level = _positive(flops, "flops"), _level(level)
    runs, _, _, fid = _prepare(observations, law, fid, None)
    model = _LinearisedLaw(law, runs)
    grad = model.log_n_star_grad(flops, fid)
    sd = float(np.sqrt(max(grad @ model.covariance @ grad, 0.0)))
    half = stdtrit(model.dof, (1 + level) / 2) * sd
    n_star, limit = float(law.optimum(flops, fid)[0]), flops / law.flops_per_param_sample_
    return _interval(n_star, -half, half, limit, level, float(runs["params"].min()))


def _prepare(observations, law, fid, source):
    """(fitted runs, source of the new runs, its FID, target FID), each checked."""
    law._check_fitted()
    if not hasattr(law, "predict_loss") or law.approach not in LOG_PARAMS:
        raise RobustscaleError(
            f"law: approach {law.approach} has no loss formula; suggest needs approach 2 or 3"
        )
    runs = _fitted_runs(law, load_observations(observations))
    main = _main_source(law, runs)
    source = main if source is None else str(source)
    fitted_sources = dict(zip(runs["source"], runs["fid"]))
    if source not in fitted_sources:
        raise RobustscaleError(
            f"source: {source!r} is not among the sources the law was fitted to "
            f"({', '.join(sorted(fitted_sources))})"
        )
    fid = float(fitted_sources[main]) if fid is None else float(fid)
    if not np.isfinite(fid) or fid < 0:
        raise RobustscaleError(f"fid: expected a number >= 0, got {fid:g}")
    return runs, source, float(fitted_sources[source]), fid


# -- the linearised law --------------------------------------------------------------------------------


class _LinearisedLaw:
    """The law's free parameters θ, their information from the fitted runs, and the residual noise."""

    def __init__(self, law, runs, noise_var: float | None = None):
        self.law = law
        self.names = _free_params(law)
        logs = LOG_PARAMS[law.approach]
        self.theta = np.array([np.log(law.params_[k]) if k in logs else law.params_[k] for k in self.names])
        self.logs = logs
        jac = self.log_loss_jacobian(
            runs["params"].to_numpy(), runs["samples"].to_numpy(), runs["fid"].to_numpy()
        )
        resid = np.log(runs["loss"].to_numpy()) - np.log(
            np.asarray(law.predict_loss(runs["params"], runs["samples"], runs["fid"]), dtype=float)
        )
        n, p = len(runs), len(self.names)
        self.dof = n - p
        if self.dof < 1:
            raise RobustscaleError(
                f"observations: {n} fitted runs for {p} free parameters "
                f"({', '.join(self.names)}); the residual noise needs at least {p + 1} runs"
            )
        delta = float(law.huber_delta)
        sigma = max(float(np.sqrt((resid**2).sum() / self.dof)), delta)
        efficiency, slope = _huber_efficiency(delta / sigma)
        self.noise_var = sigma**2 * efficiency if noise_var is None else noise_var
        info = jac.T @ jac / self.noise_var + np.diag(
            1.0 / np.array([self._prior_sd(k) for k in self.names]) ** 2
        )
        strength = getattr(law, "prior_strength", None)
        if getattr(law, "prior", None) is not None and strength is not None:
            # Approach 2's penalty λ·n·δ·Σ(θ − θ₀)² on α, β: curvature 2λnδ against the Huber fit's
            # E[ψ'] = slope per unit of JᵀJ.
            extra = 2 * strength * n * delta / (slope * self.noise_var)
            info += np.diag([extra if k in ("alpha", "beta") else 0.0 for k in self.names])
        self.covariance = np.linalg.inv(info)

    def _prior_sd(self, name: str) -> float:
        if name in self.logs:
            return PRIOR_SD["log"]
        if name in ("alpha", "beta"):
            return PRIOR_SD["exponent"]
        return PRIOR_SD["E3"] if name == "E" else PRIOR_SD["other"]

    def _law_at(self, theta):
        params = dict(self.law.params_)
        for k, v in zip(self.names, theta):
            params[k] = float(np.exp(v)) if k in self.logs else float(v)
        return self.law.with_params(params)

    def log_loss_jacobian(self, n, d, fid) -> np.ndarray:
        """d log L̂/dθ at runs (N, D, FID): (runs, free parameters), central differences."""
        cols = []
        for i in range(len(self.names)):
            step = np.zeros(len(self.names))
            step[i] = JACOBIAN_STEP
            hi = np.log(np.asarray(self._law_at(self.theta + step).predict_loss(n, d, fid), dtype=float))
            lo = np.log(np.asarray(self._law_at(self.theta - step).predict_loss(n, d, fid), dtype=float))
            cols.append((hi - lo) / (2 * JACOBIAN_STEP))
        jac = np.stack(cols, axis=-1)
        if not np.isfinite(jac).all():
            raise RobustscaleError("law: its loss is not finite at some runs; refit it or drop those runs")
        return jac

    def log_n_star_grad(self, flops: float, fid: float) -> np.ndarray:
        """d log N*(flops, fid)/dθ, central differences."""
        grad = []
        for i in range(len(self.names)):
            step = np.zeros(len(self.names))
            step[i] = N_STAR_STEP
            hi = self._law_at(self.theta + step).optimum(flops, fid)[0]
            lo = self._law_at(self.theta - step).optimum(flops, fid)[0]
            grad.append((np.log(hi) - np.log(lo)) / (2 * N_STAR_STEP))
        grad = np.array(grad, dtype=float)
        if not np.isfinite(grad).all():
            raise RobustscaleError(f"target_flops: the law has no finite N* near {flops:.3g} FLOPs")
        return grad

    def warnings(self, law, fid: float, source_fid: float, n_runs: int) -> list[str]:
        out = []
        fixed = [k for k in ("alpha", "beta") if k in law.params_ and k not in self.names]
        if fixed:
            out.append(
                f"the exponents {', '.join(fixed)} are fixed by the prior {law.prior}: the suggestion only "
                f"narrows {', '.join(self.names)}, and its intervals leave out how wrong the prior's "
                "exponents may be"
            )
        if law.approach == 2 and "zeta" not in self.names and fid != source_fid:
            out.append(
                f"the law did not fit epsilon, zeta (one data quality): N* at FID {fid:g} moves from the "
                f"runs' FID {source_fid:g} by the fixed zeta = {law.params_['zeta']:.3g}, an uncertainty "
                "the intervals leave out"
            )
        if law.n_obs_ is not None and law.n_obs_ != n_runs:
            out.append(
                f"the law was fitted to {law.n_obs_} runs, the observations give {n_runs}: the information "
                "of the runs is taken from the observations as given"
            )
        return out


def _free_params(law) -> list[str]:
    names = list(law.PARAM_NAMES)
    if law.approach == 2:
        if getattr(law, "prior", None) is not None and getattr(law, "prior_strength", None) is None:
            names = [k for k in names if k not in ("alpha", "beta")]
        if not getattr(law, "quality_sources_", None):
            names = [k for k in names if k not in ("epsilon", "zeta")]
    return names


def _huber_efficiency(c: float) -> tuple[float, float]:
    """(E[ψ²]/E[ψ']², E[ψ']) of Huber's ψ clipped at c for standard normal residuals."""
    inside = 2 * ndtr(c) - 1
    psi2 = inside - 2 * c * np.exp(-c * c / 2) / np.sqrt(2 * np.pi) + 2 * c**2 * ndtr(-c)
    return float(psi2 / inside**2), float(inside)


# -- choosing runs ------------------------------------------------------------------------------------


def _choose(states, noise_var, cost, budget, max_runs):
    """(chosen row indices, Var log N* after / before under each law): the better of per-FLOP and
    absolute greedy, judged by the mean ratio over the laws."""
    best = None
    for per_flop in (True, False):
        chosen, ratios = _greedy(states, noise_var, cost, budget, max_runs, per_flop)
        if best is None or np.mean(ratios) < np.mean(best[1]):
            best = (chosen, ratios)
    return best


def _greedy(states, noise_var, cost, budget, max_runs, per_flop):
    """Add runs one at a time by their mean relative drop of Var log N* over the laws (per FLOP or not).

    states: [(covariance, d log N*/dθ, candidate rows d log L̂/dθ)] per law. Per law and candidate
    j we keep Σj (M, p), jᵀΣj and jᵀΣg, and update them after each choice (rank one: O(M·p)).
    """
    laws = []
    for cov, grad, rows in states:
        s = rows @ cov
        laws.append(
            {
                "rows": rows,
                "grad": grad,
                "s": s,
                "quad": np.einsum("mp,mp->m", s, rows),
                "sg": s @ grad,
                "var": float(grad @ cov @ grad),
            }
        )
    start = np.array([law["var"] for law in laws])
    left = budget
    available = np.ones(len(cost), bool)
    chosen: list[int] = []
    while max_runs is None or len(chosen) < max_runs:
        fits = available & (cost <= left)
        if not fits.any():
            break
        gain = sum(law["sg"] ** 2 / (noise_var + law["quad"]) / law["var"] for law in laws) / len(laws)
        score = np.where(fits, gain / cost if per_flop else gain, -np.inf)
        i = int(np.argmax(score))
        if gain[i] < MIN_GAIN:
            break
        for law in laws:
            u, c = law["s"][i].copy(), noise_var + law["quad"][i]
            ru, ug = law["rows"] @ u, u @ law["grad"]
            law["s"] -= np.outer(ru, u) / c
            law["quad"] -= ru**2 / c
            law["sg"] -= ru * ug / c
            law["var"] -= ug**2 / c
        chosen.append(i)
        available[i] = False
        left -= cost[i]
    return chosen, np.array([law["var"] for law in laws]) / start


def default_samples(observed) -> list[int]:
    """Factors of 2 from the smallest observed dataset size to SAMPLES_REACH x the largest."""
    lo, hi = float(np.min(observed)), SAMPLES_REACH * float(np.max(observed))
    steps = int(np.floor(np.log(hi / lo) / np.log(SAMPLES_STEP) + 1e-9))
    return sorted({round(lo * SAMPLES_STEP**k) for k in range(steps + 1)} | {round(hi)})


def _candidate_runs(law, runs, candidates, samples, source) -> dict:
    """Every candidate model x dataset size not already run at this source, with its FLOPs."""
    if not candidates:
        raise RobustscaleError("candidates: expected at least one model size")
    for i, c in enumerate(candidates):
        if not isinstance(c, Candidate):
            raise RobustscaleError(f"candidates[{i}]: expected a Candidate, got {c!r}")
        _positive(c.params, f"candidates[{i}].params")
        if c.flops_per_sample is not None:
            _positive(c.flops_per_sample, f"candidates[{i}].flops_per_sample")
    if samples is None:
        samples = default_samples(runs["samples"])
    else:
        samples = list(samples)
        if not samples:
            raise RobustscaleError("samples: expected at least one dataset size")
        for i, s in enumerate(samples):
            if _positive(s, f"samples[{i}]") < 1 or float(s) != int(s):
                raise RobustscaleError(f"samples[{i}]: expected a whole number of samples >= 1, got {s!r}")
        samples = sorted({int(s) for s in samples})
    done = {
        (float(n), int(d)) for n, d, s in zip(runs["params"], runs["samples"], runs["source"]) if s == source
    }
    out = {"params": [], "samples": [], "cost": [], "model": []}
    for c in dict.fromkeys(candidates):
        per_sample = (
            c.flops_per_sample if c.flops_per_sample is not None else law.flops_per_param_sample_ * c.params
        )
        for d in samples:
            if (float(c.params), d) in done:
                continue
            out["params"].append(float(c.params))
            out["samples"].append(d)
            out["cost"].append(float(per_sample) * d)
            out["model"].append(c.model)
    if not out["params"]:
        raise RobustscaleError("candidates: every candidate run has been done already")
    return {k: (v if k == "model" else np.array(v)) for k, v in out.items()}


# -- observations and intervals -----------------------------------------------------------------------


def _fitted_runs(law, obs):
    """The runs the law was fitted to: final points, App. F.2.1's exclusion as set, the fit's sources."""
    runs = final_points(obs)
    if getattr(law, "exclude_small_runs", False):
        runs = runs[~small_run_mask(runs)]
    if law.approach == 2 and getattr(law, "base_source_", None):
        runs = runs[runs["source"].isin([law.base_source_, *(law.quality_sources_ or [])])]
    if runs.empty:
        raise RobustscaleError("observations: none of its runs are among those the law was fitted to")
    return runs.reset_index(drop=True)


def _main_source(law, runs) -> str:
    """Approach 2's base source; otherwise the source with the most runs (lowest FID on ties)."""
    if law.approach == 2 and getattr(law, "base_source_", None) in set(runs["source"]):
        return law.base_source_
    counts = runs.groupby("source").agg(n=("run", "size"), fid=("fid", "first"))
    return str(counts.sort_values(["n", "fid"], ascending=[False, True]).index[0])


def _bootstrap_interval(law, flops, fid, level):
    """(log lo − log N*, log hi − log N*) of the bootstrap laws' N*, or None without bootstrap laws."""
    if not getattr(law, "bootstrap_", None):
        return None
    from robustscale.laws.planning import plan_table

    row = plan_table(law, [flops], fid, level)[0]
    lo, hi = row.get("n_star_lo"), row.get("n_star_hi")
    n = row["n_star"]

    def offset(x, side):
        return side * np.inf if x is None or not x > 0 or not n > 0 else float(np.log(x / n))

    return offset(lo, -1), offset(hi, 1)


def _interval(n_star: float, lo_offset: float, hi_offset: float, limit: float, level: float,
              seen: float | None = None) -> dict:
    """{n_star, n_star_lo, n_star_hi, n_star_not_determined_below} from log offsets, by
    `laws.planning.bounded` with [1, limit] parameters (seen: the smallest run's N, its last resort)."""
    from robustscale.laws.planning import bounded_fields

    with np.errstate(over="ignore", invalid="ignore"):
        lo, hi = n_star * np.exp(min(lo_offset, 0.0)), n_star * np.exp(max(hi_offset, 0.0))
    return bounded_fields("n_star", n_star, lo, hi, seen=seen, level=level, ceiling=limit)


def _level(level) -> float:
    level = float(level)
    if not 0 < level < 1:
        raise RobustscaleError(f"level: expected a number in (0, 1), got {level:g}")
    return level


def _positive(x, name: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise RobustscaleError(f"{name}: expected a positive number, got {x!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise RobustscaleError(f"{name}: expected a positive number, got {x!r}")
    return v
