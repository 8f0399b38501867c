"""The observations table: one row per evaluation point of a training run (CSV or Parquet)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from robustscale.errors import RobustscaleError

REQUIRED = ("run", "source", "fid", "params", "samples", "flops", "loss")
OPTIONAL = ("accuracy", "clean_accuracy", "train_fraction")
NUMERIC = ("fid", "params", "samples", "flops", "loss") + OPTIONAL
POSITIVE = ("params", "samples", "flops", "loss")

# App. F.2.1: "drop training runs where model size is less than 100M, data size is greater than 10M,
# FID is less than 10" (small models underfit large, high-quality datasets).
SMALL_MODEL_PARAMS = 100e6
LARGE_DATA_SAMPLES = 10e6
HIGH_QUALITY_FID = 10.0
# Why a run was left out, as law.json records it: the thresholds are the paper's, set for CIFAR-10.
SMALL_RUN_RULE = "App. F.2.1's rule (N < 100M, D > 10M and FID < 10: the paper's thresholds for CIFAR-10)"


def load_observations(data: str | os.PathLike | pd.DataFrame) -> pd.DataFrame:
    """Read and validate an observations table.

    Parameters: data, a .csv / .parquet path or a DataFrame with columns run, source, fid, params,
    samples, flops, loss (optional accuracy, clean_accuracy, train_fraction).
    Returns: a new DataFrame (run, source as str; numeric columns as float64).
    Raises RobustscaleError naming the column and the row (1-based data row) for: a missing
    column, a non-numeric or NaN/inf value, non-positive params/samples/flops/loss, negative fid,
    an empty table.
    """
    if isinstance(data, pd.DataFrame):
        name, df = "observations", data.copy()
    else:
        path = Path(data)
        name = str(path)
        if not path.is_file():
            raise RobustscaleError(f"{name}: no such file")
        try:
            df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        except Exception as e:  # pandas/pyarrow raise many types for unreadable files
            raise RobustscaleError(f"{name}: not a readable CSV/Parquet table ({e})") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise RobustscaleError(f"{name}: missing column '{missing[0]}' (required: {', '.join(REQUIRED)})")
    if len(df) == 0:
        raise RobustscaleError(f"{name}: empty table (expected at least one observation row)")
    df = df.reset_index(drop=True)
    for col in ("run", "source"):
        if df[col].isna().any():
            row = int(np.flatnonzero(df[col].isna())[0]) + 1
            raise RobustscaleError(f"{name}: column '{col}' row {row}: empty value")
        df[col] = df[col].astype(str)
    for col in NUMERIC:
        if col not in df.columns:
            continue
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna() if col in OPTIONAL else values.isna()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise RobustscaleError(f"{name}: column '{col}' row {row + 1}: expected a number, got "
                                   f"{df[col][row]!r}")
        values = values.astype(float)
        inf = np.isinf(values.to_numpy())
        if inf.any():
            row = int(np.flatnonzero(inf)[0])
            raise RobustscaleError(f"{name}: column '{col}' row {row + 1}: expected a finite number, got "
                                   f"{values[row]}")
        if col in POSITIVE and (values <= 0).any():
            row = int(np.flatnonzero(values <= 0)[0])
            raise RobustscaleError(f"{name}: column '{col}' row {row + 1}: expected a positive number, got "
                                   f"{values[row]:g}")
        if col == "fid" and (values < 0).any():
            row = int(np.flatnonzero(values < 0)[0])
            raise RobustscaleError(f"{name}: column 'fid' row {row + 1}: expected FID >= 0, got "
                                   f"{values[row]:g}")
        df[col] = values
    return df


def final_points(obs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its last evaluation (largest samples), i.e. the run's dataset size D.

    Approaches 2 and 3 fit L(N, D) to these: a run's loss after seeing all of its D samples.
    """
    idx = obs.groupby(["source", "run"], sort=False)["samples"].idxmax()
    return obs.loc[idx.to_numpy()].reset_index(drop=True)


def small_run_mask(runs: pd.DataFrame) -> np.ndarray:
    """True for the runs App. F.2.1 drops: N < 100M and D > 10M and FID < 10."""
    return (
        (runs["params"].to_numpy() < SMALL_MODEL_PARAMS)
        & (runs["samples"].to_numpy() > LARGE_DATA_SAMPLES)
        & (runs["fid"].to_numpy() < HIGH_QUALITY_FID)
    )


def sources(obs: pd.DataFrame) -> dict[str, float]:
    """{source name: FID} in order of first appearance."""
    return {str(s): float(f) for s, f in obs.groupby("source", sort=False)["fid"].first().items()}


def observed_flops_per_param_sample(obs: pd.DataFrame) -> float | None:
    """c in FLOPs = c·N·D as the observations report it: flops / (params·samples) per evaluation,
    median within each run, median over runs (None if that is not a positive number).
    """
    ratio = obs["flops"] / (obs["params"] * obs["samples"])
    per_run = ratio.groupby(obs["run"]).median()
    value = float(per_run.median())
    return value if np.isfinite(value) and value > 0 else None
