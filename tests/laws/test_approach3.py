"""Approach 3: fit to all sources of Eq-5 simulated data; objective no worse than the truth's."""

import numpy as np
import pytest

from robustscale.laws import Approach3, load_law, simulate
from robustscale.laws import approach3 as a3
from robustscale.laws.observations import final_points, small_run_mask


def test_fit_recovers_paper_approach3():
    law = load_law("paper-approach3")
    obs = simulate(law, seed=0, noise=1e-3)
    m = Approach3().fit(obs)
    runs = final_points(obs)
    runs = runs[~small_run_mask(runs)]
    p = law.params_
    truth = np.array([[np.log(p["A"]), np.log(p["B"]), p["E"], np.log(p["Q"]), p["alpha"], p["beta"],
                       p["kappa"], p["epsilon"]]])
    f_truth = a3.huber_objective(truth, np.log(runs["params"].to_numpy()), np.log(runs["samples"].to_numpy()),
                                 runs["fid"].to_numpy(), np.log(runs["loss"].to_numpy()), 1e-3)[0][0]
    assert m.objective_ <= f_truth + 1e-12
    for fid in (0.0, 1.76):
        assert m.plan(1e22, fid)["loss"] == pytest.approx(law.plan(1e22, fid)["loss"], rel=0.02)


def test_gradient_matches_finite_difference():
    law = load_law("paper-approach3")
    runs = final_points(simulate(law, seed=0))
    ln, ld = np.log(runs["params"].to_numpy()), np.log(runs["samples"].to_numpy())
    fid, ll = runs["fid"].to_numpy(), np.log(runs["loss"].to_numpy())
    theta = np.array([[1.7, 8.8, 0.5, -4.9, 0.25, 0.21, 0.6, 0.04]])
    _, g = a3.huber_objective(theta, ln, ld, fid, ll, 0.05)
    for i in range(8):
        tp, tm = theta.copy(), theta.copy()
        tp[0, i] += 1e-6
        tm[0, i] -= 1e-6
        plus, minus = (a3.huber_objective(t, ln, ld, fid, ll, 0.05)[0] for t in (tp, tm))
        fd = (plus - minus) / 2e-6
        assert g[0, i] == pytest.approx(fd[0], rel=1e-4, abs=1e-8)
