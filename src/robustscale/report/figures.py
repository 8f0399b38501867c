"""The report's figure that robustscale.laws.plots does not draw: the fitted law against every run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from robustscale.laws.observations import final_points
from robustscale.laws.plots import _colors, _figure, _save


def plot_law_fit(obs: pd.DataFrame, law, out) -> Path:
    """Each run's final loss and accuracy, observed against predicted by the law (parity plots).

    Parameters: obs (validated observations), law (fitted Approach 2 or 3), out (.png/.svg).
    Left: predicted vs observed loss per run, coloured by model size, with the y = x line.
    Right: robust accuracy observed vs the law's loss -> accuracy regression (App. F.2.2).
    """
    runs = final_points(obs)
    predicted = np.asarray(law.predict_loss(runs["params"].to_numpy(), runs["samples"].to_numpy(),
                                            runs["fid"].to_numpy()), dtype=float)
    fig, (ax0, ax1) = _figure(2)
    colors = _colors(runs["params"])
    for n, idx in runs.groupby("params").groups.items():
        ax0.scatter(runs.loc[idx, "loss"], predicted[runs.index.get_indexer(idx)], color=colors[n], s=18,
                    label=f"N={n / 1e6:.3g}M")
    lo = min(runs["loss"].min(), predicted.min()) * 0.97
    hi = max(runs["loss"].max(), predicted.max()) * 1.03
    ax0.plot([lo, hi], [lo, hi], color="gray", ls="--", lw=0.8)
    rel = np.abs(predicted / runs["loss"].to_numpy() - 1)
    ax0.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="observed loss", ylabel="law's predicted loss",
            title=f"approach {law.approach}: mean |error| {100 * rel.mean():.1f}%")
    ax0.legend(fontsize=6)
    if "accuracy" in obs.columns and obs["accuracy"].notna().any():
        pts = obs.dropna(subset=["accuracy"])
        ax1.scatter(pts["loss"], 100 * pts["accuracy"], s=8, color="gray", label="evaluations")
        grid = np.linspace(pts["loss"].min(), pts["loss"].max(), 50)
        ax1.plot(grid, 100 * np.asarray(law.predict_accuracy(grid), dtype=float), color="red",
                 label="loss -> accuracy fit")
        ax1.legend(fontsize=6)
    ax1.set(xlabel="loss", ylabel="PGD robust accuracy (%)", title="accuracy against loss")
    return _save(fig, out)
