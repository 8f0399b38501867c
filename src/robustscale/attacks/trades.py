"""The TRADES loss (Zhang et al., 2019), shared by training and by evaluation's reported loss.

loss = CE(f(x), y; label smoothing) + beta * KL(softmax f(x) || softmax f(x_adv)), batch mean.
The paper's reported loss is this with beta = 5 and no smoothing, x_adv from PGD-40 on the CW loss.
Training's x_adv comes from PGD on the KL itself in the L-inf or L2 ball (the reference's `linf-pgd` and
`l2-pgd`), started uniformly in the eps ball (L-inf) or at 0.001 N(0, 1) (L2), with BatchNorm in
train mode but its running statistics frozen: the reference's `trades_loss`
(bbartoldson/Adversarial-Robustness-Limits, `gowal21uncovering/utils/trades.py`).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from robustscale.attacks.pgd import pgd_attack

BETA = 5.0  # App. B / §3.1: TRADES beta of the paper's runs and of its reported loss


@contextlib.contextmanager
def frozen_bn_stats(model: torch.nn.Module):
    """Train-mode BatchNorm (batch statistics) that leaves the running statistics untouched
    (the reference's `track_bn_stats(model, False)` around its attack)."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in bns:
            m.track_running_stats = True


@contextlib.contextmanager
def frozen_weights(model: torch.nn.Module):
    """Parameters that need no gradient: the attack differentiates with respect to its input only.

    Eager autograd would skip weight gradients anyway (`autograd.grad` on the input alone), but a
    compiled model's backward graph is built from `requires_grad`: with the weights still
    requiring gradients every compiled PGD step also computes and discards them.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


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
                  steps: int, start: str = "uniform", norm: str = "linf",
                  generator: torch.Generator | None = None, autocast_dtype: torch.dtype | None = None
                  ) -> torch.Tensor:
    """TRADES' inner maximisation: PGD in the `norm` ball on KL(p_clean || p_adv), started as `start` says
    (pgd_attack's random_start; the reference's is "uniform" for L-inf, "normal" for L2)."""
    clean_probs = F.softmax(clean_logits.detach().float(), 1)
    return pgd_attack(model, x, clean_probs, eps=eps, step_size=step_size, steps=steps, loss="kl",
                      random_start=start, norm=norm, generator=generator, autocast_dtype=autocast_dtype)


def trades_loss(model, x: torch.Tensor, y: torch.Tensor, *, eps: float, step_size: float, steps: int,
                beta: float = BETA, label_smoothing: float = 0.0, start: str = "uniform", norm: str = "linf",
                generator: torch.Generator | None = None,
                autocast_dtype: torch.dtype | None = None, attack_model=None) -> torch.Tensor:
    """One training step's TRADES loss (scalar, with its graph) of `model` in train mode on (x, y).

    Differs from the reference in one deliberate way: the clean forward that gives the attack its
    target is kept (with its graph, running statistics updated) and reused in the loss, where the
    reference recomputes it: 26 forward-equivalents per sample instead of App. B's 27, the same loss
    and the same running-statistics updates (clean then adversarial batch). `attack_model` (default
    `model`) runs the attack, e.g. the unwrapped (or compiled) module of a DDP `model`; its running
    statistics and weights are frozen meanwhile.
    """
    attack_model = model if attack_model is None else attack_model
    autocast = torch.autocast(x.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None)
    with autocast:
        clean = model(x)
    with frozen_bn_stats(attack_model), frozen_weights(attack_model):
        x_adv = trades_attack(attack_model, x, clean, eps=eps, step_size=step_size, steps=steps, start=start,
                              norm=norm, generator=generator, autocast_dtype=autocast_dtype)
    with autocast:
        adv = model(x_adv)
    return trades_objective(clean, adv, y, beta=beta, label_smoothing=label_smoothing)
