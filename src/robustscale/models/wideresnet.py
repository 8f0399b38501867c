"""WideResNet of the paper (Table 2): pre-activation blocks, SiLU, input normalisation inside.

The model takes images in [0, 1] and normalises them itself, so attacks and the human study
work in pixel space. Layout follows Zagoruyko & Komodakis (2016) as used by DeepMind's robust
training code: a 3x3 stem of 16 channels, three groups of (depth - 4) / 6 pre-activation blocks
with widths 16k, 32k, 64k and strides 1, 2, 2, then BN-SiLU, global average pool and a linear head.
"""

from __future__ import annotations

import dataclasses
import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclasses.dataclass
class WRNConfig:
    depth: int = 28
    width: int = 10
    num_classes: int = 10
    in_channels: int = 3
    image_size: int = 32
    # CIFAR-10 statistics by default; the registry swaps in the dataset's own.
    mean: tuple[float, ...] = (0.4914, 0.4822, 0.4465)
    std: tuple[float, ...] = (0.2471, 0.2435, 0.2616)

    def __post_init__(self):
        if self.depth < 10 or (self.depth - 4) % 6:
            raise ValueError(f"WideResNet depth must be 6n+4 with n >= 1, got {self.depth}")
        if self.width < 1:
            raise ValueError(f"WideResNet width must be >= 1, got {self.width}")
        self.mean, self.std = tuple(self.mean), tuple(self.std)
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise ValueError(f"mean/std need {self.in_channels} values (one per input channel)")

    @property
    def name(self) -> str:
        return f"wrn-{self.depth}-{self.width}"


class Block(nn.Module):
    """Pre-activation residual block: BN-SiLU-conv3x3-BN-SiLU-conv3x3 (+ 1x1 shortcut on shape change)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False)

    def forward(self, x):
        o = F.silu(self.bn1(x))
        # the shortcut sees the pre-activated input, as in pre-activation ResNets
        skip = x if self.shortcut is None else self.shortcut(o)
        o = self.conv1(o)
        o = self.conv2(F.silu(self.bn2(o)))
        return o + skip


class Group(nn.Sequential):
    def __init__(self, n_blocks: int, c_in: int, c_out: int, stride: int):
        super().__init__(*[Block(c_in if i == 0 else c_out, c_out, stride if i == 0 else 1)
                           for i in range(n_blocks)])


class WideResNet(nn.Module):
    def __init__(self, config: WRNConfig):
        super().__init__()
        self.config = config
        n = (config.depth - 4) // 6
        widths = [16, 16 * config.width, 32 * config.width, 64 * config.width]
        self.register_buffer("mean", torch.tensor(config.mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.std).view(1, -1, 1, 1), persistent=False)
        self.stem = nn.Conv2d(config.in_channels, widths[0], 3, 1, 1, bias=False)
        self.groups = nn.Sequential(
            Group(n, widths[0], widths[1], 1),
            Group(n, widths[1], widths[2], 2),
            Group(n, widths[2], widths[3], 2),
        )
        self.bn = nn.BatchNorm2d(widths[3])
        self.head = nn.Linear(widths[3], config.num_classes)
        self._init_weights()

    def _init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x):
        """x: images in [0, 1], shape (B, C, H, W). Returns logits (B, num_classes)."""
        x = (x - self.mean) / self.std
        x = self.groups(self.stem(x))
        x = F.silu(self.bn(x))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.head(x)

    def get_num_params(self) -> int:
        """N of the scaling laws: every trainable parameter (Table 2 counts)."""
        return sum(p.numel() for p in self.parameters())

    def input_shape(self) -> tuple[int, int, int]:
        c = self.config
        return (c.in_channels, c.image_size, c.image_size)
