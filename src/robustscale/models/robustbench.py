"""The paper's checkpoint format: a PyTorch state dict of a DeepMind-style WideResNet, as RobustBench loads.

The paper's models (RobustBench's `Bartoldson2024Adversarial_*` entries) and the reference training
code save `torch.save` files of the model's state dict, sometimes wrapped as {"model_state_dict": ...}
or {"state_dict": ...} and with DDP's "module." prefix. Our WideResNet has the same parameter names
and shapes, so reading one is a rename-free `load_state_dict`; depth, width, classes and input
channels are read off the tensors' shapes. The normalisation is not always in the file (the
reference keeps it outside the state dict; RobustBench's `DMWideResNet` stores `mean`/`std`
buffers): given, else the file's, else RobustBench's CIFAR-10 statistics.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from robustscale.errors import RobustscaleError

# RobustBench's CIFAR-10 normalisation (`dm_wide_resnet.py`: CIFAR10_MEAN, CIFAR10_STD), also the reference's
ROBUSTBENCH_MEAN = (0.4914, 0.4822, 0.4465)
ROBUSTBENCH_STD = (0.2471, 0.2435, 0.2616)
STATE_DICT_SUFFIXES = (".pt", ".pth")
_BLOCK = re.compile(r"^layer\.0\.block\.(\d+)\.conv_0\.weight$")


def is_state_dict_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix in STATE_DICT_SUFFIXES


def read_state_dict(path: str | os.PathLike) -> dict:
    """The tensors of a torch checkpoint file, unwrapped and without DDP's "module." prefix."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise RobustscaleError(f"{path}: checkpoint file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # plain tensors only: no pickled code
    except Exception as e:  # torch raises many types for foreign or damaged files
        raise RobustscaleError(f"{path}: not a PyTorch state dict ({str(e).splitlines()[0]})") from None
    for key in ("model_state_dict", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise RobustscaleError(f"{path}: expected a dict of tensors (a model state dict)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def infer_arch(state: dict, source: str = "state dict") -> dict:
    """depth, width, num_classes and in_channels of a DeepMind-style WRN state dict, from its shapes."""
    try:
        blocks = 1 + max(int(m.group(1)) for m in map(_BLOCK.match, state) if m)
        stem, head = state["init_conv.weight"], state["logits.weight"]
    except (KeyError, ValueError):
        raise RobustscaleError(f"{source}: not a DeepMind-style WideResNet (expected init_conv, "
                               f"layer.0.block.N.conv_0 and logits tensors)") from None
    width = state["layer.0.block.0.conv_0.weight"].shape[0] // 16
    return {"depth": 6 * blocks + 4, "width": width, "num_classes": head.shape[0], "in_channels": stem.shape[1]}


def load_state_dict_model(path: str | os.PathLike, *, arch: str | None = None, mean=None, std=None,
                          image_size: int = 32):
    """A WideResNet from a state-dict file; `arch` ("wrn-70-16"), when given, must match the tensors."""
    from robustscale.models.registry import parse_model_name
    from robustscale.models.wideresnet import WideResNet, WRNConfig

    state = read_state_dict(path)
    shape = infer_arch(state, str(path))
    if arch is not None and parse_model_name(arch) != (shape["depth"], shape["width"]):
        raise RobustscaleError(f"arch: {path} holds a wrn-{shape['depth']}-{shape['width']}, not {arch}")
    stored_mean, stored_std = state.pop("mean", None), state.pop("std", None)
    mean = mean if mean is not None else (stored_mean.flatten().tolist() if stored_mean is not None else ROBUSTBENCH_MEAN)
    std = std if std is not None else (stored_std.flatten().tolist() if stored_std is not None else ROBUSTBENCH_STD)
    try:
        config = WRNConfig(**shape, image_size=image_size, mean=tuple(mean), std=tuple(std))
    except ValueError as e:
        raise RobustscaleError(f"mean/std: {e}") from None
    model = WideResNet(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RobustscaleError(f"{path}: tensors do not match {config.name} (missing {missing[:2]}, "
                               f"unexpected {unexpected[:2]})")
    return model


def export_robustbench(source: str | os.PathLike, out: str | os.PathLike) -> dict:
    """Write a robustscale model (run dir or model file) as a RobustBench-loadable state dict at `out`.

    The file holds the weights under the reference's names plus `mean`/`std` buffers of shape
    (C, 1, 1), as RobustBench's `DMWideResNet` registers them, so `DMWideResNet(...).load_state_dict`
    takes it strictly and the normalisation travels with the weights.
    """
    import torch

    from robustscale.fileio import atomic_path
    from robustscale.models.weights import load_model

    model = load_model(source)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    state["mean"], state["std"] = model.mean.view(-1, 1, 1).clone(), model.std.view(-1, 1, 1).clone()
    with atomic_path(out) as tmp:
        torch.save(state, tmp)
    return {"source": str(source), "out": str(out), "format": "robustbench", "model": model.config.name,
            "params": model.get_num_params(), "mean": list(model.config.mean), "std": list(model.config.std)}
