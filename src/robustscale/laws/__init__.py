"""Scaling laws for adversarial robustness (paper §3, App. F). Torch-free: a CSV of runs is enough.

Estimators (sklearn-style): Approach1 (envelope), Approach2 (Eq 3), Approach3 (Eq 5).
`fit_law` fits one with the identifiability guard, anchoring and bootstrap; `plan_table` gives the
plans (with intervals) at the user's budgets; `load_law` / `save_law` read and write law.json
(`lawfile`).
Plots live in `robustscale.laws.plots` (imported on demand: matplotlib is slow to import).
"""

from robustscale.laws.accuracy import PAPER_ACCURACY, AccuracyRegression, fit_accuracy
from robustscale.laws.approach1 import Approach1
from robustscale.laws.approach2 import Approach2
from robustscale.laws.approach3 import Approach3
from robustscale.laws.bootstrap import bootstrap
from robustscale.laws.fitting import fit_law
from robustscale.laws.lawfile import load_law, save_law
from robustscale.laws.observations import load_observations
from robustscale.laws.planning import intervals, parameter_intervals, plan_table, tradeoff_table
from robustscale.laws.presets import PRESETS
from robustscale.laws.simulate import simulate

__all__ = [
    "Approach1", "Approach2", "Approach3", "AccuracyRegression", "PAPER_ACCURACY", "PRESETS",
    "bootstrap", "fit_accuracy", "fit_law", "intervals", "load_law", "load_observations",
    "parameter_intervals", "plan_table", "save_law", "simulate", "tradeoff_table",
]
