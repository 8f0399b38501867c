"""MixingSampler: 1 real : 7 synthetic, synthetic without replacement (also across kill/resume), DDP \
slices."""

import numpy as np
import pytest

from robustscale.data.sampler import ArraySource, FeistelPermutation, MixingSampler
from robustscale.errors import RobustscaleError


@pytest.fixture(scope="module")
def sources(fashion_mnist):
    xtr, ytr, xte, yte = fashion_mnist
    real = ArraySource(xte[:500], yte[:500], "fashion-mnist")
    # a small "synthetic" pool: two stores, labels encode the pool index so repeats are visible
    syn = [ArraySource(xtr[:3000], np.arange(3000), "syn-a", fid=5.0),
           ArraySource(xtr[3000:5000], np.arange(3000, 5000), "syn-b", fid=9.0)]
    return real, syn


@pytest.mark.parametrize("n", [1, 2, 7, 1000, 4097])
def test_feistel_is_a_permutation(n):
    assert sorted(FeistelPermutation(n, 3)(np.arange(n))) == list(range(n))


def test_mix_and_no_synthetic_repeat_across_resume(sources):
    real, syn = sources
    s = MixingSampler(real, syn, batch_size=64, seed=7)
    assert (s.n_real, s.n_synthetic) == (8, 56)
    seen = []
    for _ in range(40):
        src, idx = s.global_batch(s.step)
        assert (src < 0).sum() == 8
        seen.append(idx[src >= 0])
        s.next()
    state = s.state_dict()
    resumed = MixingSampler(real, syn, batch_size=64, seed=7)  # a new process after a kill
    resumed.load_state_dict(state)
    for _ in range(40):
        src, idx = resumed.global_batch(resumed.step)
        seen.append(idx[src >= 0])
        images, labels = resumed.next()
        assert images.shape == (64, 28, 28, 1)
        # labels of synthetic images are their pool indices: what was read is what was drawn
        assert sorted(labels[labels >= 10]) == sorted(i for i in idx[src >= 0] if i >= 10)
    drawn = np.concatenate(seen)
    assert len(drawn) == 80 * 56 < 5000 and len(np.unique(drawn)) == len(drawn)
    assert resumed.synthetic_passes == pytest.approx(80 * 56 / 5000)


def test_real_images_reshuffle_each_pass(sources):
    real, _ = sources
    s = MixingSampler(real, [], batch_size=100, seed=1)
    first = np.concatenate([s.real_indices(0, 500)])
    second = s.real_indices(500, 500)
    assert sorted(first) == sorted(second) == list(range(500)) and not np.array_equal(first, second)


def test_ranks_read_disjoint_slices_of_the_same_batch(sources):
    real, syn = sources
    whole = MixingSampler(real, syn, batch_size=64, seed=2).local_batch(5)
    halves = [MixingSampler(real, syn, batch_size=64, seed=2, rank=r, world_size=2).local_batch(5)
              for r in (0, 1)]
    assert np.array_equal(np.concatenate([h[0] for h in halves]), whole[0])
    assert np.array_equal(np.concatenate([h[1] for h in halves]), whole[1])


def test_state_from_other_data_is_refused(sources):
    real, syn = sources
    state = MixingSampler(real, syn, batch_size=64).state_dict()
    with pytest.raises(RobustscaleError, match="synthetic_size"):
        MixingSampler(real, syn[:1], batch_size=64).load_state_dict(state)


def test_shard_store_source_without_repeats_across_resume(tmp_path, sources):
    """The same guarantee through C1's memory-mapped ShardStore (several shards)."""
    from robustscale.data.convert import convert
    from robustscale.data.store import open_store

    real, _ = sources
    convert("fashion-mnist", tmp_path / "store", split="test", shard_size=3000)
    store = open_store(tmp_path / "store")
    s = MixingSampler(real, [store], batch_size=80, seed=3)
    drawn = []
    for step in range(120):
        if step == 60:  # kill and resume
            state = s.state_dict()
            s = MixingSampler(real, [open_store(tmp_path / "store")], batch_size=80, seed=3)
            s.load_state_dict(state)
        src, idx = s.global_batch(s.step)
        images, _ = s.next()
        syn = src >= 0
        assert np.array_equal(images[syn], store.read(idx[syn])[0])
        drawn.append(idx[syn])
    drawn = np.concatenate(drawn)
    assert len(drawn) == 120 * 70 and len(np.unique(drawn)) == len(drawn)
