"""Image import: a study's adversarial images and their clean versions, from npz files or a
`robustscale evaluate --out` folder, into the database as PNGs (one transaction)."""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from robustscale.data.datasets import DATASETS
from robustscale.errors import RobustscaleError
from robustscale.human_study.config import BATCH_SIZE, N_RATERS
from robustscale.human_study.db import Image, Study

# §4 studies CIFAR-10; npz files without a `classes` array are taken to use its classes.
CIFAR10_CLASSES = DATASETS["cifar10"].classes


@dataclass
class ImageSet:
    images: np.ndarray  # uint8 (N, H, W, C)
    labels: np.ndarray | None
    predictions: np.ndarray | None
    indices: np.ndarray | None
    classes: tuple[str, ...] | None


def read_image_set(path: str | os.PathLike, which: str) -> ImageSet:
    """An npz with `images` (uint8 NHWC or float in [0, 1]) and `labels`, or a `robustscale
    evaluate` output folder (its `<which>.npz`). Raises RobustscaleError naming the file."""
    path = Path(path)
    if path.is_dir():
        path = path / f"{which}.npz"
    if not path.exists():
        raise RobustscaleError(f"{path}: no such file (expected an .npz or an evaluate --out folder)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise RobustscaleError(f"{path}: not a readable .npz file ({type(e).__name__})") from None
    if "images" not in arrays:
        raise RobustscaleError(f"{path}: expected an array named 'images'")
    images = _as_uint8_nhwc(arrays["images"], path)
    n = len(images)
    out = {}
    for key in ("labels", "predictions", "indices"):
        if key in arrays:
            a = arrays[key]
            if a.shape != (n,) or not np.issubdtype(a.dtype, np.integer):
                raise RobustscaleError(f"{path}: '{key}' must be {n} integers (one per image), "
                                       f"got shape {a.shape} dtype {a.dtype}")
            out[key] = a.astype(np.int64)
    classes = tuple(str(c) for c in arrays["classes"]) if "classes" in arrays else None
    return ImageSet(images, out.get("labels"), out.get("predictions"), out.get("indices"), classes)


def _as_uint8_nhwc(images: np.ndarray, path: Path) -> np.ndarray:
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or len(images) == 0:
        raise RobustscaleError(f"{path}: 'images' must be (N, H, W, 1|3) with N > 0, "
                               f"got shape {images.shape}")
    if images.dtype == np.uint8:
        return images
    if np.issubdtype(images.dtype, np.floating):
        if not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
            raise RobustscaleError(f"{path}: float 'images' must lie in [0, 1]")
        return np.round(images * 255).astype(np.uint8)
    raise RobustscaleError(f"{path}: 'images' must be uint8 or float, got {images.dtype}")


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buf, format="PNG")
    return buf.getvalue()


