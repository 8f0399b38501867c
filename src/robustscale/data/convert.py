"""Building shard stores: npz files (DeepMind format) or a real dataset -> `.npy` shards + manifest.

The paper trains on up to 300M synthetic CIFAR-10 images (§3.1, App. E), far more than RAM:
`convert` streams npz files (`image` uint8 N×H×W×C, `label`) member by member through zipfile in
chunks, checks label ranges, and writes each shard sequentially while hashing it, so the sha256
checksums in the manifest are those of the bytes written, and the store counts as verified when
it appears (`manifest["verified"]`). Reading is `robustscale.data.store`.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from robustscale.data.store import FORMAT, MANIFEST, read_npy_header, verified_now
from robustscale.errors import RobustscaleError
from robustscale.fileio import write_json
from robustscale.progress import progress_bar

# ~3 GB of 32x32x3 images per shard: a 300M-image store (§3.1) is 300 shard pairs.
DEFAULT_SHARD_SIZE = 1_000_000
# Rows read per step while streaming: bounds convert's memory (~100 MB of 32x32x3 images).
DEFAULT_CHUNK = 32_768
# Synthetic CIFAR-10 (§3.1, Table 1) has CIFAR-10's 10 classes.
DEFAULT_NUM_CLASSES = 10


def _read_rows(f: BinaryIO, dtype: np.dtype, row_shape: tuple[int, ...], n: int, where: str
               ) -> np.ndarray:
    nbytes = n * int(np.prod(row_shape, dtype=np.int64)) * dtype.itemsize
    raw = f.read(nbytes)
    if len(raw) != nbytes:
        raise RobustscaleError(f"{where}: truncated: expected {nbytes} more bytes, "
                               f"found {len(raw)}")
    return np.frombuffer(raw, dtype).reshape((n, *row_shape))


# --- inputs: each yields (images uint8 NHWC, labels int64) chunks ---------------------------

class _NpzChunks:
    """One DeepMind-format npz (`image`, `label` members), read chunkwise without loading it."""

    def __init__(self, path: Path):
        self.path = path
        try:
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
                for key in ("image", "label"):
                    if f"{key}.npy" not in names:
                        found = sorted(n.removesuffix(".npy") for n in names)
                        raise RobustscaleError(f"{path}: expected npz members 'image', 'label'; "
                                               f"found {found}")
                with zf.open("image.npy") as f:
                    self.image_shape, image_dtype = read_npy_header(f, f"{path}:image")
                with zf.open("label.npy") as f:
                    label_shape, self.label_dtype = read_npy_header(f, f"{path}:label")
        except (zipfile.BadZipFile, OSError) as e:
            raise RobustscaleError(f"{path}: not a readable npz file ({e})") from None
        if image_dtype != np.uint8 or len(self.image_shape) != 4:
            raise RobustscaleError(f"{path}:image: expected uint8 of shape (N, H, W, C), found "
                                   f"{image_dtype} {self.image_shape}")
        if self.label_dtype.kind not in "iu" or len(label_shape) != 1:
            raise RobustscaleError(f"{path}:label: expected integer labels of shape (N,), found "
                                   f"{self.label_dtype} {label_shape}")
        if label_shape[0] != self.image_shape[0]:
            raise RobustscaleError(f"{path}: {self.image_shape[0]} images but "
                                   f"{label_shape[0]} labels")
        self.count, self.shape = self.image_shape[0], self.image_shape[1:]

    def chunks(self, chunk: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        where = str(self.path)
        try:
            with zipfile.ZipFile(self.path) as zf, zf.open("image.npy") as fi, \
                    zf.open("label.npy") as fl:
                read_npy_header(fi, f"{where}:image")
                read_npy_header(fl, f"{where}:label")
                for start in range(0, self.count, chunk):
                    n = min(chunk, self.count - start)
                    images = _read_rows(fi, np.dtype(np.uint8), self.shape, n, f"{where}:image")
                    labels = _read_rows(fl, self.label_dtype, (), n, f"{where}:label")
                    yield images, labels.astype(np.int64)
        except (zipfile.BadZipFile, EOFError, OSError) as e:  # bad CRC, truncated deflate stream
            raise RobustscaleError(f"{where}: corrupt npz file ({e})") from None


class _DatasetChunks:
    """An in-memory split of a real dataset (the largest, TinyImageNet's 100k 64x64 images, is 1.2 GB)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, path: str):
        self.images, self.labels, self.path = images, labels, path
        self.count, self.shape = len(images), tuple(images.shape[1:])

    def chunks(self, chunk: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, self.count, chunk):
            yield self.images[start:start + chunk], self.labels[start:start + chunk]


def _open_sources(src: str | os.PathLike, split: str, data_dir: str | os.PathLike | None):
    from robustscale.data.datasets import DATASETS, load_dataset

    if str(src) in DATASETS:
        images, labels = load_dataset(str(src), split, data_dir)
        return [_DatasetChunks(images, labels, f"{src}:{split}")], DATASETS[str(src)].num_classes
    path = Path(src)
    if path.is_dir():
        files = sorted(path.glob("*.npz"))
        if not files:
            raise RobustscaleError(f"{path}: expected .npz files in this folder, found none")
    elif path.is_file():
        files = [path]
    else:
        raise RobustscaleError(f"{src}: expected an .npz file, a folder of them, or one of "
                               f"{', '.join(DATASETS)}")
    sources = [_NpzChunks(f) for f in files]
    for s in sources[1:]:
        if s.shape != sources[0].shape:
            raise RobustscaleError(f"{s.path}: image shape {s.shape} differs from "
                                   f"{sources[0].path}'s {sources[0].shape}")
    return sources, None


# --- writing ---------------------------------------------------------------------------------

class _ShardWriter:
    """Writes consecutive rows into fixed-size npy shards, hashing bytes as they are written."""

    def __init__(self, folder: Path, total: int, shape: tuple[int, ...], shard_size: int):
        self.folder, self.shape = folder, shape
        self.sizes = [min(shard_size, total - s) for s in range(0, total, shard_size)]
        self.shards: list[dict] = []
        self._files = None
        self._left = 0

    def _open_next(self) -> None:
        i = len(self.shards)
        count = self.sizes[i]
        entry = {"images": f"images-{i:05d}.npy", "labels": f"labels-{i:05d}.npy", "count": count}
        self._files = []
        for key, dtype, shape in (("images", np.uint8, (count, *self.shape)),
                                  ("labels", np.int64, (count,))):
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                header, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                         "fortran_order": False, "shape": shape})
            f = open(self.folder / entry[key], "wb")
            f.write(header.getvalue())
            self._files.append((f, hashlib.sha256(header.getvalue())))
        self.shards.append(entry)
        self._left = count

    def write(self, images: np.ndarray, labels: np.ndarray) -> None:
        while len(images):
            if self._left == 0:
                self._open_next()
            n = min(self._left, len(images))
            for (f, digest), block in zip(self._files, (images[:n], labels[:n])):
                data = memoryview(np.ascontiguousarray(block)).cast("B")
                f.write(data)
                digest.update(data)
            images, labels, self._left = images[n:], labels[n:], self._left - n
            if self._left == 0:
                self._close_current()

    def _close_current(self) -> None:
        entry = self.shards[-1]
        for key, (f, digest) in zip(("images", "labels"), self._files):
            f.close()
            entry[f"{key}_sha256"] = digest.hexdigest()
        self._files = None


