"""Table 3 from the presets: a, b, L* at 1e25 FLOPs and E' / E, to the printed digits."""

import pytest

from robustscale.laws import load_law

# Table 3: (approach, FID) -> printed a, b, L*, E' (None where the paper prints "–").
TABLE3 = {
    (1, 1.76): (0.56, 0.43, 0.50, None),
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
    assert (None if e is None else round(plan["irreducible_loss"], 2)) == e
    if a is not None:
        assert (round(plan["a"], 2), round(plan["b"], 2)) == (a, b)


# App. F.2.1 / F.3.1 as printed: two digits (Q one significant digit, κ one decimal).
APPENDIX = {
    "paper-approach2": {"A": 6.69, "B": 9.89, "E": 0.48, "alpha": 0.24, "beta": 0.23, "epsilon": 0.16,
                        "zeta": -0.28},
    "paper-approach3": {"A": 6.0, "B": 7000.0, "E": 0.52, "Q": 0.007, "alpha": 0.24, "beta": 0.22,
                        "kappa": 0.6, "epsilon": 0.04},
}


@pytest.mark.parametrize("name", list(APPENDIX))
def test_presets_round_to_appendix_values(name):
    params = load_law(name).params_
    for k, v in APPENDIX[name].items():
        digits = 3 if k == "Q" else 1 if k == "kappa" else 2
        assert round(params[k], digits) == v, k


def test_table3_needs_the_unrounded_fits():
    """Why the presets hold the notebook's unrounded fits: with the appendix's printed values,
    Approach 2's a at 1e25 FLOPs rounds to 0.49 and Approach 3's L* at FID 1.76 to 0.65, where
    Table 3 prints 0.48 and 0.63; the presets give Table 3's digits (test_table3)."""
    law2 = load_law("paper-approach2")
    rounded2 = law2.with_params(APPENDIX["paper-approach2"])
    printed_a = TABLE3[(2, 1.76)][0]
    assert round(rounded2.plan(1e25, 1.76)["a"], 2) != printed_a == round(law2.plan(1e25, 1.76)["a"], 2)
    law3 = load_law("paper-approach3")
    rounded3 = law3.with_params(APPENDIX["paper-approach3"])
    printed_loss = TABLE3[(3, 1.76)][2]
    rounded_loss, preset_loss = (round(law.plan(1e25, 1.76)["loss"], 2) for law in (rounded3, law3))
    assert rounded_loss != printed_loss == preset_loss


def test_approach3_b_beta_matches_appendix():
    p = load_law("paper-approach3").params_
    assert round(p["B"] ** p["beta"], 2) == 6.85  # App. F.3.1: "Bβ = 6.85"


def test_paper_accuracy_limit_is_about_90_percent():
    """Abstract: robustness plateaus near 90% at FID 0 (loss E ≈ 0.48 -> 1.2575 - 0.7496·E)."""
    law = load_law("paper-approach2")
    plan = law.plan(1e25, 0.0)
    assert plan["accuracy_limit"] == pytest.approx(1.2575 - 0.7496 * law.params_["E"])
    assert 0.89 < plan["accuracy_limit"] < 0.90
