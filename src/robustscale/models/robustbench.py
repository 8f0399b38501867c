"""Export to RobustBench's checkpoint format: the state dict its `DMWideResNet` loads with `strict=True`.

RobustBench builds the paper's models (`Bartoldson2024Adversarial_*`) as
`DMWideResNet(num_classes, depth, width, activation_fn=nn.SiLU, mean, std)`, whose `mean`/`std`
buffers are registered with `persistent=False`, and loads the zoo file strictly. So the exported
file holds exactly the network's tensors under its names (ours are the same) and no normalisation;
`mean`, `std` and the input size go into the JSON sidecar `<out>.json`, which `load_model` and
`evaluate` read back (reading the state-dict formats lives in `models/weights.py`).
"""

from __future__ import annotations

import os

import torch

from robustscale.fileio import atomic_path, write_json
from robustscale.models.weights import load_model, sidecar_path


def export_robustbench(source: str | os.PathLike, out: str | os.PathLike) -> dict:
    """Write a robustscale model (run dir or model file) at `out` as a RobustBench-loadable state dict,
    its normalisation beside it in `<out>.json`; returns what was written."""
    model = load_model(source)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    c = model.config
    sidecar = {"format": "robustbench", "model": c.name, "num_classes": c.num_classes,
               "in_channels": c.in_channels, "image_size": c.image_size, "mean": list(c.mean),
               "std": list(c.std),
               # how RobustBench builds this network (model_zoo/cifar10.py, the Bartoldson2024 entries)
               "robustbench_class": f"DMWideResNet(num_classes={c.num_classes}, depth={c.depth}, "
                                    f"width={c.width}, activation_fn=nn.SiLU, mean=mean, std=std, "
                                    f"num_input_channels={c.in_channels})"}
    with atomic_path(out) as tmp:
        torch.save(state, tmp)
    write_json(sidecar_path(out), sidecar)
    return {"source": str(source), "out": str(out), "normalization_file": str(sidecar_path(out)),
            "format": "robustbench", "model": c.name, "params": model.get_num_params(), "mean": list(c.mean),
            "std": list(c.std)}
