"""Reading shard stores: synthetic (or real) images as memory-mapped `.npy` shards plus a manifest.

A store is a folder (built by `robustscale.data.convert`):

    STORE/manifest.json        name, fid, shape (H, W, C), num_classes, count, shards, verified
    STORE/images-00000.npy     uint8 (k, H, W, C), one per shard
    STORE/labels-00000.npy     int64 (k,)

`ShardStore.read` gathers random batches straight from the memory maps. Checksums are verified
once, when the store is written (`convert`) or on request (`verify`), and the time is recorded in
the manifest; opening a store is O(shards) so that a 300M-image store opens in milliseconds:
- always: manifest schema, every shard file present, its npy header (dtype, shape) and its exact
  byte size, so truncated or wrong-typed shards fail before training starts;
- `verify=True` / `store.verify()` (O(data), reads every byte): sha256 of every file and every
  label within [0, num_classes).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

from robustscale.errors import RobustscaleError
from robustscale.fileio import write_json
from robustscale.progress import progress_bar

MANIFEST = "manifest.json"
FORMAT = "robustscale-shards/1"
_HASH_BLOCK = 1 << 22


def verified_now() -> str:
    """The manifest's `verified` value: when every checksum and label range was last checked (UTC)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def read_npy_header(f: BinaryIO, where: str) -> tuple[tuple[int, ...], np.dtype]:
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


# --- reading ---------------------------------------------------------------------------------

class ShardStore:
    """A shard store opened for random reads (the sampler's data-source protocol: len, read).

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

    @property
    def verified(self) -> str | None:
        """When the checksums were last verified (convert or `verify`), per the manifest."""
        return self.manifest.get("verified")

    def verify(self, progress: bool = False, record: bool = True) -> str:
        """Check every file's sha256 and every label's range; raise RobustscaleError on mismatch.

        With `record`, the time is written to the manifest's `verified` field (skipped where
        the store is read-only). Returns that time.
        """
        with progress_bar(len(self), f"verifying {self.name}", enabled=progress) as advance:
            for i, shard in enumerate(self.manifest["shards"]):
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
                advance(shard["count"])
        when = verified_now()
        if record:
            self.manifest["verified"] = when
            try:
                write_json(self.path / MANIFEST, self.manifest)
            except OSError:  # a read-only store (shared storage) stays verified in memory only
                pass
        return when


def open_store(path: str | os.PathLike, verify: bool = False, progress: bool = False) -> ShardStore:
    """Open a shard store: manifest, shard files and sizes (cheap); with `verify`, also every
    checksum and label range (reads all data; recorded in the manifest)."""
    store = ShardStore(path)
    if verify:
        store.verify(progress=progress)
    return store


def pool_fid(stores: list["ShardStore"], declared: float | None = None, field: str = "fid") -> float:
    """The FID of synthetic stores drawn as one pool: `declared` if given, else the manifests' FIDs
    weighted by store size. Never invented: a declared FID that disagrees with the manifests', or no
    FID anywhere, is a RobustscaleError naming `field` and the store."""
    manifest = None
    if all(s.fid is not None for s in stores):
        manifest = sum(s.fid * len(s) for s in stores) / sum(len(s) for s in stores)
    if declared is not None:
        if manifest is not None and not math.isclose(declared, manifest, rel_tol=1e-6, abs_tol=1e-9):
            where = ", ".join(str(s.path / "manifest.json") for s in stores)
            raise RobustscaleError(f"{field}: {declared:g} disagrees with the FID {manifest:g} recorded in "
                                   f"{where}")
        return float(declared)
    if manifest is None:
        store = next(s for s in stores if s.fid is None)
        raise RobustscaleError(f"{field}: synthetic store {store.name!r} has no FID, neither given nor in "
                               f"{store.path / 'manifest.json'}; give it (--fid, a sweep source's fid) or "
                               f"measure it (`robustscale data fid`)")
    return manifest


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
    if not isinstance(m.get("verified"), (str, type(None))):
        raise RobustscaleError(f"{file}: field 'verified' must be a time stamp or null")
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
            found_shape, found_dtype = read_npy_header(f, str(path))
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
