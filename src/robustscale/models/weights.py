"""Weight files: ours (safetensors + JSON config) and the state-dict formats of the paper's code and of
RobustBench.

`save_model(model, "run/model")` writes `run/model.safetensors` and `run/model.json`;
`load_model("run/model")` (or either file's path) reads them back. A `.pt`/`.pth` file is read as a
PyTorch state dict of a DeepMind-style WRN, in every layout the paper's files come in:
- bare keys (`init_conv.weight`, ...): RobustBench's zoo files (`Bartoldson2024Adversarial_*`) and
  `robustscale export --format robustbench`;
- `module.`: the same network saved under DDP;
- `0.` and `module.0.`: the reference trainer (bbartoldson/Adversarial-Robustness-Limits at b22988f,
  `core/models/__init__.py` `create_model`: `Sequential(wrn)` with its default `normalize: false`;
  `train_wa_distributed.py` wraps it in DDP; `watrain.py` `save_model`: {"model_state_dict": ...}).
Our WideResNet has the reference's parameter names and shapes, so after the prefix is stripped
the load is strict; depth, width, classes and input channels are read off the tensors' shapes.

Input normalisation is not a tensor of the state dict (RobustBench's `DMWideResNet` registers
`mean`/`std` with `persistent=False`; the reference keeps them as plain attributes). It comes from,
in this order: the caller; `mean`/`std` tensors in the file (older exports); the JSON sidecar
`<file>.json` that `export` writes beside the weights; RobustBench's CIFAR-10 statistics.
`open_model` says which, and which prefix it stripped, so `evaluate` can record both.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from robustscale.errors import RobustscaleError
from robustscale.fileio import atomic_path, write_json
from robustscale.models.registry import parse_model_name
from robustscale.models.wideresnet import WideResNet, WRNConfig

# RobustBench's CIFAR-10 normalisation (`dm_wide_resnet.py`: CIFAR10_MEAN, CIFAR10_STD), also the reference's
ROBUSTBENCH_MEAN = (0.4914, 0.4822, 0.4465)
ROBUSTBENCH_STD = (0.2471, 0.2435, 0.2616)
STATE_DICT_SUFFIXES = (".pt", ".pth")
# key prefixes of a DeepMind-style WRN, longest first (see the module docstring)
STATE_DICT_PREFIXES = ("module.0.", "module.", "0.", "")
_BLOCK = re.compile(r"^layer\.0\.block\.(\d+)\.conv_0\.weight$")


@dataclasses.dataclass
class OpenedModel:
    """A loaded model and how its file was read: `format` "robustscale" (safetensors + config) or
    "state_dict"; `prefix` the state dict's stripped key prefix; `normalization` where mean/std came
    from ("given", "config", "state_dict", "sidecar" or "robustbench_default")."""

    model: WideResNet
    format: str
    prefix: str | None
    normalization: str

    def record(self) -> dict[str, Any]:
        """What eval.json says about the file."""
        return {"checkpoint_format": self.format, "state_dict_prefix": self.prefix,
                "normalization": {"mean": list(self.model.config.mean), "std": list(self.model.config.std),
                                  "source": self.normalization}}


def checkpoint_stem(path: str | os.PathLike) -> Path:
    """The `<stem>` of a checkpoint given as a run dir (its model.*), either file, or the stem."""
    path = Path(path)
    if path.is_dir():
        from robustscale.rundir import RunDir

        return RunDir(path).model_stem
    return path.with_suffix("") if path.suffix in (".safetensors", ".json") else path


def is_state_dict_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix in STATE_DICT_SUFFIXES


def sidecar_path(path: str | os.PathLike) -> Path:
    """The normalisation record beside a state-dict file: `model.pt` -> `model.pt.json` (never our
    `model.json`, which describes `model.safetensors`)."""
    return Path(f"{path}.json")


def save_model(model, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
    """Write `<stem>.safetensors` (weights and buffers) and `<stem>.json` (config + metadata)."""
    stem = checkpoint_stem(path)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(stem.with_suffix(".safetensors")) as tmp:
        save_file(state, str(tmp))
    write_json(stem.with_suffix(".json"), {"config": dataclasses.asdict(model.config),
                                           "metadata": metadata or {}})
    return stem.with_suffix(".safetensors")


def load_model(path: str | os.PathLike, map_location: str = "cpu", *, arch: str | None = None,
               mean=None, std=None, image_size: int | None = None) -> WideResNet:
    """Rebuild a WideResNet from `<stem>.json` and load `<stem>.safetensors` into it, or read a state dict.

    arch ("wrn-28-10"), when given, must match the weights; mean/std override the input normalisation
    (default: the file's, see the module docstring); image_size sets the input size a state dict's
    model reports (default: the sidecar's, else 32).
    """
    return open_model(path, map_location, arch=arch, mean=mean, std=std, image_size=image_size).model


def open_model(path: str | os.PathLike, map_location: str = "cpu", *, arch: str | None = None,
               mean=None, std=None, image_size: int | None = None) -> OpenedModel:
    """`load_model`, also saying which format, key prefix and normalisation the file had."""
    if is_state_dict_file(path):
        opened = _open_state_dict(Path(path), arch=arch, mean=mean, std=std, image_size=image_size)
    else:
        opened = _open_safetensors(path, arch=arch, mean=mean, std=std)
    opened.model.to(map_location)
    return opened


def _open_safetensors(path, *, arch, mean, std) -> OpenedModel:
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
        state = load_file(str(weights))
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
    given = mean is not None or std is not None
    return OpenedModel(model, "robustscale", None, "given" if given else "config")


def read_state_dict(path: str | os.PathLike) -> tuple[dict, str]:
    """(tensors, stripped prefix) of a torch checkpoint file, unwrapped from {"model_state_dict": ...} or
    {"state_dict": ...} and without the layout's key prefix (one of STATE_DICT_PREFIXES)."""
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
    if any(k.startswith(("1.init_conv.", "module.1.init_conv.")) for k in state):
        raise RobustscaleError(f"{path}: a reference model saved with normalize=true (the network at index 1 "
                               f"behind a Normalization layer, which normalises twice); not supported")
    prefix = next((p for p in STATE_DICT_PREFIXES if f"{p}init_conv.weight" in state), "")
    return {k.removeprefix(prefix): v for k, v in state.items()}, prefix


def infer_arch(state: dict, source: str = "state dict") -> dict:
    """depth, width, num_classes and in_channels of a DeepMind-style WRN state dict, from its shapes."""
    try:
        blocks = 1 + max(int(m.group(1)) for m in map(_BLOCK.match, state) if m)
        stem, head = state["init_conv.weight"], state["logits.weight"]
    except (KeyError, ValueError):
        raise RobustscaleError(f"{source}: not a DeepMind-style WideResNet (expected init_conv, "
                               f"layer.0.block.N.conv_0 and logits tensors)") from None
    width = state["layer.0.block.0.conv_0.weight"].shape[0] // 16
    return {"depth": 6 * blocks + 4, "width": width, "num_classes": head.shape[0],
            "in_channels": stem.shape[1]}


def read_sidecar(path: Path) -> dict:
    """The normalisation record `export` wrote beside a state dict ({} when there is none)."""
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        return {}
    try:
        record = json.loads(sidecar.read_text())
        return {"mean": tuple(record["mean"]), "std": tuple(record["std"]),
                "image_size": int(record.get("image_size", 32))}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise RobustscaleError(f"{sidecar}: expected a JSON object with mean and std lists ({e})") from None


def _open_state_dict(path: Path, *, arch, mean, std, image_size) -> OpenedModel:
    state, prefix = read_state_dict(path)
    shape = infer_arch(state, str(path))
    if arch is not None and parse_model_name(arch) != (shape["depth"], shape["width"]):
        raise RobustscaleError(f"arch: {path} holds a wrn-{shape['depth']}-{shape['width']}, not {arch}")
    stored_mean, stored_std = state.pop("mean", None), state.pop("std", None)
    sidecar = read_sidecar(path)
    if stored_mean is not None and stored_std is not None:
        source, file_mean, file_std = "state_dict", stored_mean.flatten().tolist(), \
            stored_std.flatten().tolist()
    elif sidecar:
        source, file_mean, file_std = "sidecar", sidecar["mean"], sidecar["std"]
    else:
        source, file_mean, file_std = "robustbench_default", ROBUSTBENCH_MEAN, ROBUSTBENCH_STD
    if mean is not None or std is not None:
        source = "given"
    elif source == "robustbench_default" and shape["in_channels"] != len(ROBUSTBENCH_MEAN):
        raise RobustscaleError(f"mean/std: {path} records no input normalisation and takes "
                               f"{shape['in_channels']}-channel images (RobustBench's default is "
                               f"CIFAR-10's); give the mean and std it was trained with")
    try:
        config = WRNConfig(**shape, image_size=image_size or sidecar.get("image_size", 32),
                           mean=tuple(mean if mean is not None else file_mean),
                           std=tuple(std if std is not None else file_std))
    except ValueError as e:
        raise RobustscaleError(f"mean/std: {e}") from None
    model = WideResNet(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RobustscaleError(f"{path}: tensors do not match {config.name} (missing {missing[:2]}, "
                               f"unexpected {unexpected[:2]})")
    return OpenedModel(model, "state_dict", prefix, source)
