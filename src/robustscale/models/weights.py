"""Weights as safetensors with a small JSON config beside them, so a file alone rebuilds its model.

`save_model(model, "run/model")` writes `run/model.safetensors` and `run/model.json`;
`load_model("run/model")` (or either file's path) reads them back. A `.pt`/`.pth` file is read as
the paper's format instead (a DeepMind-style WRN state dict, see `models/robustbench.py`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from robustscale.errors import RobustscaleError
from robustscale.fileio import atomic_path, write_json


def checkpoint_stem(path: str | os.PathLike) -> Path:
    """The `<stem>` of a checkpoint given as a run dir (its model.*), either file, or the stem."""
    path = Path(path)
    if path.is_dir():
        from robustscale.rundir import RunDir

        return RunDir(path).model_stem
    return path.with_suffix("") if path.suffix in (".safetensors", ".json") else path


def save_model(model, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
    """Write `<stem>.safetensors` (weights and buffers) and `<stem>.json` (config + metadata)."""
    from safetensors.torch import save_file

    stem = checkpoint_stem(path)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(stem.with_suffix(".safetensors")) as tmp:
        save_file(state, str(tmp))
    write_json(stem.with_suffix(".json"), {"config": dataclasses.asdict(model.config),
                                           "metadata": metadata or {}})
    return stem.with_suffix(".safetensors")


def load_model(path: str | os.PathLike, map_location: str = "cpu", *, arch: str | None = None,
               mean=None, std=None, image_size: int | None = None):
    """Rebuild a WideResNet from `<stem>.json` and load `<stem>.safetensors` into it, or read a state dict.

    arch ("wrn-28-10"), when given, must match the weights; mean/std override the input normalisation
    (default: the file's, for a state dict without one RobustBench's CIFAR-10 statistics);
    image_size sets the input size a state dict's model reports (default 32).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from robustscale.models.robustbench import is_state_dict_file, load_state_dict_model
    from robustscale.models.wideresnet import WideResNet, WRNConfig

    if is_state_dict_file(path):
        model = load_state_dict_model(path, arch=arch, mean=mean, std=std, image_size=image_size or 32)
        return model.to(map_location)
    stem = checkpoint_stem(path)
    weights, config_file = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    for f in (weights, config_file):
        if not f.exists():
            raise RobustscaleError(f"{f}: checkpoint file not found")
    try:
        config = WRNConfig(**json.loads(config_file.read_text())["config"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise RobustscaleError(f"{config_file}: not a robustscale model config ({e})") from None
    if arch is not None and arch.strip().lower() != config.name:
        raise RobustscaleError(f"arch: {config_file} describes a {config.name}, not {arch}")
    if mean is not None or std is not None:
        try:
            config = dataclasses.replace(config, mean=tuple(mean if mean is not None else config.mean),
                                         std=tuple(std if std is not None else config.std))
        except ValueError as e:
            raise RobustscaleError(f"mean/std: {e}") from None
    try:
        state = load_file(str(weights), device=map_location)
    except (SafetensorError, OSError, ValueError) as e:
        raise RobustscaleError(f"{weights}: corrupt safetensors file ({e})") from None
    model = WideResNet(config)
    expected = model.state_dict()
    mismatched = sorted(set(expected) ^ set(state)) + [
        k for k in expected if k in state and state[k].shape != expected[k].shape]
    if mismatched:
        raise RobustscaleError(f"{weights}: weights do not match {config.name} from {config_file.name} "
                               f"({len(mismatched)} tensors differ, first: {mismatched[0]})")
    model.load_state_dict(state)
    return model.to(map_location)
