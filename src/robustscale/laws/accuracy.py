"""Loss -> robust accuracy: a linear regression (App. F.2.2)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from robustscale.errors import RobustscaleError


@dataclass(frozen=True)
class AccuracyRegression:
    """accuracy = intercept + slope·loss, clipped to [0, 1]."""

    slope: float
    intercept: float
    r2: float | None = None
    source: str | None = None

    def predict(self, loss):
        return np.clip(self.intercept + self.slope * np.asarray(loss, dtype=float), 0.0, 1.0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AccuracyRegression":
        return cls(**{k: d.get(k) for k in ("slope", "intercept", "r2", "source")})


# App. F.2.2: regression of accuracy on loss over DG runs at each run's minimum loss, R² = 0.98.
PAPER_ACCURACY = AccuracyRegression(slope=-0.7496, intercept=1.2575, r2=0.98, source="DG")
# Regressions a law may borrow when asked by name (`accuracy_map`): measured on other runs than its own.
ACCURACY_MAPS = {"paper-dg": PAPER_ACCURACY}


def fit_accuracy(obs: pd.DataFrame, source: str | None = None) -> AccuracyRegression:
    """Regress accuracy on loss at each run's minimum-loss observation, as App. F.2.2 does.

    Parameters: obs (validated observations with an `accuracy` column), source (restrict to one
    source, as the paper restricts to DG; None = all sources).
    Returns: AccuracyRegression. Raises RobustscaleError without an accuracy column or < 2 runs.
    """
    if "accuracy" not in obs.columns or obs["accuracy"].isna().all():
        raise RobustscaleError("observations: no 'accuracy' column to fit loss -> accuracy")
    rows = obs.dropna(subset=["accuracy"])
    if source is not None:
        rows = rows[rows["source"] == source]
    best = rows.loc[rows.groupby("run")["loss"].idxmin()]
    if len(best) < 2 or best["loss"].nunique() < 2:
        raise RobustscaleError("observations: need at least 2 runs with accuracy to fit loss -> accuracy")
    x, y = best["loss"].to_numpy(), best["accuracy"].to_numpy()
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (intercept + slope * x)
    total = ((y - y.mean()) ** 2).sum()
    r2 = float(1 - (resid**2).sum() / total) if total > 0 else None
    return AccuracyRegression(float(slope), float(intercept), r2, source)
