"""Batch augmentation on tensors, on the device (airbench style): random crop with padding, flip.

The random choices (offsets, flips) are drawn on the CPU from a `torch.Generator` the caller seeds,
a few bytes per image, so results are identical on every device and reproducible from the seed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PAD = 4  # App. B / Wang et al. (2023): random crop of the 4-pixel zero-padded image


def random_crop_flip(x: torch.Tensor, pad: int = PAD, flip: bool = True,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Translate each image of x (B, C, H, W) by up to `pad` pixels (zero fill) and flip half of them."""
    b, c, h, w = x.shape
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device, non_blocking=True)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device, non_blocking=True)
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (B, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (B, 1, 1, W)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    out = padded[batch, chan, rows, cols]
    if flip:
        flips = (torch.rand(b, generator=generator) < 0.5).to(x.device, non_blocking=True)
        out = torch.where(flips[:, None, None, None], out.flip(3), out)
    return out
