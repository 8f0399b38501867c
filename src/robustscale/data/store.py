"""The shard store: synthetic (or real) images as memory-mapped `.npy` shards plus a manifest.

A store is a folder:

    STORE/manifest.json        name, fid, shape (H, W, C), num_classes, count, source, shards
    STORE/images-00000.npy     uint8 (k, H, W, C), one per shard
    STORE/labels-00000.npy     int64 (k,)

The paper trains on up to 300M synthetic CIFAR-10 images (§3.1, App. E), far more than RAM:
`convert` streams DeepMind-format npz files (`image` uint8 N×H×W×C, `label`) member by member
through zipfile in chunks, hashing and writing each shard sequentially, and `ShardStore.read`
gathers random batches straight from the memory maps.

Validation is in two tiers so that opening a 300M-image store stays cheap:
- always (O(shards)): manifest schema, every shard file present, its npy header (dtype, shape)
  and its exact byte size, so truncated or wrong-typed shards fail before training starts;
- `verify=True` / `store.verify()` (O(data), reads every byte): sha256 of every file and every
  label within [0, num_classes).
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

from robustscale.errors import RobustscaleError
from robustscale.fileio import write_json

MANIFEST = "manifest.json"
FORMAT = "robustscale-shards/1"
# ~3 GB of 32x32x3 images per shard: a 300M-image store (§3.1) is 300 shard pairs.
DEFAULT_SHARD_SIZE = 1_000_000
# Rows read per step while streaming: bounds convert's memory (~100 MB of 32x32x3 images).
DEFAULT_CHUNK = 32_768
# Synthetic CIFAR-10 (§3.1, Table 1) has CIFAR-10's 10 classes.
DEFAULT_NUM_CLASSES = 10
_HASH_BLOCK = 1 << 22


# --- reading npy headers from any file object ------------------------------------------------

def _read_npy_header(f: BinaryIO, where: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of the npy stream `f`, left positioned at the first data byte."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    except (ValueError, EOFError, OSError) as e:
        raise RobustscaleError(f"{where}: not a readable .npy array ({e})") from None
    if fortran and len(shape) > 1:
        raise RobustscaleError(f"{where}: expected a C-ordered array, found Fortran order")
    if dtype.hasobject:
        raise RobustscaleError(f"{where}: expected a numeric array, found dtype {dtype}")
    return tuple(int(s) for s in shape), dtype


def _read_rows(f: BinaryIO, dtype: np.dtype, row_shape: tuple[int, ...], n: int, where: str
               ) -> np.ndarray:
    nbytes = n * int(np.prod(row_shape, dtype=np.int64)) * dtype.itemsize
    raw = f.read(nbytes)
    if len(raw) != nbytes:
        raise RobustscaleError(f"{where}: truncated: expected {nbytes} more bytes, "
                               f"found {len(raw)}")
    return np.frombuffer(raw, dtype).reshape((n, *row_shape))


# --- sources: each yields (images uint8 NHWC, labels int64) chunks ---------------------------

class _NpzSource:
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
                    self.image_shape, image_dtype = _read_npy_header(f, f"{path}:image")
                with zf.open("label.npy") as f:
                    label_shape, self.label_dtype = _read_npy_header(f, f"{path}:label")
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
                _read_npy_header(fi, f"{where}:image")
                _read_npy_header(fl, f"{where}:label")
                for start in range(0, self.count, chunk):
                    n = min(chunk, self.count - start)
                    images = _read_rows(fi, np.dtype(np.uint8), self.shape, n, f"{where}:image")
                    labels = _read_rows(fl, self.label_dtype, (), n, f"{where}:label")
                    yield images, labels.astype(np.int64)
        except (zipfile.BadZipFile, EOFError, OSError) as e:  # bad CRC, truncated deflate stream
            raise RobustscaleError(f"{where}: corrupt npz file ({e})") from None


class _ArraySource:
    """An in-memory split of a real dataset (Fashion-MNIST, CIFAR-10 are small)."""

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
        return [_ArraySource(images, labels, f"{src}:{split}")], len(DATASETS[str(src)].classes)
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
    sources = [_NpzSource(f) for f in files]
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
        (concatenated in name order), or a dataset name (`cifar10`, `fashion-mnist`).
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
        bar = _progress(progress, total, f"converting {Path(str(src)).name}")
        for source in sources:
            for images, labels in source.chunks(chunk_size):
                if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
                    raise RobustscaleError(f"{source.path}:label: expected labels in "
                                           f"[0, {num_classes}), found "
                                           f"{labels.min()}..{labels.max()}")
                writer.write(images, labels)
                bar.advance(len(labels))
        bar.close()
        manifest = {
            "format": FORMAT,
            "name": name or (str(src) if is_dataset else Path(src).stem),
            "fid": None if fid is None else float(fid),
            "source": [str(s.path) for s in sources],
            "shape": list(shape),
            "num_classes": int(num_classes),
            "count": int(total),
            "shards": writer.shards,
        }
        write_json(tmp / MANIFEST, manifest)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


class _progress:
    """A rich progress bar on stderr (or nothing)."""

    def __init__(self, enabled: bool, total: int, label: str):
        self.bar = None
        if enabled:
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(label, total=total)

    def advance(self, n: int) -> None:
        if self.bar:
            self.bar.advance(self.task, n)

    def close(self) -> None:
        if self.bar:
            self.bar.stop()


# --- reading ---------------------------------------------------------------------------------

class ShardStore:
    """A shard store opened for random reads: the data-source protocol of CONTRACTS.md.

    Opening checks the manifest and every shard's npy header and byte size (cheap);
    `verify()` also checks sha256 checksums and label ranges (reads everything).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.manifest = _load_manifest(self.path)
        m = self.manifest
        self.name: str = m["name"]
        self.fid: float | None = m["fid"]
        self.shape: tuple[int, int, int] = tuple(m["shape"])
        self.num_classes: int = m["num_classes"]
        counts = np.array([s["count"] for s in m["shards"]], np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        for shard in m["shards"]:
            _check_npy(self.path / shard["images"], np.uint8, (shard["count"], *self.shape))
            _check_npy(self.path / shard["labels"], np.int64, (shard["count"],))
        self._maps: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __repr__(self) -> str:
        return f"ShardStore({str(self.path)!r}, name={self.name!r}, n={len(self)}, fid={self.fid})"

    def __getstate__(self) -> dict:  # memory maps are reopened lazily in worker processes
        return {**self.__dict__, "_maps": {}}

    def _shard(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if i not in self._maps:
            s = self.manifest["shards"][i]
            self._maps[i] = (np.load(self.path / s["images"], mmap_mode="r"),
                             np.load(self.path / s["labels"], mmap_mode="r"))
        return self._maps[i]

    def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Images uint8 (n, H, W, C) and labels int64 (n,) at `indices`, in the order given."""
        indices = np.asarray(indices, np.int64).reshape(-1)
        n = len(self)
        if len(indices) and (indices.min() < 0 or indices.max() >= n):
            raise IndexError(f"{self.path}: indices must lie in [0, {n}), got "
                             f"{indices.min()}..{indices.max()}")
        images = np.empty((len(indices), *self.shape), np.uint8)
        labels = np.empty(len(indices), np.int64)
        # Sorting gathers each shard's rows in file order: sequential page faults, one take a shard.
        order = np.argsort(indices, kind="stable")
        sorted_idx = indices[order]
        bounds = np.searchsorted(sorted_idx, self.offsets)
        for i in range(len(self.offsets) - 1):
            lo, hi = bounds[i], bounds[i + 1]
            if lo == hi:
                continue
            shard_images, shard_labels = self._shard(i)
            local = sorted_idx[lo:hi] - self.offsets[i]
            images[order[lo:hi]] = np.take(shard_images, local, axis=0)
            labels[order[lo:hi]] = np.take(shard_labels, local)
        return images, labels

    def verify(self, progress: bool = False) -> None:
        """Check every file's sha256 and every label's range; raise RobustscaleError on mismatch."""
        shards = self.manifest["shards"]
        bar = _progress(progress, len(self), f"verifying {self.name}")
        for i, shard in enumerate(shards):
            for key in ("images", "labels"):
                path = self.path / shard[key]
                if _sha256(path) != shard[f"{key}_sha256"]:
                    raise RobustscaleError(f"{path}: checksum mismatch (expected sha256 "
                                           f"{shard[f'{key}_sha256']} from {MANIFEST})")
            labels = self._shard(i)[1]
            if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
                raise RobustscaleError(f"{self.path / shard['labels']}: expected labels in "
                                       f"[0, {self.num_classes}), found "
                                       f"{labels.min()}..{labels.max()}")
            bar.advance(shard["count"])
        bar.close()


def open_store(path: str | os.PathLike, verify: bool = True, progress: bool = False) -> ShardStore:
    """Open a shard store; with `verify`, also check checksums and label ranges (reads all data)."""
    store = ShardStore(path)
    if verify:
        store.verify(progress=progress)
    return store


def set_fid(path: str | os.PathLike, fid: float) -> dict:
    """Record a store's FID in its manifest (atomic rewrite); return the new manifest."""
    path = Path(path)
    manifest = _load_manifest(path)
    manifest["fid"] = float(fid)
    write_json(path / MANIFEST, manifest)
    return manifest


# --- validation helpers ----------------------------------------------------------------------

_MANIFEST_KEYS = {"format": str, "name": str, "shape": list, "num_classes": int, "count": int,
                  "shards": list}
_SHARD_KEYS = {"images": str, "labels": str, "count": int, "images_sha256": str,
               "labels_sha256": str}


def _load_manifest(path: Path) -> dict:
    import json

    file = path / MANIFEST
    if not file.is_file():
        raise RobustscaleError(f"{file}: missing (expected a shard store made by "
                               f"`robustscale data convert`)")
    try:
        m = json.loads(file.read_text())
    except (OSError, ValueError) as e:
        raise RobustscaleError(f"{file}: not valid JSON ({e})") from None
    if not isinstance(m, dict):
        raise RobustscaleError(f"{file}: expected a JSON object")
    for key, kind in _MANIFEST_KEYS.items():
        if not isinstance(m.get(key), kind):
            raise RobustscaleError(f"{file}: field {key!r} must be a {kind.__name__}")
    if m["format"] != FORMAT:
        raise RobustscaleError(f"{file}: field 'format' must be {FORMAT!r}, got {m['format']!r}")
    if not isinstance(m.get("fid"), (int, float, type(None))):
        raise RobustscaleError(f"{file}: field 'fid' must be a number or null")
    if len(m["shape"]) != 3 or not all(isinstance(s, int) and s > 0 for s in m["shape"]):
        raise RobustscaleError(f"{file}: field 'shape' must be [H, W, C] of positive ints")
    if m["num_classes"] < 1:
        raise RobustscaleError(f"{file}: field 'num_classes' must be >= 1")
    for i, s in enumerate(m["shards"]):
        for key, kind in _SHARD_KEYS.items():
            if not isinstance(s, dict) or not isinstance(s.get(key), kind):
                raise RobustscaleError(f"{file}: shards[{i}].{key} must be a {kind.__name__}")
        for key in ("images", "labels"):
            if Path(s[key]).name != s[key]:  # shard files live inside the store
                raise RobustscaleError(f"{file}: shards[{i}].{key} must be a bare file name")
    if sum(s["count"] for s in m["shards"]) != m["count"]:
        raise RobustscaleError(f"{file}: field 'count' ({m['count']}) must equal the sum of the "
                               f"shard counts")
    return m


def _check_npy(path: Path, dtype, shape: tuple[int, ...]) -> None:
    """The file is an npy array of exactly this dtype and shape, and not truncated or padded."""
    try:
        with open(path, "rb") as f:
            found_shape, found_dtype = _read_npy_header(f, str(path))
            data_start = f.tell()
    except FileNotFoundError:
        raise RobustscaleError(f"{path}: missing shard file (listed in {MANIFEST})") from None
    if found_dtype != np.dtype(dtype) or found_shape != tuple(shape):
        raise RobustscaleError(f"{path}: expected {np.dtype(dtype)} of shape {tuple(shape)}, found "
                               f"{found_dtype} {found_shape}")
    expected = data_start + int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    size = path.stat().st_size
    if size != expected:
        raise RobustscaleError(f"{path}: {'truncated' if size < expected else 'oversized'}: "
                               f"expected {expected} bytes, found {size}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()
