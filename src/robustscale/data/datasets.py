"""Readers for the real datasets: CIFAR-10 (official python archive) and Fashion-MNIST (idx-gz).

No torchvision: both formats are read with numpy. Images come back as uint8 arrays of shape
(N, H, W, C), labels as int64 (N,), the layout of DeepMind's synthetic-data npz files too.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import pickle
import tarfile
import urllib.request
from pathlib import Path

import numpy as np

from robustscale.errors import RobustscaleError


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    name: str
    classes: tuple[str, ...]
    shape: tuple[int, int, int]  # (C, H, W)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    default_eps: float  # L-inf radius used for this dataset's attacks


DATASETS = {
    "cifar10": DatasetInfo(
        "cifar10",
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        (3, 32, 32), (0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616),
        8 / 255,  # paper §3.1 / RobustBench
    ),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
         "Ankle boot"),
        (1, 28, 28), (0.2860,), (0.3530,),
        0.1,  # the usual L-inf radius for (Fashion-)MNIST-scale robustness
    ),
}

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian package dataset-fashion-mnist
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_CACHE = Path(os.path.expanduser("~/.cache/robustscale/cifar10"))


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise RobustscaleError(f"unknown dataset {name!r}: expected one of {', '.join(DATASETS)}")
    return DATASETS[name]


def load_dataset(name: str, split: str = "train", data_dir: str | os.PathLike | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 (N, H, W, C), labels int64 (N,)) of a real dataset split."""
    dataset_info(name)
    if split not in ("train", "test"):
        raise RobustscaleError(f"unknown split {split!r}: expected 'train' or 'test'")
    if name == "fashion-mnist":
        return _load_fashion_mnist(split, Path(data_dir) if data_dir else FASHION_MNIST_DIR)
    return _load_cifar10(split, Path(data_dir) if data_dir else None)


FASHION_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                       "t10k-labels-idx1-ubyte")
FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"


def check_dataset(name: str, data_dir: str | os.PathLike | None = None, *, option: str = "data_dir") -> None:
    """Fail fast, before any work, where a dataset's files are not on disk.

    Only looks for the files (no reading), so a command can call it first and stop within a
    second. `option` is how the caller's user names the folder (the CLI passes `--data-dir`).
    CIFAR-10 without a folder is downloaded on first use, so only a given folder is checked.
    """
    dataset_info(name)
    if name == "fashion-mnist":
        folder = Path(data_dir) if data_dir else FASHION_MNIST_DIR
        missing = [stem for stem in FASHION_MNIST_FILES
                   if not (folder / f"{stem}.gz").is_file() and not (folder / stem).is_file()]
        if missing:
            raise RobustscaleError(
                f"{option}: no Fashion-MNIST in {folder} (missing {missing[0]}[.gz]); install it with "
                f"`sudo apt-get install {FASHION_MNIST_PACKAGE}` (Debian) or pass {option} a folder "
                f"holding the four idx files")
    elif data_dir is not None:
        folder = Path(data_dir)
        if not any((c / "test_batch").is_file() for c in (folder, folder / "cifar-10-batches-py")) \
                and not (folder / "cifar-10-python.tar.gz").is_file():
            raise RobustscaleError(f"{option}: no CIFAR-10 in {folder} (expected cifar-10-python.tar.gz or "
                                   f"the cifar-10-batches-py folder)")


def images_to_tensor(images: np.ndarray, device=None):
    """uint8 (N, H, W, C) -> float32 (N, C, H, W) in [0, 1]."""
    import torch

    x = torch.from_numpy(np.array(images, copy=True)).to(device)  # the readers return read-only views
    return x.permute(0, 3, 1, 2).float().div_(255)


# --- Fashion-MNIST -------------------------------------------------------------------------

def read_idx(path: Path) -> np.ndarray:
    """Read an idx file (optionally gzipped): magic 0x0000 0x08 ndim, big-endian dims, uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise RobustscaleError(f"{path}: cannot read idx file ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise RobustscaleError(f"{path}: not an idx file of uint8 (bad magic number)")
    ndim = raw[3]
    dims = np.frombuffer(raw, ">u4", count=ndim, offset=4).astype(int)
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise RobustscaleError(f"{path}: truncated idx file: expected {int(np.prod(dims))} values, "
                               f"found {data.size}")
    return data.reshape(dims)


def _find(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.exists():
            return candidate
    raise RobustscaleError(f"{folder}: missing {stem}[.gz] (install the Debian package "
                           f"{FASHION_MNIST_PACKAGE} or pass data_dir)")


def _load_fashion_mnist(split: str, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(_find(folder, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(folder, f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
    if images.ndim != 3 or len(images) != len(labels):
        raise RobustscaleError(f"{folder}: {split} images {images.shape} and labels {labels.shape} "
                               f"do not match")
    return images[..., None], labels


# --- CIFAR-10 ------------------------------------------------------------------------------

def _cifar10_batches_dir(data_dir: Path | None) -> Path:
    """Find (or download and unpack) the `cifar-10-batches-py` folder."""
    folder = data_dir or CIFAR10_CACHE
    for candidate in (folder / "cifar-10-batches-py", folder):
        if (candidate / "test_batch").exists():
            return candidate
    archive = folder / "cifar-10-python.tar.gz"
    if not archive.exists():
        if data_dir is not None:
            raise RobustscaleError(f"{data_dir}: no CIFAR-10 found (expected cifar-10-python.tar.gz "
                                   f"or the cifar-10-batches-py folder)")
        _download(CIFAR10_URL, archive)
    if _md5(archive) != CIFAR10_MD5:
        raise RobustscaleError(f"{archive}: checksum mismatch (expected md5 {CIFAR10_MD5})")
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    return folder / "cifar-10-batches-py"


def _download(url: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".part")
    try:
        urllib.request.urlretrieve(url, tmp)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise RobustscaleError(f"data_dir: cannot download {url} ({e}); download it elsewhere and "
                               f"pass its folder as data_dir") from None
    tmp.replace(dest)


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_cifar10(split: str, data_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    folder = _cifar10_batches_dir(data_dir)
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    images, labels = [], []
    for name in names:
        try:
            with open(folder / name, "rb") as f:
                batch = pickle.load(f, encoding="bytes")
            images.append(np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch[b"labels"], np.int64))
        except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError) as e:
            raise RobustscaleError(f"{folder / name}: not a CIFAR-10 python batch ({e})") from None
    return np.concatenate(images).transpose(0, 2, 3, 1).copy(), np.concatenate(labels)
