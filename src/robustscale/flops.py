"""FLOPs accounting of App. B: forward FLOPs measured from the model, training FLOPs = 27 forwards.

Forward FLOPs come from torch's flop counter run on a copy of the model built on the meta device,
so even WRN-94-16 costs no memory and no compute. The counter counts convolutions and matrix
products at 2 FLOPs per multiply-accumulate and ignores normalisation, activations and pooling;
this is the counter App. B uses, and with it c in FLOPs = c N D comes out at ~7850 for the large WRNs,
within 0.5% of the paper's 7822.
"""

from __future__ import annotations

# App. B.1: 10 PGD steps at 1 forward + 1 input-only backward (~1 forward) each = 20, + 1 clean forward
# for the attack's logits = 21; the TRADES loss adds 2 forwards (clean, adversarial) and a backward over
# that doubled batch (~4 forwards) = 6; total 27 forward passes per training sample.
TRAIN_FORWARD_EQUIVALENTS = 27


def _meta_copy(model):
    """The same architecture on the meta device (no storage): a model, or a name like 'wrn-70-16'."""
    import torch

    from robustscale.models.registry import create_model
    from robustscale.models.wideresnet import WideResNet

    with torch.device("meta"):
        copy = create_model(model) if isinstance(model, str) else WideResNet(model.config)
    return copy.eval()


def forward_flops(model) -> int:
    """FLOPs of one forward pass on one image (a WideResNet, or a registry name)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    meta = _meta_copy(model)
    x = torch.empty(1, *meta.input_shape(), device="meta")
    with FlopCounterMode(display=False) as counter:
        meta(x)
    return int(counter.get_total_flops())


def train_flops_per_sample(model) -> int:
    """Training FLOPs per sample seen: TRAIN_FORWARD_EQUIVALENTS forward passes (App. B)."""
    return TRAIN_FORWARD_EQUIVALENTS * forward_flops(model)


def flops_ratio(model) -> float:
    """c in FLOPs ~= c N D (paper: 7822 for its WideResNets on CIFAR-10)."""
    return train_flops_per_sample(model) / _meta_copy(model).get_num_params()


def flops_summary(model) -> dict:
    """`params`, `forward_flops`, `train_flops_per_sample` and `c` of a model or registry name."""
    meta = _meta_copy(model)
    forward = forward_flops(meta)
    params = meta.get_num_params()
    return {"model": meta.config.name, "params": params, "forward_flops": forward,
            "train_flops_per_sample": TRAIN_FORWARD_EQUIVALENTS * forward,
            "c": TRAIN_FORWARD_EQUIVALENTS * forward / params}
