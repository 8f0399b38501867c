"""Data pipeline alone: random-index batch reads from memory-mapped shards, on one CPU core.

Claim: `ShardStore.read` delivers >= 20k images/s of 32x32x3 uint8 images in batches of 1024
random indices from memory-mapped `.npy` shards on one core.
Reference: the per-image path of a map-style torch Dataset (`__getitem__` per index, Python loop,
then `np.stack`), on the same memory maps and the same indices.

Evidence: this script builds a store of random CIFAR-sized images in a temp folder (`--images`,
default 200k = 614 MB, several shards, page-cached after writing), pins itself to one core,
warms up, then times `--batches` batches; prints mean ± std images/s of both, and the ratio.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from robustscale.data.convert import convert
from robustscale.data.store import open_store

BATCH = 1024  # the paper's smallest batch (App. D)
SHAPE = (32, 32, 3)  # CIFAR-10
TARGET = 20_000  # images/s on one core: the reader must outpace the trainer it feeds


def make_npz(path: Path, n: int, seed: int = 0) -> None:
    """A DeepMind-format npz written in chunks (uncompressed, like np.savez)."""
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w", allowZip64=True) as zf:
        with zf.open("image.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False,
                                                     "shape": (n, *SHAPE)})
            for start in range(0, n, 10_000):
                f.write(rng.integers(0, 256, (min(10_000, n - start), *SHAPE), np.uint8).tobytes())
        with zf.open("label.npy", "w") as f:
            np.lib.format.write_array(f, rng.integers(0, 10, n))


def naive_read(store, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image Dataset.__getitem__ + default collate, as a DataLoader worker would."""
    items = []
    for i in indices:
        shard = int(np.searchsorted(store.offsets, i, side="right") - 1)
        images, labels = store._shard(shard)
        local = i - store.offsets[shard]
        items.append((np.array(images[local]), int(labels[local])))
    return np.stack([x for x, _ in items]), np.array([y for _, y in items], np.int64)


def images_per_second(read, store, batches: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(store), BATCH) for _ in range(batches + 3)]
    for idx in draws[:3]:  # warm-up: open the memory maps, fault in pages
        read(store, idx)
    rates = []
    for idx in draws[3:]:
        t = time.perf_counter()
        x, _ = read(store, idx)
        rates.append(len(x) / (time.perf_counter() - t))
    return float(np.mean(rates)), float(np.std(rates))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200_000)
    parser.add_argument("--shard-size", type=int, default=50_000)
    parser.add_argument("--batches", type=int, default=50)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    with tempfile.TemporaryDirectory() as tmp:
        make_npz(Path(tmp) / "synthetic.npz", args.images)
        convert(Path(tmp) / "synthetic.npz", Path(tmp) / "store", shard_size=args.shard_size)
        (Path(tmp) / "synthetic.npz").unlink()
        store = open_store(Path(tmp) / "store")
        ours, ours_std = images_per_second(lambda s, i: s.read(i), store, args.batches, 1)
        ref, ref_std = images_per_second(naive_read, store, max(5, args.batches // 10), 2)
    print(f"store: {args.images} images {SHAPE} in {len(store.manifest['shards'])} shards; "
          f"batch {BATCH}; 1 core")
    print(f"reference (per-image __getitem__ loop): {ref:,.0f} ± {ref_std:,.0f} images/s")
    print(f"ours (ShardStore.read):                 {ours:,.0f} ± {ours_std:,.0f} images/s")
    print(f"ratio: {ours / ref:.1f}x")
    print(f"target {TARGET:,} images/s: {'met' if ours >= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
