"""The TRADES loss (Zhang et al., 2019), shared by training and by evaluation's reported loss.

loss = CE(f(x), y; label smoothing) + beta * KL(softmax f(x) || softmax f(x_adv)), batch mean.
The paper's reported loss is this with beta = 5 and no smoothing, x_adv from PGD-40 on the CW loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from robustscale.attacks.pgd import pgd_attack

BETA = 5.0  # App. B / §3.1: TRADES beta of the paper's runs and of its reported loss


def trades_objective(clean_logits: torch.Tensor, adv_logits: torch.Tensor, y: torch.Tensor, *,
                     beta: float = BETA, label_smoothing: float = 0.0, reduction: str = "mean"
                     ) -> torch.Tensor:
    """TRADES loss from precomputed clean and adversarial logits (so a clean pass is reused).

    reduction "mean" gives the scalar batch mean; "none" the per-image losses (evaluation stores them).
    """
    clean_logits, adv_logits = clean_logits.float(), adv_logits.float()
    natural = F.cross_entropy(clean_logits, y, label_smoothing=label_smoothing, reduction="none")
    robust = F.kl_div(F.log_softmax(adv_logits, 1), F.log_softmax(clean_logits, 1),
                      reduction="none", log_target=True).sum(1)
    per_image = natural + beta * robust
    return per_image if reduction == "none" else per_image.mean()


def trades_attack(model, x: torch.Tensor, clean_logits: torch.Tensor, *, eps: float, step_size: float,
                  steps: int, generator: torch.Generator | None = None,
                  autocast_dtype: torch.dtype | None = None) -> torch.Tensor:
    """TRADES' inner maximisation: PGD on KL(p_clean || p_adv), started at x + 0.001 N(0, 1)."""
    clean_probs = F.softmax(clean_logits.detach().float(), 1)
    return pgd_attack(model, x, clean_probs, eps=eps, step_size=step_size, steps=steps, loss="kl",
                      random_start="normal", generator=generator, autocast_dtype=autocast_dtype)
