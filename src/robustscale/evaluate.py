"""Robust evaluation of a checkpoint: clean accuracy, PGD-40-CW, AutoAttack and the paper's loss (§3.1).

`evaluate_checkpoint(EvalConfig(...))` writes into `out`:
  eval.json          clean_acc, robust_acc per attack, loss (TRADES beta=5 on PGD-40-CW examples)
  per_image.parquet  one row per test image: index, label, predictions and correctness per attack, loss
  adversarial.npz    uint8 adversarial images (AutoAttack's if run, else PGD's), labels, predictions
                     of the model on those uint8 images, indices, classes (for the human study)
  clean.npz          the clean images, labels, indices, classes
  robustbench.json   a RobustBench model-info entry
  pgd40-cw/, autoattack/   finished chunks (resume state: a killed evaluation redoes only the rest)
"""

from __future__ import annotations

import dataclasses
import json
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from robustscale.errors import RobustscaleError
from robustscale.fileio import atomic_path, write_json

ATTACKS = ("pgd40-cw", "autoattack", "both")
PGD_STEPS = 40  # §3.1: scaling-law accuracies and losses use 40 PGD steps on the CW loss
CHUNK_SIZE = 500  # images per saved chunk of either attack

# The paper whose setting this evaluation reproduces, as RobustBench cites an entry.
PAPER = {
    "name": "Adversarial Robustness Limits via Scaling-Law and Human-Alignment Studies",
    "authors": "Brian R. Bartoldson, James Diffenderfer, Konstantinos Parasyris, Bhavya Kailkhura",
    "venue": "ICML 2024",
    "link": "https://arxiv.org/abs/2404.09349",
}


@dataclasses.dataclass
class EvalConfig:
    checkpoint: str
    data: str = "cifar10"
    data_dir: str | None = None
    attack: str = "both"
    n: int = 10000
    eps: float | None = None  # None: the dataset's default_eps (8/255 for CIFAR-10, §3.1)
    out: str = "eval"
    batch_size: int = 256
    # None: eps / 4, i.e. 2/255 at 8/255, the attack step of training (§3.1)
    step_size: float | None = None
    chunk_size: int = CHUNK_SIZE
    seed: int = 0
    device: str | None = None  # None: cuda when available


def parse_eps(text: str | float) -> float:
    """'8/255', '0.1' or a number -> float in [0, 1]."""
    try:
        eps = float(Fraction(str(text).strip()))
    except (ValueError, ZeroDivisionError):
        raise RobustscaleError(f"--eps: expected a number or fraction such as 8/255, got {text!r}") from None
    if not 0 <= eps <= 1:
        raise RobustscaleError(f"--eps: must lie in [0, 1] (images are in [0, 1]), got {text}")
    return eps


def format_eps(eps: float) -> str:
    """8/255 for multiples of 1/255 (RobustBench's spelling), else the decimal."""
    k = eps * 255
    return f"{round(k)}/255" if abs(k - round(k)) < 1e-6 and k >= 1 else f"{eps:g}"


def load_checked_model(checkpoint: str, data: str, device: str):
    """Load a checkpoint and check that it takes the dataset's images and predicts its classes."""
    from robustscale.data.datasets import dataset_info
    from robustscale.models.weights import load_model

    model = load_model(checkpoint, map_location=device)
    info = dataset_info(data)
    if tuple(model.input_shape()) != tuple(info.shape):
        raise RobustscaleError(f"{checkpoint}: model takes {'x'.join(map(str, model.input_shape()))} "
                               f"images but {data} has {'x'.join(map(str, info.shape))}")
    if model.config.num_classes != len(info.classes):
        raise RobustscaleError(f"{checkpoint}: model predicts {model.config.num_classes} classes but "
                               f"{data} has {len(info.classes)}")
    return model.eval()


def evaluate_checkpoint(config: EvalConfig, progress: bool = True) -> dict:
    """Evaluate `config.checkpoint` on the first `config.n` test images; returns eval.json's content."""
    import torch

    from robustscale.data.datasets import dataset_info, images_to_tensor, load_dataset

    if config.attack not in ATTACKS:
        raise RobustscaleError(f"--attack: expected one of {', '.join(ATTACKS)}, got {config.attack!r}")
    info = dataset_info(config.data)
    eps = parse_eps(info.default_eps if config.eps is None else config.eps)
    if config.n < 1:
        raise RobustscaleError(f"--n: expected a positive number of images, got {config.n}")
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = load_checked_model(config.checkpoint, config.data, device)
    images, labels = load_dataset(config.data, "test", config.data_dir)
    if config.n > len(images):
        raise RobustscaleError(f"--n: {config.data} has {len(images)} test images, asked for {config.n}")
    images, labels = images[:config.n], labels[:config.n]
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    x, y = images_to_tensor(images), torch.from_numpy(labels)

    with torch.no_grad():
        clean_logits = torch.cat([model(x[i:i + config.batch_size].to(device)).float().cpu()
                                  for i in range(0, len(x), config.batch_size)])
    clean_pred = clean_logits.argmax(1).numpy()
    table = {"index": np.arange(config.n), "label": labels, "clean_pred": clean_pred,
             "clean_correct": clean_pred == labels}
    result = {"model": model.config.name, "checkpoint": str(config.checkpoint), "dataset": config.data,
              "n": config.n, "eps": eps, "attack": config.attack,
              "clean_acc": float(table["clean_correct"].mean()), "robust_acc": {}, "loss": None}
    adversarial = None
    attacks = ["pgd40-cw", "autoattack"] if config.attack == "both" else [config.attack]
    for name in attacks:
        runner = _pgd_chunks if name == "pgd40-cw" else _autoattack_chunks
        with _progress(progress, name, config.n) as advance:
            arrays = runner(model, x, y, clean_logits, eps, config, out / name, device, advance)
        table[f"{name}_pred"] = arrays["predictions"]
        table[f"{name}_correct"] = arrays["predictions"] == labels
        result["robust_acc"][name] = float(table[f"{name}_correct"].mean())
        if name == "pgd40-cw":
            table["loss"] = arrays["loss"]
            result["loss"] = float(arrays["loss"].mean())
            result["pgd_step_size"] = config.step_size or eps / 4
        adversarial = arrays["adversarial"]  # AutoAttack's when both run: the study's images (§4)
    result["adversarial_source"] = attacks[-1]
    result["time_s"] = time.time() - t0
    result["device"] = device

    _write_parquet(out / "per_image.parquet", table)
    adv_uint8 = _to_uint8(adversarial)
    with torch.no_grad():
        adv_pred = torch.cat([model(images_to_tensor(adv_uint8[i:i + config.batch_size], device)).argmax(1)
                              .cpu() for i in range(0, config.n, config.batch_size)]).numpy()
    classes = np.array(info.classes)
    _write_npz(out / "adversarial.npz", images=adv_uint8, labels=labels, predictions=adv_pred,
               indices=table["index"], classes=classes)
    _write_npz(out / "clean.npz", images=images, labels=labels, indices=table["index"], classes=classes)
    write_json(out / "robustbench.json", robustbench_entry(result, model, config.checkpoint))
    write_json(out / "eval.json", result)
    return result


