"""Bootstrap: residual resampling keeps the design, intervals bracket the fit, plan_table carries them."""

import pytest

from robustscale.errors import RobustscaleError
from robustscale.laws import Approach1, bootstrap, intervals, plan_table, tradeoff_table


def test_bootstrap_intervals(small_obs, small_law):
    m = small_law.with_params(small_law.params_)  # a copy: bootstrap_ is set on it
    samples = bootstrap(m, small_obs, k=8, seed=0)
    assert len(samples) == 8 and m.bootstrap_ is samples
    assert len({s["alpha"] for s in samples}) == 8  # every resample moves the fit
    iv = intervals(m, 1e16, 0.0)
    assert iv["level"] == 0.9 and set(iv["params"]) == set(m.params_)
    row = plan_table(m, [1e15, 1e16], 0.0)[1]
    for key in ("n_star", "d_star", "loss", "accuracy"):
        assert row[f"{key}_lo"] <= row[f"{key}_hi"] and [row[f"{key}_lo"], row[f"{key}_hi"]] == iv[key]
    assert row["loss_lo"] * 0.9 <= row["loss"] <= row["loss_hi"] * 1.1
    wide = plan_table(m, [1e16], 0.0, level=0.98)[0]
    assert wide["n_star_lo"] <= row["n_star_lo"] and wide["n_star_hi"] >= row["n_star_hi"]
    trade = tradeoff_table(m, 1e16, 0.0, 0.5)
    assert trade["overhead_lo"] <= trade["overhead_hi"] and trade["plan"]["n_star_lo"] == row["n_star_lo"]


def test_plan_table_without_samples_has_no_interval_keys(paper2):
    row = plan_table(paper2, [1e24], 1.65)[0]
    assert "n_star_lo" not in row and row["n_star"] == paper2.plan(1e24, 1.65)["n_star"]
    with pytest.raises(RobustscaleError, match="level"):
        plan_table(paper2, [1e24], 1.65, level=1.5)


def test_approach1_resamples_runs(small_obs):
    m = Approach1().fit(small_obs)
    bootstrap(m, small_obs, k=4, seed=1)
    row = plan_table(m, [1e16], 0.0)[0]
    assert row["n_star_lo"] <= row["n_star_hi"]
    with pytest.raises(RobustscaleError, match="trade-off needs approach 2 or 3"):
        tradeoff_table(m, 1e16, 0.0, 0.5)
