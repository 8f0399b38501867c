"""Shared fixtures of the laws tests: simulated observations and small real-data-shaped tables."""

from __future__ import annotations

import pandas as pd
import pytest

from robustscale.laws import load_law, simulate


@pytest.fixture(scope="session")
def paper2():
    return load_law("paper-approach2")


@pytest.fixture(scope="session")
def sim_obs(paper2):
    """The paper's 232-run grid drawn from paper-approach2 with 1% noise."""
    return simulate(paper2, seed=0, noise=0.01)


@pytest.fixture
def small_obs(paper2):
    """One real-data source (fid 0), 3 models x 3 budgets, 4 points per run: a demo-sized table."""
    return simulate(paper2, seed=1, noise=0.005, points_per_run=4, sources={"fashion-mnist": 0.0},
                    models={"wrn-10-1": 8e4, "wrn-16-2": 7e5, "wrn-28-4": 6e6}).query("samples <= 30e6")


def write(df: pd.DataFrame, path) -> str:
    df.to_csv(path, index=False)
    return str(path)
