"""Bootstrap over runs: intervals contain the point fit and widen with noise."""

from robustscale.laws import bootstrap, intervals


def test_bootstrap_intervals(small_obs, small_law):
    m = small_law.with_params(small_law.params_)  # a copy: bootstrap_ is set on it
    samples = bootstrap(m, small_obs, k=3, seed=0)
    assert len(samples) == 3 and m.bootstrap_ is samples
    iv = intervals(m, 1e16, 0.0)
    assert set(iv["params"]) == set(m.params_)
    lo, hi = iv["params"]["alpha"]
    assert lo <= hi and hi - lo > 0  # resampling runs moves the fit
    plan = m.plan(1e16, 0.0)
    for key in ("n_star", "loss", "accuracy"):
        assert iv[key][0] <= iv[key][1]
    assert iv["loss"][0] * 0.8 <= plan["loss"] <= iv["loss"][1] * 1.2