def _pgd_chunks(model, x, y, clean_logits, eps, config, folder, device, advance):
    """PGD-40 on the CW loss per chunk, with each image's TRADES (beta=5) loss on its PGD example."""
    import torch

    from robustscale.attacks.autoattack import run_chunks
    from robustscale.attacks.pgd import pgd_attack
    from robustscale.attacks.trades import trades_objective

    step_size = config.step_size or eps / 4

    def attack_chunk(start, stop):
        generator = torch.Generator(device).manual_seed(config.seed + start)
        advs, preds, losses = [], [], []
        for i in range(start, stop, config.batch_size):
            j = min(i + config.batch_size, stop)
            xb, yb = x[i:j].to(device), y[i:j].to(device)
            xa = pgd_attack(model, xb, yb, eps=eps, step_size=step_size, steps=PGD_STEPS, loss="cw",
                            generator=generator)
            with torch.no_grad():
                adv_logits = model(xa).float()
            losses.append(trades_objective(clean_logits[i:j].to(device), adv_logits, yb,
                                           reduction="none").cpu())
            advs.append(xa.cpu())
            preds.append(adv_logits.argmax(1).cpu())
        return {"adversarial": torch.cat(advs).numpy(), "predictions": torch.cat(preds).numpy(),
                "loss": torch.cat(losses).numpy()}

    return run_chunks(folder, config.n, config.chunk_size, attack_chunk, on_chunk=advance,
                      settings={"attack": "pgd40-cw", "eps": eps, "step_size": step_size,
                                "seed": config.seed, "model": _identity(config.checkpoint)})


def _autoattack_chunks(model, x, y, clean_logits, eps, config, folder, device, advance):
    from robustscale.attacks.autoattack import autoattack

    return autoattack(model, x, y, eps=eps, folder=folder, chunk_size=config.chunk_size,
                      batch_size=config.batch_size, seed=config.seed, on_chunk=advance,
                      settings={"model": _identity(config.checkpoint)})


def _identity(checkpoint: str) -> dict:
    """What makes saved chunks belong to these weights: the weight file's path, size and mtime."""
    from robustscale.models.weights import checkpoint_stem

    weights = checkpoint_stem(checkpoint).with_suffix(".safetensors").resolve()
    stat = weights.stat()
    return {"weights": str(weights), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def robustbench_entry(result: dict, model, checkpoint: str) -> dict:
    """A RobustBench model-info entry (the fields of robustbench/model_info/<dataset>/Linf/*.json)."""
    aa = result["robust_acc"].get("autoattack")
    footnote = f"Evaluated by robustscale on the first {result['n']} test images."
    config_file = Path(checkpoint) / "config.json" if Path(checkpoint).is_dir() else None
    if config_file is not None and config_file.exists():
        sources = json.loads(config_file.read_text()).get("sources", [])
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
        "clean_acc": f"{100 * result['clean_acc']:.2f}",
        "reported": f"{100 * aa:.2f}" if aa is not None else "",
        "autoattack_acc": f"{100 * aa:.2f}" if aa is not None else "",
        "footnote": footnote,
        "unreliable": False,
        "threat_model": "Linf",
    }


def _to_uint8(images: np.ndarray) -> np.ndarray:
    """float NCHW in [0, 1] -> uint8 NHWC, as a human sees the image."""
    return np.clip(np.rint(images * 255), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1).copy()


def _write_npz(path: Path, **arrays) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


def _write_parquet(path: Path, table: dict) -> None:
    import pandas as pd

    with atomic_path(path) as tmp:
        pd.DataFrame(table).to_parquet(tmp, index=False)


class _progress:
    """A rich progress bar on stderr with images/s; `advance(k)` moves it by k images."""

    def __init__(self, enabled: bool, name: str, total: int):
        self.enabled, self.name, self.total = enabled, name, total

    def __enter__(self):
        if not self.enabled:
            return lambda k: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]} img/s"), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=False)
        self.bar.start()
        self.task = self.bar.add_task(self.name, total=self.total, rate="-")
        self.t0, self.done = time.time(), 0

        def advance(k: int) -> None:
            self.done += k
            rate = self.done / max(time.time() - self.t0, 1e-9)
            self.bar.update(self.task, advance=k, rate=f"{rate:.1f}")
        return advance

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()
