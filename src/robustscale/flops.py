"""FLOPs accounting of App. B: forward FLOPs measured from the model, training FLOPs per sample by mode.

`train_flops_per_sample(model, input_shape, mode)` is the one FLOPs function: the trainer records
it, and `robustscale flops`, the sweep's dry run, the demo and `runs collect` call it, so a planned
run and a finished one count the same FLOPs. Forward FLOPs come from the model's own
`forward_flops()` on a copy built on the meta device, so even WRN-94-16 costs no memory and no
compute (and a sweep's dry run no compiler import). They are counted as torch's flop counter counts
them (a test holds the two equal): convolutions and matrix products at 2 FLOPs per
multiply-accumulate; normalisation, activations and pooling ignored. This is the count App. B uses,
and with it c in FLOPs = c N D comes out at ~7850 for the large WRNs, within 0.5% of the paper's 7822.
"""

from __future__ import annotations

import dataclasses

from robustscale.errors import RobustscaleError

# App. B.1: 10 PGD steps at 1 forward + 1 input-only backward (~1 forward) each = 20, + 1 clean forward
# for the attack's logits = 21; the TRADES loss adds 2 forwards (clean, adversarial) and a backward over
# that doubled batch (~4 forwards) = 6; total 27 forward passes per training sample. Our loop reuses the
# attack's clean forward in the loss (26), but we count the paper's 27 so our FLOPs compare with its laws.
TRADES_FORWARD_EQUIVALENTS = 27
# App. B: standard training is 1 forward + 1 backward (~2 forwards) = 3 forward passes per sample.
STANDARD_FORWARD_EQUIVALENTS = 3
FORWARD_EQUIVALENTS = {"trades": TRADES_FORWARD_EQUIVALENTS, "standard": STANDARD_FORWARD_EQUIVALENTS}


def _meta_copy(model, input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None):
    """The same architecture on the meta device (no storage), taking `input_shape` (C, H, W) images and
    predicting `num_classes` when given (default: the model's own): a model, or a registry name like
    'wrn-70-16'."""
    import torch

    from robustscale.models.registry import model_config
    from robustscale.models.wideresnet import WideResNet

    config = model_config(model) if isinstance(model, str) else model.config
    if input_shape is not None:
        c, h, w = input_shape
        if h != w:
            raise RobustscaleError(f"input_shape: expected square images (C, H, H), got {input_shape}")
        if c != config.in_channels:  # normalisation does not count: any per-channel statistics do
            config = dataclasses.replace(config, in_channels=c, mean=(0.5,) * c, std=(0.5,) * c)
        config = dataclasses.replace(config, image_size=h)
    if num_classes is not None:
        config = dataclasses.replace(config, num_classes=num_classes)
    with torch.device("meta"):
        copy = WideResNet(config)
    return copy.eval()


def forward_flops(model, input_shape: tuple[int, int, int] | None = None) -> int:
    """FLOPs of one forward pass on one image (a WideResNet, or a registry name) of `input_shape`."""
    return int(_meta_copy(model, input_shape).forward_flops())


def train_flops_per_sample(model, input_shape: tuple[int, int, int] | None = None,
                           mode: str = "trades") -> int:
    """Training FLOPs per sample seen (App. B): forward FLOPs x FORWARD_EQUIVALENTS[mode].

    model: a WideResNet or a registry name; input_shape: (C, H, W), e.g. `dataset_info(name).shape`
    (default: the model's own, 3x32x32 for a bare name); mode: "trades" or "standard".
    """
    if mode not in FORWARD_EQUIVALENTS:
        raise RobustscaleError(f"mode: expected one of {', '.join(FORWARD_EQUIVALENTS)}, got {mode!r}")
    return FORWARD_EQUIVALENTS[mode] * forward_flops(model, input_shape)


def flops_ratio(model, input_shape: tuple[int, int, int] | None = None) -> float:
    """c in FLOPs ~= c N D for TRADES training (paper: 7822 for its WideResNets on CIFAR-10)."""
    return train_flops_per_sample(model, input_shape) / _meta_copy(model, input_shape).get_num_params()


def flops_summary(model, input_shape: tuple[int, int, int] | None = None, mode: str = "trades",
                  num_classes: int | None = None) -> dict:
    """`params`, `forward_flops`, `train_flops_per_sample` and `c` of a model or registry name (at
    `input_shape` and `num_classes`, e.g. a dataset's: 200 classes of 3x64x64 for TinyImageNet)."""
    meta = _meta_copy(model, input_shape, num_classes)
    params = meta.get_num_params()
    per_sample = train_flops_per_sample(meta, mode=mode)
    return {"model": meta.config.name, "mode": mode, "input_shape": list(meta.input_shape()),
            "num_classes": meta.config.num_classes, "params": params,
            "forward_flops": forward_flops(meta), "train_flops_per_sample": per_sample,
            "c": per_sample / params}
