"""timm-style model registry: `create_model("wrn-28-10")`, `list_models("wrn-*")`.

The Table 2 sizes (and WRN-82-8, WRN-94-16) are registered by name; any `wrn-D-K` also parses.
"""

from __future__ import annotations

import fnmatch
import re

from robustscale.errors import RobustscaleError
from robustscale.models.wideresnet import WideResNet, WRNConfig

# Table 2 of the paper (depth, width), plus the sizes named elsewhere in it.
PAPER_SIZES = (
    (28, 4), (40, 4), (82, 4), (28, 12), (58, 12), (82, 12), (70, 16), (82, 16), (82, 8), (94, 16), (28, 10),
)
_REGISTRY: dict[str, tuple[int, int]] = {f"wrn-{d}-{w}": (d, w) for d, w in PAPER_SIZES}
_PATTERN = re.compile(r"^wrn-(\d+)-(\d+)$")


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style pattern, smallest first."""
    names = [n for n in _REGISTRY if fnmatch.fnmatch(n, pattern)]
    return sorted(names, key=lambda n: (_REGISTRY[n][1], _REGISTRY[n][0]))


def parse_model_name(name: str) -> tuple[int, int]:
    m = _PATTERN.match(name.strip().lower())
    if not m:
        raise RobustscaleError(f"unknown model {name!r}: expected 'wrn-DEPTH-WIDTH' such as wrn-28-10 "
                               f"(registered: {', '.join(list_models())})")
    depth, width = int(m.group(1)), int(m.group(2))
    if depth < 10 or (depth - 4) % 6 or width < 1:
        raise RobustscaleError(f"invalid model {name!r}: depth must be 6n+4 (10, 16, 22, 28, ...) and "
                               f"width >= 1")
    return depth, width


def model_config(name: str, num_classes: int = 10, dataset: str | None = None, **overrides) -> WRNConfig:
    """The config of a named model; `dataset` fills input channels, size and normalisation."""
    depth, width = parse_model_name(name)
    kw: dict = {"num_classes": num_classes}
    if dataset is not None:
        from robustscale.data.datasets import dataset_info

        info = dataset_info(dataset)
        kw.update(in_channels=info.shape[0], image_size=info.shape[1], mean=info.mean, std=info.std,
                  num_classes=info.num_classes)
    kw.update(overrides)
    return WRNConfig(depth=depth, width=width, **kw)


def create_model(name: str, num_classes: int = 10, dataset: str | None = None, **overrides) -> WideResNet:
    """Build a WideResNet by name, e.g. `create_model("wrn-82-8", num_classes=10)`."""
    return WideResNet(model_config(name, num_classes=num_classes, dataset=dataset, **overrides))
