"""Observations drawn from a law on the paper's grid of runs (§3.1), before spending compute."""

from __future__ import annotations

import numpy as np
import pandas as pd

from robustscale.laws.presets import TABLE1_SOURCES

# Table 2: WideResNet depth-width and parameter counts.
TABLE2_MODELS = {"wrn-28-4": 6e6, "wrn-40-4": 9e6, "wrn-82-4": 20e6, "wrn-28-12": 53e6,
                 "wrn-58-12": 122e6, "wrn-82-12": 178e6, "wrn-70-16": 267e6, "wrn-82-16": 316e6}
# §3.1: generators with 100M samples train on 5, 10, 30, 70 and 100M; the others on 5, 10, 30M.
LARGE_SIZES = (5e6, 10e6, 30e6, 70e6, 100e6)
SMALL_SIZES = (5e6, 10e6, 30e6)
LARGE_SOURCES = ("EDM-7", "EDM-20", "PFGM++", "DG")
# An evaluation before the end of a cosine-annealed run sits above the loss of a run trained to
# that size: +UNANNEALED_PENALTY·(1 − fraction) relative, so envelopes (Approach 1) pick run ends.
UNANNEALED_PENALTY = 0.05


def simulate(law, seed: int = 0, noise: float = 0.01, points_per_run: int = 5,
             sources: dict[str, float] | None = None, models: dict[str, float] | None = None,
             sizes: tuple[float, ...] | None = None) -> pd.DataFrame:
    """A paper-shaped observations table drawn from a parametric law (Approach 2 or 3).

    Parameters: law (fitted estimator with predict_loss and predict_accuracy), seed, noise (sd of
    the multiplicative log-normal noise on loss; accuracy gets the same in absolute units),
    points_per_run (evaluations per run, evenly spaced in samples), sources ({name: FID}, default
    Table 1), models ({name: N}, default Table 2), sizes (dataset sizes of every source; default
    §3.1's 5-100M or 5-30M by generator).
    Returns: DataFrame with run, source, fid, model, params, samples, flops, loss, accuracy (left
    out for a law without a loss -> accuracy regression), train_fraction — 232 runs by default,
    as in §3.1.
    """
    rng = np.random.default_rng(seed)
    sources = TABLE1_SOURCES if sources is None else sources
    models = TABLE2_MODELS if models is None else models
    fractions = np.arange(1, points_per_run + 1) / points_per_run
    rows = []
    for source, fid in sources.items():
        large = source in LARGE_SOURCES or source not in TABLE1_SOURCES
        source_sizes = sizes or (LARGE_SIZES if large else SMALL_SIZES)
        for model, n in models.items():
            for size in source_sizes:
                samples = fractions * size
                clean = law.predict_loss(n, samples, fid) * (1 + UNANNEALED_PENALTY * (1 - fractions))
                loss = clean * np.exp(noise * rng.standard_normal(len(fractions)))
                acc = (law.predict_accuracy(clean) + noise * rng.standard_normal(len(fractions))
                       if law.accuracy_ is not None else np.full(len(fractions), np.nan))
                for s, lo, ac, fr in zip(samples, loss, acc, fractions):
                    rows.append((f"{source}/{model}/{size / 1e6:g}M", source, fid, model, n, s,
                                 law.flops_per_param_sample_ * n * s, lo, float(np.clip(ac, 0, 1)), fr))
    df = pd.DataFrame(rows, columns=["run", "source", "fid", "model", "params", "samples", "flops",
                                     "loss", "accuracy", "train_fraction"])
    return df if law.accuracy_ is not None else df.drop(columns="accuracy")
