"""L-inf PGD with random start on any per-sample loss: CW margin (the paper's), cross-entropy, TRADES KL.

`pgd_attack` does not change the model's mode: callers put the model in eval mode for evaluation
(`attacks.evaluation.robust_evaluation` does) and choose for themselves during training.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def cw_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample CW margin loss of the paper: -clamp(z_y - max_{j != y} z_j, min=0)."""
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    z_other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(1)
    return -(z_y - z_other).clamp(min=0)


def ce_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, y, reduction="none")


def kl_loss(logits: torch.Tensor, clean_probs: torch.Tensor) -> torch.Tensor:
    """Per-sample KL(p_clean || p_adv): the TRADES attack's objective (here `y` is p_clean)."""
    return (clean_probs * (clean_probs.clamp_min(1e-12).log() - F.log_softmax(logits, 1))).sum(1)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cw": cw_loss, "ce": ce_loss, "kl": kl_loss,
}


def pgd_attack(model, x: torch.Tensor, y: torch.Tensor, *, eps: float, step_size: float, steps: int,
               loss: str | Callable = "cw", random_start: str | None = "uniform",
               generator: torch.Generator | None = None, autocast_dtype: torch.dtype | None = None
               ) -> torch.Tensor:
    """Maximise `loss(model(x_adv), y)` over the L-inf ball of radius eps around x, within [0, 1].

    random_start: "uniform" (in the eps ball: the reference's TRADES start and its PGD evaluation's),
    "normal" (0.001 * N(0, 1), the original TRADES code's) or None. For loss="kl", `y` is the clean
    softmax probabilities. Returns detached adversarial images.
    """
    loss_fn = LOSSES[loss] if isinstance(loss, str) else loss
    x = x.detach()
    if random_start == "uniform":
        # uniform_(-eps, eps), as the reference draws it: the same generator state gives the same start
        delta = torch.empty_like(x).uniform_(-eps, eps, generator=generator)
    elif random_start == "normal":
        delta = 0.001 * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    else:
        delta = torch.zeros_like(x)
    x_adv = (x + delta).clamp(0, 1)
    autocast = torch.autocast(x.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        with autocast:
            logits = model(x_adv)
        grad, = torch.autograd.grad(loss_fn(logits.float(), y).sum(), x_adv)
        x_adv = x_adv.detach() + step_size * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    return x_adv.detach()
