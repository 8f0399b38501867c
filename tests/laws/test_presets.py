"""Table 3 from the presets: a, b, L* at 1e25 FLOPs and E' / E, to the printed digits."""

import pytest

from robustscale.laws import load_law

# Table 3: (approach, FID) -> printed a, b, L*, E' (None where the paper prints "–").
TABLE3 = {
    (2, 1.76): (0.48, 0.52, 0.61, 0.56),
    (2, 0.0): (0.48, 0.52, 0.53, 0.48),
    (3, 1.76): (None, None, 0.63, 0.55),
    (3, 0.0): (0.47, 0.53, 0.56, 0.52),
}


@pytest.mark.parametrize("approach,fid", list(TABLE3))
def test_table3(approach, fid):
    plan = load_law(f"paper-approach{approach}").plan(1e25, fid)
    a, b, loss, e = TABLE3[(approach, fid)]
    assert round(plan["loss"], 2) == loss
    assert round(plan["irreducible_loss"], 2) == e
    if a is not None:
        assert (round(plan["a"], 2), round(plan["b"], 2)) == (a, b)


@pytest.mark.parametrize("name,printed", [
    ("paper-approach2", {"A": 6.69, "B": 9.89, "E": 0.48, "alpha": 0.24, "beta": 0.23, "epsilon": 0.16, "zeta": -0.28}),
    ("paper-approach3", {"A": 6.0, "B": 7000.0, "E": 0.52, "Q": 0.007, "alpha": 0.24, "beta": 0.22, "kappa": 0.6, "epsilon": 0.04}),
])
def test_presets_round_to_appendix_values(name, printed):
    """App. F.2.1 / F.3.1 print two digits (Q one significant digit, κ one decimal)."""
    params = load_law(name).params_
    for k, v in printed.items():
        digits = 3 if k == "Q" else 1 if k == "kappa" else 2
        assert round(params[k], digits) == v, k


def test_approach3_b_beta_matches_appendix():
    p = load_law("paper-approach3").params_
    assert round(p["B"] ** p["beta"], 2) == 6.85  # App. F.3.1: "Bβ = 6.85"


def test_paper_accuracy_limit_is_about_90_percent():
    """Abstract: robustness plateaus near 90% at FID 0 (loss E = 0.48 -> 1.2575 - 0.7496*0.48)."""
    plan = load_law("paper-approach2").plan(1e25, 0.0)
    assert plan["accuracy_limit"] == pytest.approx(1.2575 - 0.7496 * 0.48)
    assert 0.89 < plan["accuracy_limit"] < 0.90
