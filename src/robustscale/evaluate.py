"""Robust evaluation of a checkpoint: clean accuracy, PGD-40-CW, AutoAttack and the paper's loss (§3.1).

`evaluate_checkpoint(EvalConfig(...))` writes into `out`:
  eval.json          clean_accuracy, accuracy (robust, per attack), loss (TRADES beta=5 on PGD-40-CW
                     examples),
                     accuracy_uint8 (on adversarial.npz's uint8 images, as the human study counts)
  per_image.parquet  one row per test image: index, label, predictions and correctness per attack, loss
  adversarial.npz    uint8 adversarial images (AutoAttack's if run, else PGD's), labels, predictions
                     of the model on those uint8 images, indices, classes (for the human study)
  clean.npz          the clean images, labels, indices, classes
  robustbench.json   a RobustBench model-info entry
  pgd40-cw/, autoattack/   finished chunks (resume state: a killed evaluation redoes only the rest)
"""

from __future__ import annotations

import dataclasses
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from robustscale.attacks.autoattack import CHUNK_SIZE
from robustscale.attacks.evaluation import EVAL_BATCH, EVAL_SEED, EVAL_STEPS, eval_step_size
from robustscale.errors import RobustscaleError
from robustscale.fileio import write_json, write_npz, write_table
from robustscale.progress import progress_bar
from robustscale.rundir import RunDir

ATTACKS = ("pgd40-cw", "autoattack", "both")

# The paper whose setting this evaluation reproduces, as RobustBench cites an entry.
PAPER = {
    "name": "Adversarial Robustness Limits via Scaling-Law and Human-Alignment Studies",
    "authors": "Brian R. Bartoldson, James Diffenderfer, Konstantinos Parasyris, Bhavya Kailkhura",
    "venue": "ICML 2024",
    "link": "https://arxiv.org/abs/2404.09349",
}


@dataclasses.dataclass
class EvalConfig:
    checkpoint: str  # run dir, <stem>.safetensors/.json, or a .pt/.pth state dict (the paper's format)
    data: str = "cifar10"
    data_dir: str | None = None
    attack: str = "both"
    n: int = 10000
    eps: float | None = None  # None: the dataset's default for `norm` (8/255 L-inf for CIFAR-10, §3.1)
    norm: str = "linf"  # threat model: "linf" (the paper's) or "l2"
    out: str = "eval"
    batch_size: int = EVAL_BATCH
    # None: eps / 4, i.e. 2/255 at 8/255 (attacks.evaluation.eval_step_size, the reference's)
    step_size: float | None = None
    chunk_size: int = CHUNK_SIZE
    seed: int = EVAL_SEED
    device: str | None = None  # None: cuda when available
    # a state-dict checkpoint only: its architecture ("wrn-70-16"; None: read off the tensors) and input
    # normalisation (None: the file's, else RobustBench's CIFAR-10 mean/std)
    arch: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


def parse_eps(text: str | float, norm: str = "linf") -> float:
    """'8/255', '0.1' or a number -> float: in [0, 1] for L-inf (images are in [0, 1]), >= 0 for L2."""
    try:
        eps = float(Fraction(str(text).strip()))
    except (ValueError, ZeroDivisionError):
        raise RobustscaleError(f"eps: expected a number or fraction such as 8/255, got {text!r}") from None
    if norm == "linf" and not 0 <= eps <= 1:
        raise RobustscaleError(f"eps: must lie in [0, 1] for linf (images are in [0, 1]), got {text}")
    if not 0 <= eps < float("inf"):
        raise RobustscaleError(f"eps: expected a finite radius >= 0, got {text}")
    return eps


def format_eps(eps: float) -> str:
    """8/255 for multiples of 1/255 (RobustBench's spelling), else the decimal."""
    k = eps * 255
    return f"{round(k)}/255" if abs(k - round(k)) < 1e-6 and k >= 1 else f"{eps:g}"


