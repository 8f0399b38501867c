"""Exponential moving average of weights (§3.1: tau = 0.995), as the reference's `ema_update`.

The reference (bbartoldson/Adversarial-Robustness-Limits, `gowal21uncovering/utils/watrain.py`)
keeps the average equal to the model for the first 2.5% of the updates (`warmup_steps`), then
averages with decay min(tau, (1 + t) / (10 + t)), t counting updates from there. Parameters are
averaged with one `torch._foreach_lerp_` call (no python loop over tensors).

BatchNorm statistics are not averaged: the averaged model uses the live model's. The reference
copies them once per epoch (`update_bn`), but by assigning the tensors themselves, so from the
first copy on its averaged model shares the live statistics; the statistics of the average are only
ever read when it is evaluated or saved, so `copy_bn_stats` before those uses is the same model.
"""

from __future__ import annotations

import copy

import torch


class EMA:
    def __init__(self, model: torch.nn.Module, decay: float = 0.995, start_step: float = 0.0):
        self.decay, self.start_step = decay, start_step
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self._ema_params = list(self.model.parameters())
        self._ema_buffers = list(self.model.buffers())

    def decay_at(self, step: int) -> float:
        """Decay of the update after optimiser step `step` (0-based): 0 (a copy) before `start_step`."""
        t = step + 1  # the reference counts updates done, from 1
        if t < self.start_step:
            return 0.0
        delta = t - self.start_step
        return min(self.decay, (1 + delta) / (10 + delta))

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        # lerp with weight 1 returns the model's values exactly: a copy during the start phase
        weight = 1.0 - self.decay_at(step)
        torch._foreach_lerp_(self._ema_params, [p.detach() for p in model.parameters()], weight)

    @torch.no_grad()
    def copy_bn_stats(self, model: torch.nn.Module) -> None:
        """Take the live model's buffers (BatchNorm running statistics): call before using the average."""
        torch._foreach_copy_(self._ema_buffers, list(model.buffers()))

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)
