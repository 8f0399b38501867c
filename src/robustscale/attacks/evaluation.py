"""The one robust evaluation of robustscale: PGD-40 on the CW loss, and the paper's loss on its examples.

Training's held-out scores (whose losses the scaling laws are fitted to) and `robustscale evaluate`
both call `robust_evaluation`, so the two measure the same quantity with the same settings, those
of the reference's `Linf_PGD_40` (bbartoldson/Adversarial-Robustness-Limits,
`gowal21uncovering/utils/watrain.py`): the model in eval mode and fp32, 40 steps of eps / 4 (2/255
at 8/255) from one uniform random start in the eps ball, and per image the TRADES loss with beta = 5
and no label smoothing, CE(f(x), y) + 5 KL(p(x) || p(x_adv)). Under L2 (`norm="l2"`, the reference's
`l2-pgd`) the same: forty normalised-gradient steps of eps / 4 from the reference's L2 random start.
"""

from __future__ import annotations

from typing import Callable

import torch

from robustscale.attacks.pgd import cw_loss, pgd_attack
from robustscale.attacks.trades import BETA, trades_objective

EVAL_STEPS = 40  # §3.1: accuracies and losses of the scaling laws use PGD-40 on the CW loss
EVAL_RESTARTS = 1  # the reference's LinfPGDAttack: a single random start
EVAL_BATCH = 256  # images per attack batch (the attack is per image: batching changes no result)
EVAL_SEED = 0  # the attack's random starts: same seed, same images -> same numbers everywhere


def eval_step_size(eps: float) -> float:
    """The attack step: eps / 4, the reference's 2/255 at its 8/255 (and training's step, §3.1). The same
    rule under L2 (32/255 at 128/255): the reference's L2 evaluation steps by its --attack-step flag,
    whose L2 value the repositories do not publish, and forty steps of eps / 4 reach any point of the ball."""
    return eps / 4


def robust_evaluation(model, x: torch.Tensor, y: torch.Tensor, *, eps: float, steps: int = EVAL_STEPS,
                      step_size: float | None = None, restarts: int = EVAL_RESTARTS,
                      batch_size: int = EVAL_BATCH, seed: int = EVAL_SEED, norm: str = "linf",
                      on_batch: Callable[[int], None] | None = None) -> dict[str, torch.Tensor]:
    """PGD-CW attack in the `norm` ball ("linf" or "l2") of `model` on images `x` in [0, 1] with labels `y`;
    per-image results on the CPU.

    Returns {"clean_pred", "adversarial" (float images), "adv_pred", "loss" (TRADES, beta 5)}. With
    restarts > 1 each image keeps the restart with the highest CW loss. The random starts come from
    one generator seeded with `seed` and drawn batch after batch, so a result depends only on (model,
    x, y, seed, settings). `on_batch(n)` is called after each batch of n images.
    """
    step_size = eval_step_size(eps) if step_size is None else step_size
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    out: dict[str, list[torch.Tensor]] = {"clean_pred": [], "adversarial": [], "adv_pred": [], "loss": []}
    try:
        # fp32 whatever the caller's autocast: the measured numbers must not depend on the training precision
        with torch.autocast(device.type, enabled=False):
            for i in range(0, len(x), batch_size):
                xb, yb = x[i:i + batch_size].to(device).float(), y[i:i + batch_size].to(device)
                with torch.no_grad():
                    clean = model(xb)
                best = best_cw = best_logits = None
                for _ in range(restarts):
                    xa = pgd_attack(model, xb, yb, eps=eps, step_size=step_size, steps=steps, loss="cw",
                                    random_start="uniform", norm=norm, generator=generator)
                    with torch.no_grad():
                        logits = model(xa)
                    cw = cw_loss(logits, yb)
                    if best is None:
                        best, best_cw, best_logits = xa, cw, logits
                    else:
                        better = cw > best_cw
                        best = torch.where(better[:, None, None, None], xa, best)
                        best_logits = torch.where(better[:, None], logits, best_logits)
                        best_cw = torch.maximum(cw, best_cw)
                out["clean_pred"].append(clean.argmax(1).cpu())
                out["adversarial"].append(best.cpu())
                out["adv_pred"].append(best_logits.argmax(1).cpu())
                out["loss"].append(trades_objective(clean, best_logits, yb, beta=BETA,
                                                    reduction="none").cpu())
                if on_batch is not None:
                    on_batch(len(yb))
    finally:
        model.train(was_training)
    return {k: torch.cat(v) for k, v in out.items()}


def robust_accuracy(model, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                    **settings) -> tuple[float, float]:
    """(clean accuracy, PGD-CW robust accuracy) of `model` on (x, y) under `robust_evaluation`."""
    r = robust_evaluation(model, x, y, eps=eps, **settings)
    y = y.cpu()
    return (r["clean_pred"] == y).float().mean().item(), (r["adv_pred"] == y).float().mean().item()
