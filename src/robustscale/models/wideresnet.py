"""WideResNet of the paper (Table 2): the DeepMind-style pre-activation WRN with SiLU, input
normalisation inside.

The model takes images in [0, 1] and normalises them itself, so attacks and the human study
work in pixel space. It is the same function, with the same parameter names and shapes, as the
paper's training code (bbartoldson/Adversarial-Robustness-Limits, `core/models/wideresnetwithswish.py`,
itself DeepMind's `model_zoo.py`) and RobustBench's `DMWideResNet`, so the paper's checkpoints load
as they are: a 3x3 stem of 16 channels (`init_conv`), three groups (`layer.G.block.B`) of
(depth - 4) / 6 pre-activation blocks with widths 16k, 32k, 64k and strides 1, 2, 2, then
BN-SiLU (`batchnorm`), global average pool and a linear head (`logits`).

Matching the reference to float rounding needs three details:
- stride-2 convolutions pad like TensorFlow's "SAME": nothing on the top/left, one row/column on
  the bottom/right (symmetric padding shifts every later feature map by one pixel);
- BatchNorm momentum 0.01 (the trainer raises it to 1.0 for the first step, see `set_bn_momentum`);
- the reference pools with a fixed 8x8 window, i.e. globally at 32x32; we pool over the whole map,
  which is the same operation there and also works for 28x28 Fashion-MNIST.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

BN_MOMENTUM = 0.01  # reference: nn.BatchNorm2d(..., momentum=0.01) in every layer (Haiku's decay 0.99)


@dataclasses.dataclass
class WRNConfig:
    depth: int = 28
    width: int = 10
    num_classes: int = 10
    in_channels: int = 3
    image_size: int = 32
    # CIFAR-10 statistics by default (RobustBench's and the reference's); the registry swaps in the
    # dataset's own.
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


# Stride-2 convolutions pad like TF's "SAME" at even sizes, as the reference does: nothing before, one
# row/column after (F.pad order: left, right, top, bottom).
SAME_PAD = (0, 1, 0, 1)


def conv_cost(conv: nn.Conv2d, size: int, extra_pad: int = 0) -> tuple[int, int]:
    """(FLOPs, output side) of `conv` on one square `size`-wide input: 2 per multiply-accumulate, as
    torch's flop counter counts them (bias and padding free); `extra_pad` pixels padded outside it."""
    k, stride = conv.kernel_size[0], conv.stride[0]
    out = (size + 2 * conv.padding[0] + extra_pad - k) // stride + 1
    return 2 * out * out * conv.out_channels * (conv.in_channels // conv.groups) * k * k, out


class Block(nn.Module):
    """Pre-activation residual block: BN-SiLU-conv3x3-BN-SiLU-conv3x3 (+ 1x1 shortcut on a width change)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.stride = stride
        self.batchnorm_0 = nn.BatchNorm2d(c_in, momentum=BN_MOMENTUM)
        # stride 2: SAME padding is added in forward (0 before, 1 after), so the conv itself pads nothing
        self.conv_0 = nn.Conv2d(c_in, c_out, 3, stride, 1 if stride == 1 else 0, bias=False)
        self.batchnorm_1 = nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM)
        self.conv_1 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        # every stride-2 block also changes the width, so this is the reference's `in_planes != out_planes`
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False) if c_in != c_out else None

    def forward(self, x):
        o = F.silu(self.batchnorm_0(x))
        # the shortcut sees the pre-activated input, the identity the raw one (pre-activation ResNets)
        skip = x if self.shortcut is None else self.shortcut(o)
        o = self.conv_0(o if self.stride == 1 else F.pad(o, SAME_PAD))
        o = self.conv_1(F.silu(self.batchnorm_1(o)))
        return o + skip

    def forward_flops(self, size: int) -> tuple[int, int]:
        """(FLOPs, output side) of this block on one `size`-wide input."""
        flops, out = conv_cost(self.conv_0, size, 0 if self.stride == 1 else SAME_PAD[1])
        flops += conv_cost(self.conv_1, out)[0]
        if self.shortcut is not None:
            flops += conv_cost(self.shortcut, size)[0]
        return flops, out


class Group(nn.Module):
    def __init__(self, n_blocks: int, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.block = nn.Sequential(*[Block(c_in if i == 0 else c_out, c_out, stride if i == 0 else 1)
                                     for i in range(n_blocks)])

    def forward(self, x):
        return self.block(x)


class WideResNet(nn.Module):
    def __init__(self, config: WRNConfig):
        super().__init__()
        self.config = config
        n = (config.depth - 4) // 6
        widths = [16, 16 * config.width, 32 * config.width, 64 * config.width]
        # not in the state dict, as in the reference, whose checkpoints carry no normalisation
        self.register_buffer("mean", torch.tensor(config.mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.std).view(1, -1, 1, 1), persistent=False)
        self.init_conv = nn.Conv2d(config.in_channels, widths[0], 3, 1, 1, bias=False)
        self.layer = nn.Sequential(
            Group(n, widths[0], widths[1], 1),
            Group(n, widths[1], widths[2], 2),
            Group(n, widths[2], widths[3], 2),
        )
        self.batchnorm = nn.BatchNorm2d(widths[3], momentum=BN_MOMENTUM)
        self.logits = nn.Linear(widths[3], config.num_classes)
        self._init_weights()

    def _init_weights(self):
        # the reference's init: conv weights N(0, 2 / (k * k * c_out)), BN (1, 0), linear bias 0
        if self.logits.weight.is_meta:  # a shape-only copy (FLOPs, parameter counts): nothing to draw,
            return                      # and random init on meta would import torch's compiler stack
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
        x = self.layer(self.init_conv(x))
        x = F.silu(self.batchnorm(x))
        # a window the size of the map: global pooling at any size, and at 32x32 inputs (8x8 maps) the
        # reference's avg_pool2d(8) itself (adaptive_avg_pool2d rounds differently)
        x = F.avg_pool2d(x, tuple(x.shape[-2:])).flatten(1)
        return self.logits(x)

    def get_num_params(self) -> int:
        """N of the scaling laws: every trainable parameter (Table 2 counts)."""
        return sum(p.numel() for p in self.parameters())

    def forward_flops(self) -> int:
        """FLOPs of one forward pass on one image of `input_shape()`: convolutions and the linear layer
        at 2 per multiply-accumulate (normalisation, activations and pooling are free), computed from
        the layers' shapes, so a meta-device copy answers without running anything."""
        flops, size = conv_cost(self.init_conv, self.config.image_size)
        for block in self.modules():
            if isinstance(block, Block):
                cost, size = block.forward_flops(size)
                flops += cost
        return flops + 2 * self.logits.in_features * self.logits.out_features

    def input_shape(self) -> tuple[int, int, int]:
        c = self.config
        return (c.in_channels, c.image_size, c.image_size)


def set_bn_momentum(model: nn.Module, momentum: float) -> None:
    """Set every BatchNorm's momentum. The reference sets 1.0 for the first training step, so the running
    statistics start as the first batch's (as Haiku initialises them), then 0.01 (`watrain.py`, `train`)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = momentum
