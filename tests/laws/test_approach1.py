"""Approach 1: App. F.1's envelope with the monotone filter, per-source exponents."""

import numpy as np
import pandas as pd
import pytest

from robustscale.errors import RobustscaleError
from robustscale.laws import Approach1
from robustscale.laws.approach1 import envelope


def test_envelope_monotone_and_from_best_run(sim_obs):
    rows = sim_obs[sim_obs["source"] == "DG"]
    env = envelope(rows)
    assert len(env) > 50 and len(env) <= 1000
    assert (np.diff(env["loss"]) <= 0).all()  # the filter leaves a non-increasing envelope
    # each envelope point is no worse than any run's observed point at or below that FLOPs
    for f, loss in zip(env["flops"][::50], env["loss"][::50]):
        assert loss <= rows.loc[rows["flops"] <= f, "loss"].min() + 1e-12


def test_filter_drops_upticks():
    """Two runs: the second starts above the first's end loss; its start is an uptick to drop."""
    obs = pd.DataFrame({"run": ["a", "a", "b", "b"], "source": "s", "fid": 0.0,
                        "params": [1e6, 1e6, 2e6, 2e6], "samples": [1e6, 2e6, 1e6, 4e6],
                        "loss": [1.0, 0.8, 0.9, 0.5]})
    obs["flops"] = 7822 * obs["params"] * obs["samples"]
    env = envelope(obs, n_flops=200)
    assert env["loss"].is_monotonic_decreasing
    assert set(env["run"]) == {"a", "b"} and env["loss"].iloc[-1] == pytest.approx(0.5)


def test_per_source_fits_and_plan(sim_obs):
    m = Approach1().fit(sim_obs)
    assert set(m.a_) == set(sim_obs["source"]) and all(0 < m.a_[s] < 1 for s in m.a_)
    for s in m.a_:
        assert m.a_[s] + m.b_[s] == pytest.approx(1.0, abs=0.05)  # N*·D* ∝ F along the envelope
    plan = m.plan(1e25, 1.76)
    assert plan["irreducible_loss"] is None and plan["a"] == m.a_["PFGM++"]
    assert not hasattr(m, "tradeoff")  # no loss formula, so no Eq 6


def test_small_single_source(small_obs):
    m = Approach1().fit(small_obs)
    assert list(m.params_) == ["fashion-mnist"] and np.isfinite(m.a_["fashion-mnist"])


def test_settings_checked_when_fit_starts(small_obs):
    with pytest.raises(RobustscaleError, match=r"n_flops: expected an integer in \[2, inf\), got 1"):
        Approach1(n_flops=1).fit(small_obs)
    with pytest.raises(TypeError):
        Approach1("fashion-mnist")  # keyword-only


def test_one_run_errors(small_obs):
    one = small_obs[small_obs["run"] == small_obs["run"].iloc[0]]
    with pytest.raises(RobustscaleError, match="Approach 1"):
        Approach1().fit(one)
