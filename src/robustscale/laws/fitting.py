"""`fit_law`: load, validate, fit, guard, anchor when needed, bootstrap — the one entry point that
the `fit` command, the report and the demo call."""

from __future__ import annotations

from typing import Callable

from robustscale.errors import RobustscaleError
from robustscale.laws.bootstrap import bootstrap as draw_bootstrap
from robustscale.laws.guard import EXPONENTS, bootstrap_findings, identified
from robustscale.laws.lawfile import ESTIMATORS
from robustscale.laws.observations import load_observations

# The penalty weight used when fixed prior exponents leave the fit degenerate (see Approach2's
# prior_strength): weak enough that runs which clearly disagree with the prior move the exponents.
SOFT_PRIOR_STRENGTH = 0.1


def fit_law(observations, *, approach: int = 2, prior: str | None = None, prior_strength: float | None = None,
            auto_prior: str | None = None, bootstrap: int = 0, seed: int = 0,
            quality_sources: list[str] | None = None, flops_per_param_sample: float | None = None,
            on_step: Callable[[], None] | None = None, **estimator_params):
    """Fit a scaling law and say what the data determine.

    Parameters: observations (path or DataFrame), approach (1, 2, 3), prior / prior_strength (an
    anchored fit: see Approach2), auto_prior (a preset or law.json to anchor to only when the guard
    finds α or β unidentified), bootstrap (K resamples stored in bootstrap_; 0 = none), seed,
    quality_sources, flops_per_param_sample, on_step (called per bootstrap refit), and any other
    estimator parameter (huber_delta, exclude_small_runs, base_source, source, n_flops).
    Returns: the fitted estimator with params_, diagnostics_, identified_, anchored_ (None, or
    {prior, reason, strength}), bootstrap_.
    """
    if approach not in ESTIMATORS:
        raise RobustscaleError(f"approach: expected 1, 2 or 3, got {approach!r}")
    if approach != 2:
        given = {"prior": prior, "prior_strength": prior_strength, "auto_prior": auto_prior,
                 "quality_sources": quality_sources}
        wrong = [k for k, v in given.items() if v is not None]
        if wrong:
            raise RobustscaleError(f"{wrong[0]}: only approach 2 takes it (got approach {approach})")
        if approach == 3 and flops_per_param_sample is not None:
            estimator_params["flops_per_param_sample"] = flops_per_param_sample
        elif flops_per_param_sample is not None:
            raise RobustscaleError("flops_per_param_sample: approach 1 regresses N*, D* on FLOPs directly; "
                                   "it takes none")
    else:
        estimator_params.update(prior=prior, prior_strength=prior_strength, quality_sources=quality_sources,
                                flops_per_param_sample=flops_per_param_sample)
    try:
        est = ESTIMATORS[approach](**estimator_params)
    except TypeError as e:  # an unknown keyword: say which, as a parameter error
        raise RobustscaleError(f"estimator_params: {e}") from None
    obs = load_observations(observations)
    est.fit(obs)
    if auto_prior is not None and prior is None:
        weak = [f for f in est.diagnostics_
                if f["param"] in EXPONENTS and not est.identified_.get(f["param"], True)]
        if weak:
            reason = "; ".join(f["message"] for f in weak)
            est.set_params(prior=auto_prior).fit(obs)
            strength = prior_strength
            collapsed = [f for f in est.diagnostics_ if f["param"] in ("A", "B") and f["kind"] == "bound"]
            if collapsed and prior_strength is None:
                # With the prior's exponents fixed, the runs push A or B to zero (their loss falls
                # faster with D or N than the prior allows): pull the exponents towards the prior
                # instead of fixing them, so the runs can still move them.
                strength = SOFT_PRIOR_STRENGTH
                reason += (f"; with the prior's exponents fixed {collapsed[0]['message']}, so they are "
                           "pulled "
                           f"towards the prior (prior_strength {strength:g}) instead")
                est.set_params(prior_strength=strength).fit(obs)
            est.anchored_ = {"prior": auto_prior, "reason": reason, "strength": strength}
    if bootstrap:
        draw_bootstrap(est, obs, bootstrap, seed=seed, on_step=on_step)
        est.diagnostics_ = est.diagnostics_ + bootstrap_findings(est)
        if est.identified_:
            est.identified_ = identified(est.identified_, est.diagnostics_)
    return est
