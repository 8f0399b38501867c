"""The one-cycle cosine learning rate (Smith & Topin, 2019), as a pure function of the step.

A pure function keeps resume exact: the schedule's whole state is the step number.
Shape follows torch's OneCycleLR(anneal_strategy="cos"): cosine rise from peak/25 to the peak over
`warmup_fraction` of the steps, then cosine decay to peak/(25 * 1e4).
"""

from __future__ import annotations

import math

DIV_FACTOR = 25.0  # initial lr = peak / 25 (OneCycleLR default)
FINAL_DIV_FACTOR = 1e4  # final lr = initial / 1e4 (OneCycleLR default)


def _cos(start: float, end: float, frac: float) -> float:
    return end + (start - end) / 2 * (1 + math.cos(math.pi * frac))


def one_cycle_lr(step: int, total_steps: int, peak: float, warmup_fraction: float = 0.25) -> float:
    """Learning rate for optimiser step `step` (0-based) of `total_steps`."""
    initial = peak / DIV_FACTOR
    final = initial / FINAL_DIV_FACTOR
    rise = max(1, round(warmup_fraction * total_steps))
    if step < rise:
        return _cos(initial, peak, step / rise)
    fall = max(1, total_steps - 1 - rise)
    return _cos(peak, final, min(1.0, (step - rise) / fall))
