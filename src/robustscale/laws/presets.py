"""The paper's fitted laws as presets, and law.json loading/saving.

The appendix prints parameters to two digits, but Table 3 was computed from the unrounded fits:
e.g. App. F.2.1's α = 0.24, β = 0.23 give a = β/(α+β) = 0.49, while Table 3 prints 0.48. Each
preset therefore holds values that round to the printed parameters AND reproduce Table 3's
a, b, L* (at 1e25 FLOPs) and E' columns to the printed digits (tests/laws/test_presets.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from robustscale.errors import RobustscaleError
from robustscale.fileio import write_json
from robustscale.laws.accuracy import PAPER_ACCURACY

# Table 1: the synthetic data generators and their FIDs.
TABLE1_SOURCES = {"EDM-5": 35.54, "EDM-6": 14.26, "EDM-7": 6.79, "EDM-10": 2.48, "EDM-20": 1.82, "PFGM++": 1.76, "DG": 1.65}

PRESETS: dict[str, dict] = {
    # App. F.2.1: A = 6.69, B = 9.89, E = 0.48, α = 0.24, β = 0.23, ε = 0.16, ζ = −0.28;
    # α = 0.243, β = 0.227 give Table 3's a = 0.48, b = 0.52.
    "paper-approach2": {
        "approach": 2,
        "params": {"A": 6.69, "B": 9.89, "E": 0.48, "alpha": 0.243, "beta": 0.227, "epsilon": 0.16, "zeta": -0.28},
        "objective": None, "n_obs": None,
        "settings": {"huber_delta": 1e-3, "exclude_small_runs": True, "base_source": "DG", "quality_sources": ["EDM-7", "EDM-10", "EDM-20"]},
        "sources": TABLE1_SOURCES, "base_source": "DG",
        "accuracy": PAPER_ACCURACY.to_dict(),
    },
    # App. F.3.1: A = 6.0, B = 7000.0, E = 0.52, Q = 0.007, α = 0.24, β = 0.22, κ = 0.6, ε = 0.04,
    # and B^β = 6.85 (which pins β = 0.2173); Table 3 (E' = 0.55 at FID 1.76, a = 0.47 at FID 0)
    # pins the rest within their rounding intervals.
    "paper-approach3": {
        "approach": 3,
        "params": {"A": 6.0, "B": 7000.0, "E": 0.516, "Q": 0.007, "alpha": 0.2449, "beta": 0.2173, "kappa": 0.62, "epsilon": 0.036},
        "objective": None, "n_obs": None,
        "settings": {"huber_delta": 1e-3, "exclude_small_runs": True},
        "sources": TABLE1_SOURCES,
        "accuracy": PAPER_ACCURACY.to_dict(),
    },
}


def _classes():
    from robustscale.laws.approach1 import Approach1
    from robustscale.laws.approach2 import Approach2
    from robustscale.laws.approach3 import Approach3

    return {1: Approach1, 2: Approach2, 3: Approach3}


def law_from_dict(d: dict, name: str = "law"):
    """A fitted estimator from a law.json dict."""
    cls = _classes().get(d.get("approach")) if isinstance(d, dict) else None
    if cls is None or "params" not in d:
        raise RobustscaleError(f"{name}: not a law (expected 'approach' 1, 2 or 3 and 'params')")
    try:
        return cls.from_dict(d)
    except (KeyError, TypeError, ValueError) as e:
        raise RobustscaleError(f"{name}: malformed law ({e})") from None


def load_law(name_or_path: str | os.PathLike):
    """A fitted law by preset name ('paper-approach2', 'paper-approach3') or law.json path."""
    key = str(name_or_path)
    if key in PRESETS:
        return law_from_dict(json.loads(json.dumps(PRESETS[key])), key)
    path = Path(key)
    if not path.is_file():
        raise RobustscaleError(f"{key}: no such law file or preset (presets: {', '.join(PRESETS)})")
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RobustscaleError(f"{key}: not valid JSON ({e})") from None
    return law_from_dict(d, key)


def save_law(est, path: str | os.PathLike) -> dict:
    """Write a fitted estimator's law.json atomically; returns the dict written."""
    d = est.to_dict()
    write_json(path, d)
    return d
