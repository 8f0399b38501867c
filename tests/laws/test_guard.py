"""The identifiability guard on small studies: flags, finite laws, anchoring that lands near the truth."""

import json
import math

import numpy as np
import pytest

from robustscale.fileio import dumps
from robustscale.laws import fit_law, load_law, simulate
from robustscale.laws.guard import EXPONENT_BOUNDS, covariance

# A demo-shaped study (3 model sizes x 3 budgets, one real-data source) whose true exponents
# differ from the prior's, so anchoring is not handed the answer.
GRID = {"sources": {"fashion-mnist": 0.0}, "models": {"wrn-10-1": 8e4, "wrn-16-2": 7e5, "wrn-28-4": 6e6},
        "sizes": (2e5, 5e5, 1e6), "points_per_run": 4, "noise": 0.01}


@pytest.fixture(scope="module")
def grid_fits():
    prior = load_law("paper-approach2")
    truth = prior.with_params({**prior.params_, "alpha": 0.26, "beta": 0.21})
    fits = []
    for seed in range(8):
        obs = simulate(truth, seed=seed, **GRID)
        budget = 10 * obs["flops"].max()
        n_star = truth.plan(budget, 0.0)["n_star"]
        fits.append((fit_law(obs), fit_law(obs, prior="paper-approach2"), n_star, budget, obs))
    return fits


def test_small_grids_finite_flagged_and_anchored(grid_fits):
    for free, anchored, true_n, budget, _ in grid_fits:
        for est in (free, anchored):
            assert all(math.isfinite(v) for v in est.params_.values())
            assert EXPONENT_BOUNDS[0] <= est.params_["alpha"] <= EXPONENT_BOUNDS[1]
            assert est.params_["E"] >= 0
            assert "NaN" not in dumps(est.to_dict()) and "Infinity" not in dumps(est.to_dict())
        assert not (free.identified_["alpha"] and free.identified_["beta"]), free.diagnostics_
        assert all({"param", "kind", "message"} <= set(d) for d in free.diagnostics_)
        assert free.anchored_ is None
        assert anchored.params_["alpha"] == load_law("paper-approach2").params_["alpha"]
        assert 0.5 <= anchored.plan(budget, 0.0)["n_star"] / true_n <= 2


def test_auto_prior_anchors_only_when_needed(grid_fits, paper2):
    free, anchored, _, _, obs = grid_fits[0]
    auto = fit_law(obs, auto_prior="paper-approach2")
    assert auto.anchored_["prior"] == "paper-approach2" and "not identified" in auto.anchored_["reason"]
    assert auto.params_ == anchored.params_
    assert fit_law(simulate(paper2, seed=0, noise=0.005), auto_prior="paper-approach2").anchored_ is None


def test_anchored_law_roundtrips(tmp_path, grid_fits):
    from robustscale.laws import save_law

    anchored = grid_fits[0][1]
    assert anchored.anchored_ == {"prior": "paper-approach2", "reason": "requested", "strength": None}
    save_law(anchored, tmp_path / "law.json")
    again = load_law(tmp_path / "law.json")
    assert again.anchored_ == anchored.anchored_ and again.diagnostics_ == anchored.diagnostics_
    assert again.identified_ == anchored.identified_


def test_prior_strength_pulls_between_data_and_prior(small_obs, small_law):
    prior_alpha = load_law("paper-approach2").params_["alpha"]
    weak = fit_law(small_obs, prior="paper-approach2", prior_strength=1e-4).params_["alpha"]
    strong = fit_law(small_obs, prior="paper-approach2", prior_strength=1e4).params_["alpha"]
    assert abs(strong - prior_alpha) < 1e-3
    assert abs(weak - prior_alpha) > abs(strong - prior_alpha)


def test_paper_shaped_data_identified_and_quality_recovered(paper2):
    """§3.2.2's default quality sources: ε, ζ within 0.05 of the generating law's, nothing flagged."""
    for seed in (0, 1):
        m = fit_law(simulate(paper2, seed=seed, noise=0.005))
        assert abs(m.params_["epsilon"] - paper2.params_["epsilon"]) < 0.05
        assert abs(m.params_["zeta"] - paper2.params_["zeta"]) < 0.05
        assert all(m.identified_.values()), m.diagnostics_


def test_flops_constant_from_observations(small_obs):
    obs = small_obs.assign(flops=small_obs["flops"] * 6300 / 7822)  # the demo's runs imply ~6,300
    m = fit_law(obs)
    assert m.flops_per_param_sample_ == pytest.approx(6300)
    assert [d["kind"] for d in m.diagnostics_ if d["param"] == "flops_per_param_sample"] == ["flops"]
    n, d = m.plan(1e15, 0.0)["n_star"], m.plan(1e15, 0.0)["d_star"]
    assert n * d * 6300 == pytest.approx(1e15)
    given = fit_law(obs, flops_per_param_sample=7822)
    assert given.flops_per_param_sample_ == 7822 and not any(d["kind"] == "flops" for d in given.diagnostics_)


def test_covariance_marks_unconstrained_directions():
    # columns 1, 2 collinear, 3 empty
    jac = np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [1.0, 2.0, 0.0], [3.0, 6.0, 0.0]])
    cov = covariance(jac, np.zeros(4), 1e-3)
    assert not np.isfinite(np.diag(cov)).any()
    assert np.isinf(covariance(jac[:2], np.zeros(2), 1e-3)).all()  # fewer runs than parameters
    good = covariance(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.zeros(3), 1e-3)
    assert np.isfinite(good).all() and good[0, 0] > 0


def test_json_never_nan():
    assert json.loads(dumps({"a": float("inf"), "b": [float("nan")]})) == {"a": None, "b": [None]}
