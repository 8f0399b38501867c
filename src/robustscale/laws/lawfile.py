"""Law files: a fitted estimator to law.json and back, by preset name or path. The one map from
an approach number to its estimator class lives here."""

from __future__ import annotations

import os

from robustscale.errors import RobustscaleError
from robustscale.fileio import write_json
from robustscale.laws.approach1 import Approach1
from robustscale.laws.approach2 import Approach2
from robustscale.laws.approach3 import Approach3
from robustscale.laws.presets import read_law

ESTIMATORS = {1: Approach1, 2: Approach2, 3: Approach3}


def law_from_dict(d: dict, name: str = "law"):
    """A fitted estimator from a law.json dict."""
    cls = ESTIMATORS.get(d.get("approach")) if isinstance(d, dict) else None
    if cls is None or "params" not in d:
        raise RobustscaleError(f"{name}: not a law (expected 'approach' 1, 2 or 3 and 'params')")
    try:
        return cls.from_dict(d)
    except (KeyError, TypeError, ValueError) as e:
        raise RobustscaleError(f"{name}: malformed law ({e})") from None


def load_law(name_or_path: str | os.PathLike):
    """A fitted law by preset name ('paper-approach1', '-2', '-3') or law.json path (with its
    diagnostics, identified, anchored and bootstrap samples)."""
    return law_from_dict(read_law(name_or_path), str(name_or_path))


def save_law(est, path: str | os.PathLike, *, make_parents: bool = True) -> dict:
    """Write a fitted estimator's law.json atomically (non-finite numbers as null); returns the dict."""
    d = est.to_dict()
    write_json(path, d, make_parents=make_parents)
    return d
