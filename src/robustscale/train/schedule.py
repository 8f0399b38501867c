"""Learning rate and SGD momentum: one-cycle cosine (Smith & Topin, 2019), stepped per epoch, pure functions.

Pure functions keep resume exact: the schedule's whole state is the step number.
The reference's "cosinew" schedule (bbartoldson/Adversarial-Robustness-Limits, `watrain.py`,
`init_scheduler`) is torch's OneCycleLR(pct_start=0.025, total_steps=epochs) stepped at the end of
each epoch, so every update of an epoch shares one learning rate. `one_cycle_lr` is OneCycleLR's
formula (anneal_strategy="cos", two phases): cosine rise from peak/25 to the peak over
`warmup_fraction` of the schedule, then cosine decay to peak/(25 * 1e4). The reference keeps
OneCycleLR's default `cycle_momentum=True`, so its SGD momentum (0.9 as constructed) is overwritten
by the same schedule run backwards: 0.95 at the start, 0.85 at the peak learning rate, 0.95 at the end
(`one_cycle_momentum`).
"""

from __future__ import annotations

import math

DIV_FACTOR = 25.0  # initial lr = peak / 25 (OneCycleLR default, the reference's)
FINAL_DIV_FACTOR = 1e4  # final lr = initial / 1e4 (OneCycleLR default, the reference's)
BASE_MOMENTUM = 0.85  # momentum at the peak learning rate (OneCycleLR default base_momentum, the reference's)
MAX_MOMENTUM = 0.95  # momentum at the start and the end (OneCycleLR default max_momentum, the reference's)


def _cos(start: float, end: float, frac: float) -> float:
    return end + (start - end) / 2 * (1 + math.cos(math.pi * frac))


def _phase(step: int, total_steps: int, warmup_fraction: float) -> tuple[bool, float]:
    """(in the warm-up?, share of that phase done) after `step` scheduler steps, as OneCycleLR splits them."""
    rise_end = warmup_fraction * total_steps - 1  # OneCycleLR's phase boundaries, as floats
    if step <= rise_end:  # rise_end == 0 (one warm-up step) would divide 0 by 0 in torch: start of the phase
        return True, step / rise_end if rise_end > 0 else 0.0
    return False, (step - rise_end) / (total_steps - 1 - rise_end)


def one_cycle_lr(step: int, total_steps: int, peak: float, warmup_fraction: float = 0.025) -> float:
    """torch's OneCycleLR learning rate after `step` scheduler steps (0-based) of `total_steps`."""
    initial = peak / DIV_FACTOR
    warmup, frac = _phase(step, total_steps, warmup_fraction)
    return _cos(initial, peak, frac) if warmup else _cos(peak, initial / FINAL_DIV_FACTOR, frac)


def one_cycle_momentum(step: int, total_steps: int, warmup_fraction: float = 0.025) -> float:
    """torch's OneCycleLR momentum (cycle_momentum=True, its defaults) after `step` scheduler steps."""
    warmup, frac = _phase(step, total_steps, warmup_fraction)
    return _cos(MAX_MOMENTUM, BASE_MOMENTUM, frac) if warmup else _cos(BASE_MOMENTUM, MAX_MOMENTUM, frac)


def learning_rate(step: int, total_steps: int, steps_per_epoch: int, peak: float,
                  warmup_fraction: float = 0.025) -> float:
    """Learning rate of update `step` (0-based) of `total_steps`: the one-cycle schedule over epochs of
    `steps_per_epoch` updates, constant within an epoch (the reference steps its scheduler per epoch)."""
    epochs = math.ceil(total_steps / steps_per_epoch)
    return one_cycle_lr(step // steps_per_epoch, epochs, peak, warmup_fraction)


def sgd_momentum(step: int, total_steps: int, steps_per_epoch: int, warmup_fraction: float = 0.025) -> float:
    """Momentum of update `step` (0-based) of `total_steps`: the cycled schedule, per epoch like the lr."""
    epochs = math.ceil(total_steps / steps_per_epoch)
    return one_cycle_momentum(step // steps_per_epoch, epochs, warmup_fraction)
