"""The learning rate: one-cycle cosine (Smith & Topin, 2019), stepped once per epoch, as a pure function.

A pure function keeps resume exact: the schedule's whole state is the step number.
The reference's "cosinew" schedule (bbartoldson/Adversarial-Robustness-Limits, `watrain.py`,
`init_scheduler`) is torch's OneCycleLR(pct_start=0.025, total_steps=epochs) stepped at the end of
each epoch, so every update of an epoch shares one learning rate. `one_cycle_lr` is OneCycleLR's
formula (anneal_strategy="cos", two phases): cosine rise from peak/25 to the peak over
`warmup_fraction` of the schedule, then cosine decay to peak/(25 * 1e4).
"""

from __future__ import annotations

import math

DIV_FACTOR = 25.0  # initial lr = peak / 25 (OneCycleLR default, the reference's)
FINAL_DIV_FACTOR = 1e4  # final lr = initial / 1e4 (OneCycleLR default, the reference's)


def _cos(start: float, end: float, frac: float) -> float:
    return end + (start - end) / 2 * (1 + math.cos(math.pi * frac))


def one_cycle_lr(step: int, total_steps: int, peak: float, warmup_fraction: float = 0.025) -> float:
    """torch's OneCycleLR learning rate after `step` scheduler steps (0-based) of `total_steps`."""
    initial = peak / DIV_FACTOR
    final = initial / FINAL_DIV_FACTOR
    rise_end = warmup_fraction * total_steps - 1  # OneCycleLR's phase boundaries, as floats
    if step <= rise_end:  # rise_end == 0 (one warm-up step) would divide 0 by 0 in torch: start low
        return _cos(initial, peak, step / rise_end if rise_end > 0 else 0.0)
    return _cos(peak, final, (step - rise_end) / (total_steps - 1 - rise_end))


def learning_rate(step: int, total_steps: int, steps_per_epoch: int, peak: float,
                  warmup_fraction: float = 0.025) -> float:
    """Learning rate of update `step` (0-based) of `total_steps`: the one-cycle schedule over epochs of
    `steps_per_epoch` updates, constant within an epoch (the reference steps its scheduler per epoch)."""
    epochs = math.ceil(total_steps / steps_per_epoch)
    return one_cycle_lr(step // steps_per_epoch, epochs, peak, warmup_fraction)
