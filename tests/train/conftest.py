"""Tiny, fast training settings shared by the trainer tests (wrn-10-1 on real Fashion-MNIST)."""

import pytest

TINY = ["--model", "wrn-10-1", "--data", "fashion-mnist", "--batch-size", "32", "--lr", "0.05",
        "--attack-steps", "2", "--eval-images", "64", "--eval-steps", "3", "--epoch-samples", "32",
        "--no-progress"]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture
def tiny():
    return list(TINY)


@pytest.fixture
def run_cli(cli):
    """The shared `cli` runner on one CPU thread (bitwise-comparable runs), failing on a non-zero exit."""
    def run(*args, check=True, **kw):
        return cli(*args, env=ONE_THREAD, check=check, **kw)
    return run


@pytest.fixture(scope="session")
def synthetic_store(tmp_path_factory):
    """A small shard store standing in for synthetic data: Fashion-MNIST's test split, 3 shards."""
    from robustscale.data.convert import convert

    out = tmp_path_factory.mktemp("stores") / "fm-test"
    convert("fashion-mnist", out, name="fm-test", fid=12.5, split="test", shard_size=4000)
    return out
