"""The report tests use the run-store fixtures (hand-written run dirs in the trainer's layout) and a
study that is not the paper's: Chinchilla-shaped runs (an LLM study's table, no accuracy column)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from runstore import make_run, study_runs  # noqa: F401  (fixtures shared with tests/runs)

# The shape of Chinchilla's Figure 4 as Epoch AI reconstructed it (epoch-research/analyzing-chinchilla,
# data/svg_extracted_data.csv: model size, training FLOP and final loss of each run): 240 runs of 140
# model sizes from 44M to 16B parameters on 9 isoFLOP budgets, FLOPs = 6·N·D, FID 0, no accuracy.
# The losses here are drawn from Hoffmann et al.'s fitted law (E 1.69, A 406.4, B 410.7, α 0.34,
# β 0.28) with 1% noise, not copied from the reconstruction.
CHINCHILLA_LAW = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
ISOFLOP_BUDGETS = (6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 3e21)


def chinchilla_shaped(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sizes = np.geomspace(4.4e7, 1.6e10, 140)
    budgets = np.array(ISOFLOP_BUDGETS)
    n_opt = 70e9 * np.sqrt(budgets / 5.76e23)  # Chinchilla's own optimum, 70B at 5.76e23 FLOPs
    # every (size, budget) with the size within 5x of the budget's optimum; each size once, then 100 more
    near = [(j, k) for j, n in enumerate(sizes) for k in range(len(budgets))
            if abs(np.log10(n / n_opt[k])) < 0.75]
    first = {j: (j, k) for j, k in rng.permutation(np.array(near))[::-1].tolist()}
    rest = [pair for pair in map(tuple, near) if pair not in first.values()]
    pairs = list(first.values()) + [rest[i] for i in rng.choice(len(rest), 240 - len(first), replace=False)]
    p = CHINCHILLA_LAW
    rows = []
    for j, k in pairs:
        n, flops = sizes[j], budgets[k]
        d = flops / (6 * n)
        loss = p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]
        loss *= np.exp(0.01 * rng.standard_normal())
        rows.append((f"chinchilla/{n / 1e6:.0f}M/{flops:.0e}", "chinchilla", 0.0, n, d, flops, loss))
    return pd.DataFrame(rows, columns=["run", "source", "fid", "params", "samples", "flops", "loss"])


@pytest.fixture(scope="session")
def chinchilla_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("chinchilla") / "chinchilla.csv"
    chinchilla_shaped().to_csv(path, index=False)
    return path
