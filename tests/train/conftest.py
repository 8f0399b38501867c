"""Tiny, fast training settings shared by the trainer tests (wrn-10-1 on real Fashion-MNIST)."""

import os
import subprocess
import sys

import pytest

TINY = ["--model", "wrn-10-1", "--data", "fashion-mnist", "--batch-size", "32", "--lr", "0.05",
        "--attack-steps", "2", "--eval-images", "64", "--eval-steps", "3", "--epoch-samples", "32", "--no-progress"]
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture
def tiny():
    return list(TINY)


@pytest.fixture
def run_cli():
    """`python -m robustscale ...` on one CPU thread (bitwise-comparable runs)."""
    def run(*args, check=True, module="robustscale", prefix=(), **kw):
        proc = subprocess.run([sys.executable, *prefix, "-m", module, *map(str, args)], env=ONE_THREAD,
                              capture_output=True, text=True, **kw)
        if check and proc.returncode != 0:
            raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc
    return run


@pytest.fixture(scope="session")
def synthetic_store(tmp_path_factory):
    """A small shard store standing in for synthetic data: Fashion-MNIST's test split, 3 shards."""
    from robustscale.data.convert import convert

    out = tmp_path_factory.mktemp("stores") / "fm-test"
    convert("fashion-mnist", out, name="fm-test", fid=12.5, split="test", shard_size=4000)
    return out
