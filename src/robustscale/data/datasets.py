"""Readers for the real datasets, from the files their owners publish, without torchvision.

CIFAR-10 / CIFAR-100 (the python-pickle archives), SVHN (the cropped digits' MATLAB files, via
scipy.io), TinyImageNet (tiny-imagenet-200.zip: JPEGs decoded with pillow) and Fashion-MNIST (idx-gz).
An archive is read in place or from the folder it unpacks to. Images come back as uint8 arrays of shape
(N, H, W, C), labels as int64 (N,), the layout of DeepMind's synthetic-data npz files too.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import math
import os
import pickle
import tarfile
import urllib.request
import zipfile
import zlib
from pathlib import Path

import numpy as np

from robustscale.errors import RobustscaleError

NORMS = ("linf", "l2")  # the threat models: L-inf (the paper's) and L2 (DM-Improves-AT, RobustBench)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    shape: tuple[int, int, int]  # (C, H, W)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    eps: dict[str, float]  # default attack radius per norm (NORMS)
    # class names, or None where they live only in the dataset's files (see `class_names`)
    classes: tuple[str, ...] | None
    files: str  # what the owners publish, as an error message names it
    # norms whose default radius no anchor publishes: derived (`derived_l2_eps`), and said so with a warning
    derived_eps: tuple[str, ...] = ()
    # training crops and flips its images (data.augment); DM-Improves-AT does not for SVHN (`core/data/
    # svhn.py`: train_transform = test_transform): a flipped digit is another digit or none
    augment: bool = True


def derived_l2_eps(linf_eps: float, shape: tuple[int, int, int]) -> float:
    """An L2 radius for a dataset no anchor gives one: the anchors' L2 : L-inf ratio on 3x32x32 images
    (128/255 : 8/255, DM-Improves-AT / RobustBench), times sqrt(pixels / 3072) (an L2 ball's radius grows
    with the square root of the dimension for the same per-pixel change)."""
    c, h, w = shape
    return linf_eps * (128 / 8) * math.sqrt(c * h * w / (3 * 32 * 32))


# CIFAR-100's 100 fine labels, in the order of its `meta` file's fine_label_names (the label indices)
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup",
    "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house",
    "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man",
    "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid",
    "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine",
    "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew",
    "skunk", "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower",
    "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor", "train", "trout",
    "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)

# Statistics and radii: DM-Improves-AT (wzekai99/DM-Improves-AT @ b390f25):
# `core/models/wideresnetwithswish.py` and `ti_wideresnetwithswish.py` (CIFAR100_/SVHN_/TINY_MEAN, _STD:
# the normalisation inside its models), the README's checkpoint table (L-inf 8/255 on all four sets, L2
# 128/255 on CIFAR-10; RobustBench's CIFAR-100 L2 is 0.5 = 128/255 too). TinyImageNet is published under
# L-inf only, so its L2 radius is derived.
_32 = (3, 32, 32)
DATASETS = {
    "cifar10": DatasetInfo(
        "cifar10", 10, _32, (0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616),
        {"linf": 8 / 255, "l2": 128 / 255},  # paper §3.1 / RobustBench
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        "cifar-10-python.tar.gz or the cifar-10-batches-py folder"),
    "cifar100": DatasetInfo(
        "cifar100", 100, _32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
        {"linf": 8 / 255, "l2": 128 / 255}, CIFAR100_CLASSES,
        "cifar-100-python.tar.gz or the cifar-100-python folder"),
    "svhn": DatasetInfo(
        "svhn", 10, _32, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5),
        {"linf": 8 / 255, "l2": 128 / 255}, tuple("0123456789"),  # labels: the digit (the file's 10 is 0)
        "train_32x32.mat and test_32x32.mat", augment=False),
    "tiny-imagenet": DatasetInfo(
        "tiny-imagenet", 200, (3, 64, 64), (0.4802, 0.4481, 0.3975), (0.2302, 0.2265, 0.2262),
        {"linf": 8 / 255, "l2": derived_l2_eps(8 / 255, (3, 64, 64))}, None,
        "tiny-imagenet-200.zip or the tiny-imagenet-200 folder", derived_eps=("l2",)),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist", 10, (1, 28, 28), (0.2860,), (0.3530,),
        # the usual L-inf radius for (Fashion-)MNIST-scale robustness; no anchor gives an L2 one
        {"linf": 0.1, "l2": derived_l2_eps(0.1, (1, 28, 28))},
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
         "Ankle boot"),
        "the four idx files (train-images-idx3-ubyte[.gz], ...)", derived_eps=("l2",)),
}

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian package dataset-fashion-mnist
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_CACHE = Path(os.path.expanduser("~/.cache/robustscale/cifar10"))


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise RobustscaleError(f"unknown dataset {name!r}: expected one of {', '.join(DATASETS)}")
    return DATASETS[name]


def check_norm(norm: str) -> str:
    if norm not in NORMS:
        raise RobustscaleError(f"norm: expected one of {', '.join(NORMS)}, got {norm!r}")
    return norm


def default_eps(name: str, norm: str = "linf") -> float:
    """The dataset's default attack radius under `norm` ("linf" or "l2")."""
    return dataset_info(name).eps[check_norm(norm)]


