"""PGD in the L-inf or L2 ball, with a random start, on any per-sample loss: CW margin (the paper's),
cross-entropy, TRADES KL.

`pgd_attack` does not change the model's mode: callers put the model in eval mode for evaluation
(`attacks.evaluation.robust_evaluation` does) and choose for themselves during training.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from robustscale.errors import RobustscaleError


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


NORMS = ("linf", "l2")


def _l2(t: torch.Tensor) -> torch.Tensor:
    """Per-image L2 norms of a batch, shaped (N, 1, 1, 1) to broadcast over images."""
    return torch.linalg.vector_norm(t.flatten(1), dim=1).view(-1, *([1] * (t.dim() - 1)))


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str = "linf") -> torch.Tensor:
    """x_adv moved into the eps ball around x (L-inf: clipped per pixel; L2: the perturbation scaled
    down to length eps where longer), then into the [0, 1] image box.

    For L2 the box comes second, as torchattacks' PGDL2 does it: clip(x + s * delta) is the form of the
    exact projection onto ball and box together (the reference's `perturb_iterative` clips to the box
    first and scales after, which can leave a pixel outside the box no longer touching it).
    """
    if norm == "linf":
        return torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    delta = x_adv - x
    length = _l2(delta)
    delta = delta * torch.where(length > eps, eps / length, torch.ones_like(length))
    return (x + delta).clamp(0, 1)


def ascent_step(x_adv: torch.Tensor, grad: torch.Tensor, step_size: float, norm: str = "linf"
                ) -> torch.Tensor:
    """One steepest-ascent step of length step_size in the norm: the gradient's sign for L-inf, the
    gradient scaled to unit L2 length for L2 (a zero gradient does not move the image)."""
    if norm == "linf":
        return x_adv + step_size * grad.sign()
    return x_adv + step_size * grad / _l2(grad).clamp_min(1e-12)


def start_point(x: torch.Tensor, eps: float, norm: str = "linf", kind: str | None = "uniform",
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Where PGD starts, inside the image box.

    "uniform", as the reference draws it (DM-Improves-AT / bbartoldson `core/attacks/utils.py`,
    `rand_init_delta`): L-inf, uniform in the eps cube; L2, a uniform random image of the box, its
    difference to x shortened to length eps where longer. "normal": x + 0.001 N(0, 1) (the original
    TRADES code's, and the reference's TRADES L2 start). None: x itself.
    """
    if kind == "uniform" and norm == "linf":
        # uniform_(-eps, eps), as the reference draws it: the same generator state gives the same start
        return (x + torch.empty_like(x).uniform_(-eps, eps, generator=generator)).clamp(0, 1)
    if kind == "uniform":
        return project(torch.empty_like(x).uniform_(0, 1, generator=generator), x, eps, "l2")
    if kind == "normal":
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return (x + 0.001 * noise).clamp(0, 1)
    return x.clone()


def pgd_attack(model, x: torch.Tensor, y: torch.Tensor, *, eps: float, step_size: float, steps: int,
               loss: str | Callable = "cw", random_start: str | None = "uniform", norm: str = "linf",
               generator: torch.Generator | None = None, autocast_dtype: torch.dtype | None = None
               ) -> torch.Tensor:
    """Maximise `loss(model(x_adv), y)` over the `norm` ball ("linf" or "l2") of radius eps around x,
    within [0, 1].

    random_start: "uniform", "normal" or None (see `start_point`). For loss="kl", `y` is the clean
    softmax probabilities. Returns detached adversarial images.
    """
    if norm not in NORMS:
        raise RobustscaleError(f"norm: expected one of {', '.join(NORMS)}, got {norm!r}")
    loss_fn = LOSSES[loss] if isinstance(loss, str) else loss
    x = x.detach()
    x_adv = start_point(x, eps, norm, random_start, generator)
    autocast = torch.autocast(x.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        with autocast:
            logits = model(x_adv)
        grad, = torch.autograd.grad(loss_fn(logits.float(), y).sum(), x_adv)
        x_adv = project(ascent_step(x_adv.detach(), grad, step_size, norm), x, eps, norm)
    return x_adv.detach()
