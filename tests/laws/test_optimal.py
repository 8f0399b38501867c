"""Eq 4 against numeric minimisation; Eq 6 keeps the loss; Approach 3's numeric optimum."""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from robustscale.laws import load_law
from robustscale.laws.optimal import FLOPS_PER_PARAM_SAMPLE


def _numeric_optimum(law, flops, fid):
    c = flops / FLOPS_PER_PARAM_SAMPLE
    res = minimize_scalar(lambda x: float(law.predict_loss(np.exp(x), c / np.exp(x), fid)),
                          bounds=(0, np.log(c)), method="bounded", options={"xatol": 1e-9})
    return np.exp(res.x), res.fun


@pytest.mark.parametrize("flops", [1e18, 1e21, 1e25])
@pytest.mark.parametrize("fid", [0.0, 1.76, 35.54])
def test_eq4_matches_numeric_minimum(paper2, flops, fid):
    n, d, loss = paper2.optimum(flops, fid)
    assert n * d * FLOPS_PER_PARAM_SAMPLE == pytest.approx(flops, rel=1e-9)
    n_num, loss_num = _numeric_optimum(paper2, flops, fid)
    assert n == pytest.approx(n_num, rel=1e-4)
    assert loss <= loss_num + 1e-12


@pytest.mark.parametrize("omega_n", [0.3, 0.5, 0.8, 1.5, 3.0])
def test_eq6_keeps_predicted_loss(paper2, omega_n):
    r = paper2.tradeoff(1e24, 1.65, omega_n)
    _, _, loss = paper2.optimum(1e24, 1.65)
    assert float(paper2.predict_loss(r["n"], r["d"], 1.65)) == pytest.approx(float(loss), rel=1e-12)
    assert r["overhead"] == pytest.approx(r["omega_n"] * r["omega_d"] - 1)
    assert r["overhead"] >= -1e-12  # the optimum is the cheapest way to this loss


def test_eq6_half_size_costs_little(paper2):
    """§3.3.2: halving the model costs ~10% more compute (we get 10-15% across budgets)."""
    for flops in (1e21, 1e24):
        assert 0.05 < paper2.tradeoff(flops, 1.65, 0.5)["overhead"] < 0.2


def test_eq6_too_small_model_errors(paper2):
    from robustscale.errors import RobustscaleError

    with pytest.raises(RobustscaleError, match="omega_n"):
        paper2.tradeoff(1e24, 1.65, 1e-4)


def test_approach3_optimum_is_eq4_at_fid0():
    """At FID 0 Eq 5 is Eq 3 with B -> B^β: the numeric N* must equal Eq 4's."""
    from robustscale.laws.optimal import optimal_allocation

    law = load_law("paper-approach3")
    p = law.params_
    n, d, _ = law.optimum(1e24, 0.0)
    n4, _ = optimal_allocation(1e24, p["A"], p["B"] ** p["beta"], p["alpha"], p["beta"])
    assert n == pytest.approx(n4, rel=1e-5)


def test_approach3_tradeoff_keeps_loss():
    law = load_law("paper-approach3")
    r = law.tradeoff(1e23, 1.76, 0.5)
    optimal_loss = law.optimum(1e23, 1.76)[2]
    assert float(law.predict_loss(r["n"], r["d"], 1.76)) == pytest.approx(optimal_loss, rel=1e-9)