def eps_note(name: str, norm: str) -> str | None:
    """Why the default radius of (name, norm) is not an anchor's, or None where it is: for a `warning:`."""
    info = dataset_info(name)
    if check_norm(norm) not in info.derived_eps:
        return None
    return (f"no published {norm} radius for {name}: using {info.eps[norm]:.4g}, the 3x32x32 sets' 128/255 "
            f"scaled by sqrt({'x'.join(map(str, info.shape))} / 3x32x32) (pass eps to choose)")


def class_names(name: str, data_dir: str | os.PathLike | None = None) -> tuple[str, ...]:
    """The dataset's class names by label; TinyImageNet's come from its files (wnids.txt, words.txt)."""
    info = dataset_info(name)
    if info.classes is not None:
        return info.classes
    with _files(name, data_dir) as files:
        return _tiny_imagenet_classes(files)[1]


def load_dataset(name: str, split: str = "train", data_dir: str | os.PathLike | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 (N, H, W, C), labels int64 (N,)) of a real dataset split.

    TinyImageNet's "test" split is its labelled validation set (its test set has no labels), as
    DM-Improves-AT evaluates it.
    """
    dataset_info(name)
    if split not in ("train", "test"):
        raise RobustscaleError(f"unknown split {split!r}: expected 'train' or 'test'")
    if name == "fashion-mnist":
        return _load_fashion_mnist(split, Path(data_dir) if data_dir else FASHION_MNIST_DIR)
    if name == "cifar10":
        return _load_cifar10(split, Path(data_dir) if data_dir else None)
    if name == "svhn":
        return _load_svhn(split, _need_dir(name, data_dir))
    with _files(name, data_dir) as files:
        return _LOADERS[name](split, files)


FASHION_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                       "t10k-labels-idx1-ubyte")
FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"


def check_dataset(name: str, data_dir: str | os.PathLike | None = None, *, option: str = "data_dir") -> None:
    """Fail fast, before any work, where a dataset's files are not on disk.

    Only looks for the files (no reading), so a command can call it first and stop within a
    second. `option` is how the caller's user names the folder (the CLI passes `--data-dir`).
    CIFAR-10 without a folder is downloaded on first use, so only a given folder is checked.
    """
    info = dataset_info(name)
    if name == "fashion-mnist":
        folder = Path(data_dir) if data_dir else FASHION_MNIST_DIR
        missing = [stem for stem in FASHION_MNIST_FILES
                   if not (folder / f"{stem}.gz").is_file() and not (folder / stem).is_file()]
        if missing:
            raise RobustscaleError(
                f"{option}: no Fashion-MNIST in {folder} (missing {missing[0]}[.gz]); install it with "
                f"`sudo apt-get install {FASHION_MNIST_PACKAGE}` (Debian) or pass {option} a folder "
                f"holding the four idx files")
    elif name == "cifar10":
        if data_dir is None:
            return
        folder = Path(data_dir)
        if not any((c / "test_batch").is_file() for c in (folder, folder / "cifar-10-batches-py")) \
                and not (folder / "cifar-10-python.tar.gz").is_file():
            raise RobustscaleError(f"{option}: no CIFAR-10 in {folder} (expected {info.files})")
    elif name == "svhn":
        folder = _need_dir(name, data_dir, option)
        for split in ("train", "test"):
            if not (folder / f"{split}_32x32.mat").is_file():
                raise RobustscaleError(f"{option}: no SVHN in {folder} (missing {split}_32x32.mat)")
    else:
        _files(name, data_dir, option).close()


def _need_dir(name: str, data_dir, option: str = "data_dir") -> Path:
    if data_dir is None:
        raise RobustscaleError(f"{option}: {name} is read from {dataset_info(name).files}; pass the folder "
                               f"holding them (no download here)")
    return Path(data_dir)


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


# --- archives or their extracted folders (CIFAR-100, TinyImageNet) -------------------------

# (folder inside the archive, archive file, a member that marks an extracted folder)
_LAYOUTS = {"cifar100": ("cifar-100-python", "cifar-100-python.tar.gz", "meta"),
            "tiny-imagenet": ("tiny-imagenet-200", "tiny-imagenet-200.zip", "wnids.txt")}


class _Files:
    """A dataset's files by path relative to its top folder, from the owners' archive (.tar.gz or
    .zip, read in place: nothing is extracted) or from the folder it unpacks to."""

    def __init__(self, folder: Path | None, archive: Path | None, top: str):
        self.folder, self.archive, self.top = folder, archive, top
        self._tar = self._zip = None
        try:
            if archive is not None and archive.suffix == ".zip":
                self._zip = zipfile.ZipFile(archive)
                self._names = set(self._zip.namelist())
            elif archive is not None:
                self._tar = tarfile.open(archive)
                self._names = {m.name for m in self._tar.getmembers() if m.isfile()}
        except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, zlib.error) as e:
            raise RobustscaleError(f"{archive}: truncated or not a {archive.name} archive ({e})") from None

    def where(self, name: str) -> str:
        return f"{self.archive}:{self.top}/{name}" if self.archive else str(self.folder / name)

    def names(self, prefix: str) -> list[str]:
        """Files under `prefix` (relative paths), sorted."""
        if self.archive is None:
            base = self.folder / prefix
            return sorted(str(p.relative_to(self.folder)) for p in base.rglob("*") if p.is_file())
        head = f"{self.top}/{prefix}"
        return sorted(n[len(self.top) + 1:] for n in self._names if n.startswith(head))

    def read(self, name: str) -> bytes:
        try:
            if self.archive is None:
                return (self.folder / name).read_bytes()
            member = f"{self.top}/{name}"
            if member not in self._names:
                raise FileNotFoundError(f"no member {member}")
            if self._zip is not None:
                return self._zip.read(member)
            return self._tar.extractfile(member).read()
        except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, zlib.error) as e:
            raise RobustscaleError(f"{self.where(name)}: missing or truncated ({e})") from None

    def close(self) -> None:
        for f in (self._tar, self._zip):
            if f is not None:
                f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _files(name: str, data_dir, option: str = "data_dir") -> _Files:
    """The files of `name` in data_dir: its extracted folder (data_dir/<top> or data_dir itself), else its
    archive."""
    folder = _need_dir(name, data_dir, option)
    top, archive, marker = _LAYOUTS[name]
    for candidate in (folder / top, folder):
        if (candidate / marker).is_file():
            return _Files(candidate, None, top)
    if (folder / archive).is_file():
        return _Files(None, folder / archive, top)
    raise RobustscaleError(f"{option}: no {name} in {folder} (expected {dataset_info(name).files})")


def _unpickle(files: _Files, name: str) -> dict:
    try:
        return pickle.loads(files.read(name), encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise RobustscaleError(f"{files.where(name)}: truncated or not a CIFAR python pickle ({e})") from None


def _load_cifar100(split: str, files: _Files) -> tuple[np.ndarray, np.ndarray]:
    """`train` / `test` pickles: `data` (N, 3072) uint8 rows of R, G, B planes, `fine_labels`; the
    class names are `meta`'s `fine_label_names`, checked to be CIFAR-100's."""
    meta = _unpickle(files, "meta")
    names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta.get(b"fine_label_names", ()))
    if names != CIFAR100_CLASSES:
        raise RobustscaleError(f"{files.where('meta')}: expected CIFAR-100's 100 fine_label_names, found "
                               f"{len(names)} different ones")
    batch = _unpickle(files, split)
    try:
        images = np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"fine_labels"], np.int64)
    except (KeyError, ValueError) as e:
        raise RobustscaleError(f"{files.where(split)}: expected `data` (N x 3072) and `fine_labels` "
                               f"({e!r})") from None
    return _checked(images.transpose(0, 2, 3, 1).copy(), labels, "cifar100", files.where(split))


def _load_svhn(split: str, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """`<split>_32x32.mat` (MATLAB v5): X uint8 (32, 32, 3, N), y (N, 1) in 1..10, where 10 is the digit 0."""
    import scipy.io

    path = folder / f"{split}_32x32.mat"
    if not path.is_file():
        raise RobustscaleError(f"{path}: missing (SVHN's {split}_32x32.mat, the cropped digits)")
    try:
        mat = scipy.io.loadmat(path, variable_names=("X", "y"))
        x, y = mat["X"], np.asarray(mat["y"]).reshape(-1)
    except Exception as e:  # scipy raises several types (ValueError, MatReadError, ...) on a damaged file
        raise RobustscaleError(f"{path}: truncated or not SVHN's {split}_32x32.mat ({e!r})") from None
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != len(y):
        raise RobustscaleError(f"{path}: expected X uint8 (32, 32, 3, N) and y (N, 1), found X {x.dtype} "
                               f"{x.shape}, y {y.shape}")
    if len(y) and (y.min() < 1 or y.max() > 10):
        raise RobustscaleError(f"{path}: expected labels y in 1..10, found {y.min()}..{y.max()}")
    return _checked(x.transpose(3, 0, 1, 2).copy(), (y % 10).astype(np.int64), "svhn", str(path))


def _tiny_imagenet_classes(files: _Files) -> tuple[list[str], tuple[str, ...]]:
    """(wnids in wnids.txt's order: label i is line i, their names from words.txt)."""
    wnids = files.read("wnids.txt").decode().split()
    if len(wnids) != 200 or len(set(wnids)) != 200:
        raise RobustscaleError(f"{files.where('wnids.txt')}: expected 200 distinct wnids, found "
                               f"{len(set(wnids))}")
    lines = files.read("words.txt").decode().splitlines()
    words = dict(line.split("\t", 1) for line in lines if "\t" in line)
    missing = [w for w in wnids if w not in words]
    if missing:
        raise RobustscaleError(f"{files.where('words.txt')}: no name for {missing[0]} "
                               f"({len(missing)} wnids unnamed)")
    return wnids, tuple(words[w].strip() for w in wnids)


def _decode_jpegs(files: _Files, names: list[str]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    images = np.empty((len(names), 64, 64, 3), np.uint8)
    for i, name in enumerate(names):
        try:
            with Image.open(io.BytesIO(files.read(name))) as im:
                images[i] = np.asarray(im.convert("RGB"))  # a few of its JPEGs are greyscale
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise RobustscaleError(f"{files.where(name)}: not a 64x64 JPEG ({e})") from None
    return images


def _load_tiny_imagenet(split: str, files: _Files) -> tuple[np.ndarray, np.ndarray]:
    """train/<wnid>/images/*.JPEG; the test split is val/images/*.JPEG labelled by val/val_annotations.txt."""
    wnids, _ = _tiny_imagenet_classes(files)
    index = {w: i for i, w in enumerate(wnids)}
    if split == "train":
        names, labels = [], []
        for w in wnids:
            found = [n for n in files.names(f"train/{w}/images/") if n.endswith(".JPEG")]
            names += found
            labels += [index[w]] * len(found)
    else:
        lines = files.read("val/val_annotations.txt").decode().splitlines()
        rows = [line.split("\t") for line in lines if line]
        bad = [r for r in rows if len(r) < 2 or r[1] not in index]
        if bad:
            raise RobustscaleError(f"{files.where('val/val_annotations.txt')}: expected '<file>\\t<wnid>...' "
                                   f"lines with wnids of wnids.txt, found {bad[0][:2]}")
        names, labels = [f"val/images/{r[0]}" for r in rows], [index[r[1]] for r in rows]
    return _checked(_decode_jpegs(files, names), np.asarray(labels, np.int64), "tiny-imagenet",
                    files.where(split))


def _checked(images: np.ndarray, labels: np.ndarray, name: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    info = dataset_info(name)
    c, h, w = info.shape
    if images.shape[1:] != (h, w, c) or len(images) != len(labels) or not len(labels):
        raise RobustscaleError(f"{where}: expected {name} images of {h}x{w}x{c} with one label each, found "
                               f"{images.shape} and {labels.shape}")
    if labels.min() < 0 or labels.max() >= info.num_classes:
        raise RobustscaleError(f"{where}: expected labels in 0..{info.num_classes - 1}, found "
                               f"{labels.min()}..{labels.max()}")
    return images, labels


_LOADERS = {"cifar100": _load_cifar100, "tiny-imagenet": _load_tiny_imagenet}
