"""Exponential moving average of weights (§3.1: tau = 0.995), updated with foreach kernels.

Parameters are averaged with one `torch._foreach_lerp_` call (no python loop over tensors);
buffers (BatchNorm running statistics) are copied, as the averaged model uses the live statistics.
"""

from __future__ import annotations

import copy

import torch


class EMA:
    def __init__(self, model: torch.nn.Module, decay: float = 0.995, warmup: bool = True):
        self.decay, self.warmup = decay, warmup
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self._ema_params = list(self.model.parameters())
        self._ema_buffers = list(self.model.buffers())

    def decay_at(self, step: int) -> float:
        """Warm-up (1 + t) / (10 + t) caps the decay early on, so the average forgets the random init."""
        return min(self.decay, (1 + step) / (10 + step)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        weight = 1.0 - self.decay_at(step)
        torch._foreach_lerp_(self._ema_params, [p.detach() for p in model.parameters()], weight)
        torch._foreach_copy_(self._ema_buffers, list(model.buffers()))

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)
