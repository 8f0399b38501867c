"""Shared fixtures of the laws tests: simulated observations and small real-data-shaped tables."""

from __future__ import annotations

import pytest

from robustscale.laws import load_law, simulate


@pytest.fixture(scope="session")
def paper2():
    return load_law("paper-approach2")


@pytest.fixture(scope="session")
def sim_obs(paper2):
    """The paper's 232-run grid drawn from paper-approach2 with 1% noise."""
    return simulate(paper2, seed=0, noise=0.01)


@pytest.fixture(scope="session")
def small_obs(paper2):
    """One real-data source (fid 0), 3 models x 3 budgets, 4 points per run: a demo-sized table."""
    return simulate(paper2, seed=1, noise=0.005, points_per_run=4, sources={"fashion-mnist": 0.0},
                    models={"wrn-10-1": 8e4, "wrn-16-2": 7e5, "wrn-28-4": 6e6}, sizes=(2e5, 5e5, 1e6))


@pytest.fixture(scope="session")
def small_law(small_obs):
    """Approach 2 fitted to small_obs (shared: fits take seconds on 2 cores)."""
    from robustscale.laws import Approach2

    return Approach2().fit(small_obs)