def _read_predictions(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    try:
        a = np.load(path, allow_pickle=False)
        if isinstance(a, np.lib.npyio.NpzFile):
            with a:
                if "predictions" not in a.files:
                    raise RobustscaleError(f"{path}: expected an array named 'predictions'")
                a = a["predictions"]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise RobustscaleError(f"{path}: not a readable .npy/.npz file ({type(e).__name__})") from None
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
        raise RobustscaleError(f"{path}: predictions must be a 1-d integer array")
    return a.astype(np.int64)


def create_study(sessions: sessionmaker[Session], name: str, adversarial, clean,
                 predictions=None, batch_size: int = BATCH_SIZE, raters: int = N_RATERS,
                 total: int | None = None, require_predictions: bool = True,
                 classes: tuple[str, ...] | None = None, attention_checks: float = 0.0) -> dict:
    """Import the adversarial images and their clean versions as study `name`.

    Images the model still classifies correctly (prediction == label) are not attack successes:
    they count as robust and are not shown to raters (§4 studies the 2629 successes only).
    `total`: test images the attack ran on (default: the images given), so that Table 4's
    rescoring knows the robust count when the files hold only the successes. Files that hold
    robust images as well (a `robustscale evaluate` folder) hold every attacked image: their
    count is the total, and another `total` is an error.
    The verdicts are the model's predictions on the saved uint8 images, the images raters see
    (`evaluate` reports the same count as `accuracy_uint8`).
    `attention_checks`: the share of attention checks among the images a rater sees (0: none):
    clean versions of robust images (the model gets them right even attacked, so their label is
    unambiguous), spread evenly through the study, never scored as study images.
    The model's predictions (`predictions`, else the adversarial npz's 'predictions') are
    required: without them robust images cannot be told apart and deceptive images (§4.2) cannot
    be found. `require_predictions=False` imports every image and leaves deceptive/ambiguous
    unknown in the score. `classes`: the class names by label (e.g. `data.datasets.class_names`),
    else the npz files' `classes`, else CIFAR-10's.
    """
    if not name or len(name) > 128 or not all(c.isalnum() or c in "-_." for c in name):
        raise RobustscaleError(f"study name {name!r}: expected 1-128 letters, digits, '-', '_' or '.'")
    if batch_size < 1 or raters < 1:
        raise RobustscaleError("batch_size and raters: expected positive integers")
    adv = read_image_set(adversarial, "adversarial")
    cln = read_image_set(clean, "clean")
    n = len(adv.images)
    if len(cln.images) != n or cln.images.shape != adv.images.shape:
        raise RobustscaleError(f"{clean}: expected {n} clean images of shape {adv.images.shape[1:]} "
                               f"(one per adversarial image), got {cln.images.shape}")
    labels = adv.labels if adv.labels is not None else cln.labels
    if labels is None:
        raise RobustscaleError(f"{adversarial}: expected an array named 'labels'")
    if cln.labels is not None and not np.array_equal(cln.labels, labels):
        raise RobustscaleError(f"{clean}: 'labels' differ from those of {adversarial}")
    preds = _read_predictions(predictions) if predictions is not None else adv.predictions
    if preds is None and require_predictions:
        raise RobustscaleError(f"{adversarial}: expected an array named 'predictions' (the "
                               "model's class per image), a separate predictions file, or "
                               "require_predictions=False")
    if preds is not None and preds.shape != (n,):
        raise RobustscaleError(f"{predictions}: expected {n} predictions (one per image), "
                               f"got {preds.shape[0]}")
    in_files = adv.classes or cln.classes
    if classes is not None and in_files is not None and tuple(classes) != in_files:
        raise RobustscaleError(f"classes: the {len(classes)} names given differ from the {len(in_files)} "
                               f"in {adversarial}")
    classes = tuple(classes) if classes is not None else in_files or CIFAR10_CLASSES
    k = len(classes)
    for what, a in (("labels", labels), ("predictions", preds)):
        if a is not None and ((a < 0) | (a >= k)).any():
            raise RobustscaleError(f"{adversarial}: {what} must lie in 0..{k - 1} ({k} classes; name the "
                                   f"dataset for its classes)")
    indices = adv.indices if adv.indices is not None else np.arange(n)
    keep = np.ones(n, bool) if preds is None else preds != labels
    if total is not None and not keep.all() and int(total) != n:
        raise RobustscaleError(
            f"total {total}: {adversarial} holds every attacked image ({n}, robust ones "
            f"included), so the total is {n}; give total only for files of successful attacks")
    n_total = n if total is None else int(total)
    n_robust = n_total - int(keep.sum())
    if n_robust < 0:
        raise RobustscaleError(f"total {total}: fewer than the {int(keep.sum())} attacked images")
    if not keep.any():
        raise RobustscaleError(f"{adversarial}: no successful attack (every prediction is correct)")
    order = _with_attention_checks(np.flatnonzero(keep), np.flatnonzero(~keep), attention_checks,
                                   name)
    with sessions() as s:
        if s.scalar(select(Study).where(Study.name == name)) is not None:
            raise RobustscaleError(f"study {name!r}: a study of that name already exists")
        study = Study(name=name, classes=list(classes), batch_size=batch_size, n_raters=raters,
                      n_total=n_total, n_robust=n_robust)
        s.add(study)
        s.flush()
        for pos, (i, check) in enumerate(order):
            clean_png = png_bytes(cln.images[i])
            s.add(Image(study_id=study.id, position=pos, index=int(indices[i]), label=int(labels[i]),
                        prediction=None if preds is None else int(preds[i]), attention=check,
                        adversarial_png=clean_png if check else png_bytes(adv.images[i]),
                        clean_png=clean_png))
        s.commit()
        return {"study": name, "images": int(keep.sum()), "robust": n_robust, "total": n_total,
                "attention_checks": len(order) - int(keep.sum()),
                "batches": -(-len(order) // batch_size), "classes": list(classes)}


def _with_attention_checks(attacked: np.ndarray, robust: np.ndarray, rate: float,
                           name: str) -> list[tuple[int, bool]]:
    """(file index, is an attention check) in study order: the attacked images with, at `rate`
    of the whole, robust images spread evenly between them (drawn by a seed from the name)."""
    if not 0 <= rate < 1:
        raise RobustscaleError(f"attention_checks {rate}: expected a share in [0, 1)")
    n_checks = round(rate * len(attacked) / (1 - rate))
    if rate > 0 and n_checks == 0:
        n_checks = 1
    if n_checks > len(robust):
        raise RobustscaleError(f"attention_checks {rate}: {n_checks} attention checks need as many "
                               f"robust images (the model right after the attack), the files "
                               f"hold {len(robust)}")
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    checks = rng.choice(robust, size=n_checks, replace=False)
    # check j goes after attacked image round((j + 1) * n / (k + 1)): evenly spread, never first
    slots = [round((j + 1) * len(attacked) / (n_checks + 1)) for j in range(n_checks)]
    order, j = [], 0
    for pos, i in enumerate(attacked):
        while j < n_checks and slots[j] <= pos:
            order.append((int(checks[j]), True))
            j += 1
        order.append((int(i), False))
    order += [(int(c), True) for c in checks[j:]]
    return order