def convert(src: str | os.PathLike, out: str | os.PathLike, name: str | None = None,
            fid: float | None = None, shard_size: int = DEFAULT_SHARD_SIZE,
            num_classes: int | None = None, split: str = "train",
            data_dir: str | os.PathLike | None = None, chunk_size: int = DEFAULT_CHUNK,
            progress: bool = False) -> dict:
    """Convert an npz file, a folder of npz files or a real dataset into a shard store.

    Parameters
    ----------
    src: `X.npz` (DeepMind format: `image` uint8 N×H×W×C, `label` ints), a folder of them
        (concatenated in name order), or a dataset name (`cifar10`, `cifar100`, `svhn`,
        `tiny-imagenet`, `fashion-mnist`).
    out: the store folder to create; it must not exist (or be empty).
    name, fid: the source's name (default: src's stem) and its FID if known (Table 1).
    shard_size: images per shard; num_classes: labels must lie in [0, num_classes)
        (default: the dataset's, else 10 for synthetic CIFAR-10).
    split, data_dir: for dataset names, as in `load_dataset`.
    chunk_size: rows held in memory at once while streaming.

    Returns
    -------
    The manifest (also written to `out/manifest.json`). The store appears atomically: it is
    built in a temp folder beside `out` and renamed when complete.
    """
    if shard_size < 1 or chunk_size < 1:
        raise RobustscaleError(f"shard_size and chunk_size: expected >= 1, got {shard_size}, "
                               f"{chunk_size}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RobustscaleError(f"{out}: expected a new or empty folder for the store")
    sources, dataset_classes = _open_sources(src, split, data_dir)
    is_dataset = dataset_classes is not None
    num_classes = num_classes or dataset_classes or DEFAULT_NUM_CLASSES
    total = sum(s.count for s in sources)
    if total == 0:
        raise RobustscaleError(f"{src}: expected at least one image, found none")
    shape = sources[0].shape
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        writer = _ShardWriter(tmp, total, shape, shard_size)
        with progress_bar(total, f"converting {Path(str(src)).name}", enabled=progress) as advance:
            for source in sources:
                for images, labels in source.chunks(chunk_size):
                    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
                        raise RobustscaleError(f"{source.path}:label: expected labels in "
                                               f"[0, {num_classes}), found "
                                               f"{labels.min()}..{labels.max()}")
                    writer.write(images, labels)
                    advance(len(labels))
        manifest = {
            "format": FORMAT,
            "name": name or (str(src) if is_dataset else Path(src).stem),
            "fid": None if fid is None else float(fid),
            "source": [str(s.path) for s in sources],
            "shape": list(shape),
            "num_classes": int(num_classes),
            "count": int(total),
            "shards": writer.shards,
            # every byte was hashed as written and every label range-checked as read
            "verified": verified_now(),
        }
        write_json(tmp / MANIFEST, manifest)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest
