"""Small copies of the owners' dataset files, in their real formats, for the real loaders to read.

CIFAR-100: `cifar-100-python.tar.gz` holding python pickles `train`, `test` (keys filenames, batch_label,
fine_labels, coarse_labels, data as N x 3072 uint8) and `meta` (fine_label_names, coarse_label_names).
SVHN: `train_32x32.mat` / `test_32x32.mat`, MATLAB v5, X uint8 32x32x3xN and y N x 1 in 1..10.
TinyImageNet: `tiny-imagenet-200.zip` with wnids.txt, words.txt, train/<wnid>/images/*.JPEG and
<wnid>_boxes.txt, val/images/*.JPEG with val/val_annotations.txt, and test/images/*.JPEG.
Images carry a per-class colour under noise, so a model can learn something from them.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from robustscale.data.datasets import CIFAR100_CLASSES

ARCHIVES = {"cifar100": "cifar-100-python.tar.gz", "svhn": "train_32x32.mat",
            "tiny-imagenet": "tiny-imagenet-200.zip"}


def _images(labels: np.ndarray, size: int, num_classes: int, seed: int) -> np.ndarray:
    """uint8 (N, size, size, 3): a colour per class plus noise."""
    rng = np.random.default_rng(seed)
    colours = np.random.default_rng(1234).integers(40, 216, (num_classes, 3))
    noise = rng.integers(-40, 41, (len(labels), size, size, 3))
    return np.clip(colours[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8)


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_cifar100(folder: Path, n_train: int = 300, n_test: int = 100) -> Path:
    """`folder/cifar-100-python.tar.gz` in the official layout; labels cycle through all 100 classes."""
    path = Path(folder) / "cifar-100-python.tar.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for split, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
            fine = np.arange(n) % 100
            images = _images(fine, 32, 100, seed)
            batch = {b"batch_label": f"{split} batch".encode(),
                     b"filenames": [f"img_{i}.png".encode() for i in range(n)],
                     b"fine_labels": fine.tolist(), b"coarse_labels": (fine // 5).tolist(),
                     b"data": images.transpose(0, 3, 1, 2).reshape(n, 3072)}  # R, G, B planes per row
            _tar_add(tar, f"cifar-100-python/{split}", pickle.dumps(batch, protocol=2))
        meta = {b"fine_label_names": [c.encode() for c in CIFAR100_CLASSES],
                b"coarse_label_names": [f"superclass_{i}".encode() for i in range(20)]}
        _tar_add(tar, "cifar-100-python/meta", pickle.dumps(meta, protocol=2))
    return path


def make_svhn(folder: Path, n_train: int = 300, n_test: int = 100) -> Path:
    """`folder/train_32x32.mat` and `test_32x32.mat`; y in 1..10 (10 = the digit 0)."""
    import scipy.io

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
        digits = np.arange(n) % 10
        x = _images(digits, 32, 10, seed).transpose(1, 2, 3, 0)  # 32 x 32 x 3 x N, as the owners store it
        y = np.where(digits == 0, 10, digits).astype(np.uint8)[:, None]
        scipy.io.savemat(folder / f"{split}_32x32.mat", {"X": x, "y": y}, format="5")
    return folder


def tiny_wnids() -> list[str]:
    return [f"n{1440764 + 7 * i:08d}" for i in range(200)]


def make_tiny_imagenet(folder: Path, per_class: int = 2, n_val: int = 100, n_test: int = 4) -> Path:
    """`folder/tiny-imagenet-200.zip`: 200 wnids (not sorted: label = line of wnids.txt), words.txt with
    more synsets than used, `per_class` train JPEGs per class, `n_val` labelled val JPEGs."""
    from PIL import Image

    def jpeg(array: np.ndarray, grey: bool = False) -> bytes:
        out = io.BytesIO()
        im = Image.fromarray(array)
        (im.convert("L") if grey else im).save(out, "JPEG", quality=95)
        return out.getvalue()

    wnids = tiny_wnids()[::-1]
    path = Path(folder) / "tiny-imagenet-200.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    top = "tiny-imagenet-200"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{top}/wnids.txt", "\n".join(wnids) + "\n")
        words = [f"{w}\tthing {i}, object {i}" for i, w in enumerate(wnids)] + ["n99999999\tunused synset"]
        zf.writestr(f"{top}/words.txt", "\n".join(words) + "\n")
        labels = np.repeat(np.arange(200), per_class)
        for k, (label, image) in enumerate(zip(labels, _images(labels, 64, 200, 0))):
            w = wnids[label]
            zf.writestr(f"{top}/train/{w}/images/{w}_{k % per_class}.JPEG", jpeg(image, grey=k == 3))
        for w in wnids:
            zf.writestr(f"{top}/train/{w}/{w}_boxes.txt", "")
        val_labels = (np.arange(n_val) * 7) % 200
        rows = []
        for i, (label, image) in enumerate(zip(val_labels, _images(val_labels, 64, 200, 1))):
            zf.writestr(f"{top}/val/images/val_{i}.JPEG", jpeg(image))
            rows.append(f"val_{i}.JPEG\t{wnids[label]}\t0\t0\t63\t63")
        zf.writestr(f"{top}/val/val_annotations.txt", "\n".join(rows) + "\n")
        for i, image in enumerate(_images(np.zeros(n_test, int), 64, 200, 2)):
            zf.writestr(f"{top}/test/images/test_{i}.JPEG", jpeg(image))
    return path


MAKERS = {"cifar100": make_cifar100, "svhn": make_svhn, "tiny-imagenet": make_tiny_imagenet}


def run(*args) -> tuple[int, str, str]:
    """`robustscale ARGS` through the real entry point `robustscale.cli.main`, in this process (a new
    interpreter per command would cost seconds of imports each): (exit code, stdout, stderr)."""
    from robustscale.cli import main

    out, err, code = io.StringIO(), io.StringIO(), 0
    old = sys.argv
    sys.argv = ["robustscale", *map(str, args)]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as e:
        code = e.code or 0
    finally:
        sys.argv = old
    return code, out.getvalue(), err.getvalue()