def load_checked_model(checkpoint: str, data: str, device: str, *, arch: str | None = None, mean=None,
                       std=None):
    """Load a checkpoint and check that it takes the dataset's images and predicts its classes; returns
    (model in eval mode, what eval.json records about the file: format, key prefix, normalisation)."""
    from robustscale.data.datasets import dataset_info
    from robustscale.models.weights import open_model

    info = dataset_info(data)
    opened = open_model(checkpoint, map_location=device, arch=arch, mean=mean, std=std,
                        image_size=info.shape[1])
    model = opened.model
    if tuple(model.input_shape()) != tuple(info.shape):
        raise RobustscaleError(f"{checkpoint}: model takes {'x'.join(map(str, model.input_shape()))} "
                               f"images but {data} has {'x'.join(map(str, info.shape))}")
    if model.config.num_classes != info.num_classes:
        raise RobustscaleError(f"{checkpoint}: model predicts {model.config.num_classes} classes but "
                               f"{data} has {info.num_classes}")
    return model.eval(), opened.record()


def evaluate_checkpoint(config: EvalConfig, progress: bool = True) -> dict:
    """Evaluate `config.checkpoint` on the first `config.n` test images; returns eval.json's content."""
    import torch

    from robustscale.data.datasets import (
        check_norm,
        class_names,
        default_eps,
        eps_note,
        images_to_tensor,
        load_dataset,
    )

    if config.attack not in ATTACKS:
        raise RobustscaleError(f"attack: expected one of {', '.join(ATTACKS)}, got {config.attack!r}")
    check_norm(config.norm)
    eps = parse_eps(default_eps(config.data, config.norm) if config.eps is None else config.eps, config.norm)
    note = eps_note(config.data, config.norm) if config.eps is None else None
    if config.n < 1:
        raise RobustscaleError(f"n: expected a positive number of images, got {config.n}")
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, weights_record = load_checked_model(config.checkpoint, config.data, device, arch=config.arch,
                                               mean=config.mean, std=config.std)
    images, labels = load_dataset(config.data, "test", config.data_dir)
    if config.n > len(images):
        raise RobustscaleError(f"n: {config.data} has {len(images)} test images, asked for {config.n}")
    images, labels = images[:config.n], labels[:config.n]
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    x, y = images_to_tensor(images), torch.from_numpy(labels)

    with torch.no_grad():
        clean_pred = torch.cat([model(x[i:i + config.batch_size].to(device)).argmax(1).cpu()
                                for i in range(0, len(x), config.batch_size)]).numpy()
    table = {"index": np.arange(config.n), "label": labels, "clean_pred": clean_pred,
             "clean_correct": clean_pred == labels}
    result = {"model": model.config.name, "checkpoint": str(config.checkpoint), "dataset": config.data,
              **weights_record, "n": config.n, "norm": config.norm, "eps": eps, "attack": config.attack,
              "clean_accuracy": float(table["clean_correct"].mean()), "accuracy": {}, "loss": None}
    adversarial = None
    attacks = ["pgd40-cw", "autoattack"] if config.attack == "both" else [config.attack]
    for name in attacks:
        runner = _pgd_chunks if name == "pgd40-cw" else _autoattack_chunks
        with progress_bar(config.n, name, enabled=progress) as advance:
            arrays = runner(model, x, y, eps, config, out / name, advance)
        table[f"{name}_pred"] = arrays["predictions"]
        table[f"{name}_correct"] = arrays["predictions"] == labels
        result["accuracy"][name] = float(table[f"{name}_correct"].mean())
        if name == "pgd40-cw":
            table["loss"] = arrays["loss"]
            result["loss"] = float(arrays["loss"].mean())
            result["pgd_step_size"] = _step_size(config, eps)
        adversarial = arrays["adversarial"]  # AutoAttack's when both run: the study's images (§4)
    result["adversarial_source"] = attacks[-1]
    if note is not None:
        result["warnings"] = [note]
    result["time_s"] = time.time() - t0
    result["device"] = device

    import pandas as pd

    write_table(out / "per_image.parquet", pd.DataFrame(table))
    adv_uint8 = _to_uint8(adversarial)
    with torch.no_grad():
        adv_pred = torch.cat([model(images_to_tensor(adv_uint8[i:i + config.batch_size], device)).argmax(1)
                              .cpu() for i in range(0, config.n, config.batch_size)]).numpy()
    # Rounding to uint8 can undo an attack's last step: this is the accuracy on the images the
    # human study shows (and counts as robust), beside accuracy on the attack's float images.
    result["accuracy_uint8"] = float((adv_pred == labels).mean())
    classes = np.array(class_names(config.data, config.data_dir))
    write_npz(out / "adversarial.npz", compressed=True, images=adv_uint8, labels=labels, predictions=adv_pred,
              indices=table["index"], classes=classes)
    write_npz(out / "clean.npz", compressed=True, images=images, labels=labels, indices=table["index"],
              classes=classes)
    write_json(out / "robustbench.json", robustbench_entry(result, model, config.checkpoint))
    write_json(out / "eval.json", result)
    return result


def _step_size(config: EvalConfig, eps: float) -> float:
    return config.step_size if config.step_size is not None else eval_step_size(eps)


def _pgd_chunks(model, x, y, eps, config, folder, advance):
    """PGD-40 on the CW loss per chunk (`robust_evaluation`, the definition training uses too)."""
    from robustscale.attacks.autoattack import run_chunks
    from robustscale.attacks.evaluation import robust_evaluation

    step_size = _step_size(config, eps)

    def attack_chunk(start, stop):
        r = robust_evaluation(model, x[start:stop], y[start:stop], eps=eps, steps=EVAL_STEPS,
                              step_size=step_size,
                              batch_size=config.batch_size, seed=config.seed + start, norm=config.norm)
        return {"adversarial": r["adversarial"].numpy(), "predictions": r["adv_pred"].numpy(),
                "loss": r["loss"].numpy()}

    return run_chunks(folder, config.n, config.chunk_size, attack_chunk, on_chunk=advance,
                      settings={"attack": "pgd40-cw" if config.norm == "linf" else f"pgd40-cw-{config.norm}",
                                "eps": eps, "step_size": step_size,
                                "seed": config.seed, "model": _identity(config)})


def _autoattack_chunks(model, x, y, eps, config, folder, advance):
    from robustscale.attacks.autoattack import autoattack

    return autoattack(model, x, y, eps=eps, folder=folder, norm=config.norm, chunk_size=config.chunk_size,
                      batch_size=config.batch_size, seed=config.seed, on_chunk=advance,
                      settings={"model": _identity(config)})


def _identity(config: EvalConfig) -> dict:
    """What makes saved chunks belong to these weights: the weight file's path, size and mtime, and
    the normalisation (a state dict's can be chosen at evaluation time)."""
    from robustscale.models.weights import checkpoint_stem, is_state_dict_file

    weights = Path(config.checkpoint) if is_state_dict_file(config.checkpoint) else \
        checkpoint_stem(config.checkpoint).with_suffix(".safetensors")
    stat = weights.resolve().stat()
    identity = {"weights": str(weights.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if config.mean is not None or config.std is not None:
        identity.update(mean=config.mean, std=config.std)
    return identity


def robustbench_entry(result: dict, model, checkpoint: str) -> dict:
    """A RobustBench model-info entry (the fields of its model_info/<dataset>/<threat_model>/*.json)."""
    from robustscale.attacks.autoattack import AUTOATTACK_NORMS

    aa = result["accuracy"].get("autoattack")
    footnote = f"Evaluated by robustscale on the first {result['n']} test images."
    run = RunDir(checkpoint)
    if run.is_run():
        sources = run.read_config().get("sources", [])
        names = [s.get("name") for s in sources if isinstance(s, dict)]
        if names:
            footnote += f" Trained on: {', '.join(map(str, names))}."
    return {
        "link": PAPER["link"],
        "name": PAPER["name"],
        "authors": PAPER["authors"],
        # RobustBench counts extra *real* data only; generated (synthetic) data is not "additional"
        "additional_data": False,
        "number_forward_passes": 1,
        "dataset": result["dataset"],
        "venue": PAPER["venue"],
        "architecture": f"WideResNet-{model.config.depth}-{model.config.width}",
        "eps": format_eps(result["eps"]),
        "clean_acc": f"{100 * result['clean_accuracy']:.2f}",  # RobustBench's own key
        "reported": f"{100 * aa:.2f}" if aa is not None else "",
        "autoattack_acc": f"{100 * aa:.2f}" if aa is not None else "",
        "footnote": footnote,
        "unreliable": False,
        "threat_model": AUTOATTACK_NORMS[result["norm"]],
    }


def _to_uint8(images: np.ndarray) -> np.ndarray:
    """float NCHW in [0, 1] -> uint8 NHWC, as a human sees the image."""
    return np.clip(np.rint(images * 255), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1).copy()
