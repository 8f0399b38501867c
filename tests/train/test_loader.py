"""The trainer's input pipeline: batches read ahead on a thread are exactly the sampler's, in order,
a failure in the reading thread reaches the training thread, and CUDA batches come from pinned memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustscale.data.sampler import ArraySource, MixingSampler
from robustscale.train.loader import BatchLoader


@pytest.fixture
def sampler(fashion_mnist):
    xtr, ytr, _, _ = fashion_mnist
    return MixingSampler(ArraySource(xtr[:5000], ytr[:5000], name="fm"), batch_size=64, seed=3, rank=1,
                         world_size=2)


def test_batches_equal_the_samplers_in_step_order(sampler):
    with BatchLoader(sampler, torch.device("cpu"), start=5, stop=12) as loader:
        for step in range(5, 12):
            got_step, x, y = loader.next()
            want_x, want_y = sampler.local_batch(step)
            assert got_step == step and x.dtype == torch.uint8 and x.shape == (32, 28, 28, 1)
            np.testing.assert_array_equal(x.numpy(), want_x)
            np.testing.assert_array_equal(y.numpy(), want_y)


def test_leaving_early_stops_the_reader(sampler):
    with BatchLoader(sampler, torch.device("cpu"), start=0, stop=10_000) as loader:
        loader.next()
    assert not loader._thread.is_alive()


def test_a_reading_error_reaches_the_training_thread(tmp_path, fashion_mnist, synthetic_store):
    import shutil

    from robustscale.data.store import open_store

    xtr, ytr, _, _ = fashion_mnist
    shutil.copytree(synthetic_store, tmp_path / "store")
    store = open_store(tmp_path / "store")
    for shard in tmp_path.glob("store/images-*.npy"):
        shard.unlink()  # gone after opening: the reading thread's np.load fails
    sampler = MixingSampler(ArraySource(xtr[:100], ytr[:100], name="fm"), [store], batch_size=16)
    with BatchLoader(sampler, torch.device("cpu"), start=0, stop=3) as loader:
        with pytest.raises(FileNotFoundError, match="images-"):
            loader.next()


@pytest.mark.cuda
def test_cuda_batches_are_staged_in_pinned_memory(sampler):
    loader = BatchLoader(sampler, torch.device("cuda"), start=0, stop=2)
    loader._produce()  # fill the queue in this thread to look at the staged tensors
    step, x, y = loader._queue.get()
    assert step == 0 and x.is_pinned() and y.is_pinned()
    with BatchLoader(sampler, torch.device("cuda"), start=0, stop=2) as running:
        _, xd, yd = running.next()
    assert xd.is_cuda and torch.equal(xd.cpu(), x) and torch.equal(yd.cpu(), y)
