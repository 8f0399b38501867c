"""The input pipeline of the trainer: the next batch is read while the current one trains.

A background thread gathers step s+1's images from the sampler (memory-mapped shards, numpy
fancy indexing, which releases the GIL) while the main thread runs step s. On CUDA each batch
is staged in pinned host memory and copied with `non_blocking=True`, so the copy overlaps
compute; pinned blocks come from torch's caching host allocator, which does not hand a block out
again before the copy that used it has finished. Images travel as uint8 (4x fewer bytes than
float32) and become floats on the device.

Batches are a pure function of the step (`MixingSampler.local_batch`), so reading ahead changes
nothing that is computed: a run with the loader is bitwise the run without it.
"""

from __future__ import annotations

import queue
import threading

import numpy as np
import torch

PREFETCH = 2  # batches read ahead: one to overlap, one to absorb jitter in read times


class BatchLoader:
    """Steps `start` .. `stop - 1` of `sampler` as (uint8 NHWC images, int64 labels) on `device`.

    Use as a context manager; `next()` returns the batches in step order.
    """

    def __init__(self, sampler, device: torch.device, start: int, stop: int, prefetch: int = PREFETCH):
        self.sampler, self.device, self.start, self.stop = sampler, device, start, stop
        self.pin = device.type == "cuda"
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="robustscale-batches", daemon=True)

    def __enter__(self) -> "BatchLoader":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closed.set()
        while self._thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                self._thread.join(0.05)

    def _produce(self) -> None:
        try:
            for step in range(self.start, self.stop):
                images, labels = self.sampler.local_batch(step)
                x, y = torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels)
                if self.pin:
                    x, y = x.pin_memory(), y.pin_memory()
                if not self._put((step, x, y)):
                    return
        except BaseException as e:  # surfaced in the training thread by next()
            self._put((None, e, None))

    def _put(self, item) -> bool:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def next(self) -> tuple[int, torch.Tensor, torch.Tensor]:
        """(step, images uint8 (n, H, W, C), labels int64 (n,)), both on the device."""
        step, x, y = self._queue.get()
        if step is None:
            raise x
        return step, x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
