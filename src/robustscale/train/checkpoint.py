"""Full training state on disk, written atomically (temp file + rename): a kill never leaves half a file.

The state holds model, EMA, optimiser, step (the schedule's and the sampler's whole state), the
sampler's consistency record and every RNG (python, numpy, torch CPU and CUDA).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robustscale.errors import RobustscaleError
from robustscale.fileio import atomic_path


def rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    try:
        # our own file; it holds python/numpy RNG tuples, which the weights-only loader refuses
        return torch.load(Path(path), map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, ValueError) as e:
        raise RobustscaleError(f"{path}: unreadable checkpoint ({e})") from None
