"""The mixing sampler: each batch a fixed share of real images, the rest synthetic, without replacement.

Every batch is a pure function of (seed, step), so the sampler's whole state is the step number:
a resumed run draws exactly the batches the uninterrupted run would have drawn, and every process
of a distributed run computes the same global batch and reads only its own slice of it.

- Synthetic images (§3.1, App. E): one pass over the pool (all synthetic stores, concatenated) in
  a seeded random order, so each image is used at most once. The order is a keyed Feistel
  permutation evaluated at the positions needed, O(1) memory even for 300M images. If the budget
  needs more than the pool holds, a new pass starts with a new order (App. E's "1.5 epochs").
- Real images: reshuffled each pass (they repeat, as in Wang et al. (2023) and App. E).
"""

from __future__ import annotations

import numpy as np

from robustscale.errors import RobustscaleError

REAL_FRACTION = 1 / 8  # 1 real : 7 synthetic per batch
_ROUNDS = 4
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)  # splitmix64 mixing constants


class ArraySource:
    """In-memory data source (real datasets, tests): what the sampler reads from (`len`, `read(indices)`)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, name: str, fid: float | None = None):
        if images.ndim != 4 or images.dtype != np.uint8:
            raise RobustscaleError(f"{name}: expected uint8 images of shape (N, H, W, C), got "
                                   f"{images.dtype} {images.shape}")
        if len(images) != len(labels):
            raise RobustscaleError(f"{name}: {len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, np.asarray(labels, np.int64)
        self.name, self.fid = name, fid

    def __len__(self) -> int:
        return len(self.labels)

    def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.images[indices], self.labels[indices]


class FeistelPermutation:
    """A keyed bijection of [0, n): balanced Feistel network on 2h bits plus cycle walking."""

    def __init__(self, n: int, key: int):
        self.n = n
        self.half = max(1, (max(1, int(n - 1).bit_length()) + 1) // 2)
        self.mask = np.uint64((1 << self.half) - 1)
        self.keys = np.random.SeedSequence(key).generate_state(_ROUNDS, np.uint64)

    def _round(self, r: np.ndarray, k: np.uint64) -> np.ndarray:
        x = (r ^ k) * _M1
        x ^= x >> np.uint64(31)
        x *= _M2
        x ^= x >> np.uint64(29)
        return x & self.mask

    def _encrypt(self, v: np.ndarray) -> np.ndarray:
        half = np.uint64(self.half)
        left, right = v >> half, v & self.mask
        for k in self.keys:
            left, right = right, left ^ self._round(right, k)
        return (left << half) | right

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        out = self._encrypt(np.asarray(positions, np.uint64))
        outside = out >= self.n
        while outside.any():  # cycle walking: the domain is < 4n, so a few rounds on average
            out[outside] = self._encrypt(out[outside])
            outside = out >= self.n
        return out.astype(np.int64)


class MixingSampler:
    """Batches of `batch_size` images: `real_fraction` real (all real without synthetic), rest synthetic.

    Parameters: real (data source), synthetic (list of data sources, may be empty), batch_size (the
    global batch), real_fraction, seed, rank and world_size (this process's slice of each batch).
    """

    def __init__(self, real, synthetic=(), batch_size: int = 1024, real_fraction: float = REAL_FRACTION,
                 seed: int = 0, rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise RobustscaleError(f"batch_size: {batch_size} does not split over {world_size} processes")
        self.real, self.synthetic = real, list(synthetic)
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.synthetic_size = sum(len(s) for s in self.synthetic)
        self.n_real = batch_size if not self.synthetic else int(round(batch_size * real_fraction))
        self.n_synthetic = batch_size - self.n_real
        if self.n_real and len(real) == 0:
            raise RobustscaleError("real data: the source is empty")
        self._offsets = np.cumsum([0] + [len(s) for s in self.synthetic])
        self._real_orders: dict[int, np.ndarray] = {}
        self.step = 0

    # --- index arithmetic (pure functions of seed and position) ---------------------------------

    def _real_order(self, epoch: int) -> np.ndarray:
        if epoch not in self._real_orders:
            self._real_orders = {
                epoch: np.random.default_rng([self.seed, 1, epoch]).permutation(len(self.real))}
        return self._real_orders[epoch]

    def real_indices(self, start: int, count: int) -> np.ndarray:
        """Indices of real draws start .. start + count - 1 (reshuffled every pass)."""
        pos = np.arange(start, start + count)
        epochs, offsets = np.divmod(pos, len(self.real))
        out = np.empty(count, np.int64)
        for e in np.unique(epochs):
            sel = epochs == e
            out[sel] = self._real_order(int(e))[offsets[sel]]
        return out

    def synthetic_indices(self, start: int, count: int) -> np.ndarray:
        """Pool indices of synthetic draws start .. start + count - 1 (each once per pass)."""
        pos = np.arange(start, start + count)
        passes, offsets = np.divmod(pos, self.synthetic_size)
        out = np.empty(count, np.int64)
        for p in np.unique(passes):
            sel = passes == p
            out[sel] = FeistelPermutation(self.synthetic_size,
                                          self.seed * 1_000_003 + 2 + int(p))(offsets[sel])
        return out

    def global_batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(source, index) of every image of batch `step`: source -1 is real, k >= 0 synthetic pool.

        For synthetic images `index` is the pool index (stores concatenated in order).
        """
        real = self.real_indices(step * self.n_real, self.n_real)
        syn = self.synthetic_indices(step * self.n_synthetic, self.n_synthetic) if self.n_synthetic else \
            np.empty(0, np.int64)
        source = np.concatenate([np.full(self.n_real, -1), np.zeros(self.n_synthetic, np.int64)])
        index = np.concatenate([real, syn])
        # spread real over ranks
        mix = np.random.default_rng([self.seed, 3, step]).permutation(self.batch_size)
        return source[mix], index[mix]

    @property
    def synthetic_passes(self) -> float:
        """Passes over the synthetic pool so far (> 1 means some synthetic images were reused)."""
        return self.step * self.n_synthetic / self.synthetic_size if self.synthetic_size else 0.0

    # --- reading ----------------------------------------------------------------------------------

    def local_batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """This process's slice of batch `step` as (uint8 images (n, H, W, C), int64 labels)."""
        source, index = self.global_batch(step)
        n = self.batch_size // self.world_size
        source, index = source[self.rank * n:(self.rank + 1) * n], index[self.rank * n:(self.rank + 1) * n]
        images = labels = None
        is_real = source < 0
        groups = [(self.real, is_real, index)]
        store = np.searchsorted(self._offsets, index, side="right") - 1
        for k, s in enumerate(self.synthetic):
            groups.append((s, ~is_real & (store == k), index - self._offsets[k]))
        for src, sel, idx in groups:
            if not sel.any():
                continue
            x, y = src.read(idx[sel])
            if images is None:
                images = np.empty((n, *x.shape[1:]), np.uint8)
                labels = np.empty(n, np.int64)
            images[sel], labels[sel] = x, y
        return images, labels

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        batch = self.local_batch(self.step)
        self.step += 1
        return batch

    def state_dict(self) -> dict:
        return {"step": self.step, "seed": self.seed, "batch_size": self.batch_size, "n_real": self.n_real,
                "real_size": len(self.real), "synthetic_size": self.synthetic_size}

    def load_state_dict(self, state: dict) -> None:
        mine = self.state_dict()
        for key in ("seed", "batch_size", "n_real", "real_size", "synthetic_size"):
            if state[key] != mine[key]:
                raise RobustscaleError(f"sampler state: {key} was {state[key]} in the checkpoint, now "
                                       f"{mine[key]} (the data or batch size changed)")
        self.step = int(state["step"])
