"""AutoAttack (standard version, L-inf or L2) through the official code, PyPI `pyautoattack`, in resumable
chunks.

A full CIFAR-10 AutoAttack of a large WRN takes hours, so the test set is cut into chunks of
`chunk_size` images; each finished chunk's adversarial images, predictions and per-image robust
flags go to `<folder>/chunk_<start>.npz` atomically. A rerun after a kill loads finished chunks
and attacks only the rest. Each chunk is attacked with seed `seed + start`, so a resumed run gives
the same per-image flags as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from robustscale.errors import RobustscaleError
from robustscale.fileio import write_json, write_npz

CHUNK_SIZE = 500  # images per saved chunk (AutoAttack's and PGD's): minutes of work lost at most on a kill


def run_chunks(folder: str | os.PathLike, n: int, chunk_size: int,
               attack_chunk: Callable[[int, int], dict[str, np.ndarray]],
               on_chunk: Callable[[int], None] | None = None, settings: dict | None = None
               ) -> dict[str, np.ndarray]:
    """Call `attack_chunk(start, stop)` for each chunk of range(n) not yet saved under `folder`.

    Each result (a dict of arrays of length stop - start) is saved as `chunk_<start>.npz`
    atomically; finished chunks are loaded instead of recomputed. `settings` (eps, seed, model...)
    are kept in `settings.json`: chunks made with other settings are refused, never mixed in.
    `on_chunk(n_images)` is called per chunk (for progress bars). Returns the arrays concatenated.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    settings = json.loads(json.dumps({"chunk_size": chunk_size, **(settings or {})}))
    settings_file = folder / "settings.json"
    if settings_file.exists():
        saved = json.loads(settings_file.read_text())
        if saved != settings:
            changed = sorted(k for k in set(saved) | set(settings) if saved.get(k) != settings.get(k))
            raise RobustscaleError(f"{folder}: holds chunks of another evaluation (differs in "
                                   f"{', '.join(changed)}); use another output folder or delete it")
    else:
        write_json(settings_file, settings)
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        path = folder / f"chunk_{start:07d}.npz"
        part = _load_chunk(path, stop - start) if path.exists() else None
        if part is None:
            part = attack_chunk(start, stop)
            write_npz(path, **part)
        parts.append(part)
        if on_chunk is not None:
            on_chunk(stop - start)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _load_chunk(path: Path, length: int) -> dict[str, np.ndarray] | None:
    """A saved chunk, or None when it does not hold `length` images (a different image count or chunking)."""
    try:
        with np.load(path) as f:
            part = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError) as e:
        raise RobustscaleError(f"{path}: unreadable chunk ({e}); delete it to recompute") from None
    if any(len(v) != length for v in part.values()):
        return None
    return part


# AutoAttack's names of the threat models (pyautoattack's `norm`, RobustBench's `threat_model`)
AUTOATTACK_NORMS = {"linf": "Linf", "l2": "L2"}


def autoattack(model, x: torch.Tensor, y: torch.Tensor, *, eps: float, folder: str | os.PathLike,
               norm: str = "linf", chunk_size: int = CHUNK_SIZE, batch_size: int = 250, seed: int = 0,
               on_chunk: Callable[[int], None] | None = None, settings: dict | None = None
               ) -> dict[str, np.ndarray]:
    """Standard AutoAttack (APGD-CE, APGD-T, FAB-T, Square) in the `norm` ball of `model` on (x, y) in [0, 1].

    Returns {"adversarial": float32 (n, C, H, W), "predictions": int64, "robust": bool} with
    robust[i] = the model still classifies image i correctly after all four attacks.
    `settings` (e.g. the checkpoint's identity) join eps and seed in the chunks' settings.json.
    """
    from pyautoattack import AutoAttack

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device

    def attack_chunk(start: int, stop: int) -> dict[str, np.ndarray]:
        xc, yc = x[start:stop].to(device), y[start:stop].to(device)
        adversary = AutoAttack(model, norm=AUTOATTACK_NORMS[norm], eps=eps, version="standard", device=device,
                               seed=seed + start)
        adversary.verbose = False
        x_adv, y_adv = adversary.run_standard_evaluation(xc, yc, batch_size=batch_size)
        return {"adversarial": x_adv.float().cpu().numpy(), "predictions": y_adv.cpu().numpy(),
                "robust": (y_adv == yc).cpu().numpy()}

    try:
        return run_chunks(folder, len(x), chunk_size, attack_chunk, on_chunk,
                          {"attack": f"autoattack-standard-{AUTOATTACK_NORMS[norm]}", "eps": eps,
                           "seed": seed,
                           **(settings or {})})
    finally:
        model.train(was_training)
