"""Shared test fixtures: real Fashion-MNIST (Debian's dataset-fashion-mnist), CUDA skipping."""

from __future__ import annotations

import pytest

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "cuda" in item.keywords and not has_cuda:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def fashion_mnist():
    """(train_images, train_labels, test_images, test_labels) as uint8 NHWC / int64 arrays."""
    from robustscale.data.datasets import load_dataset

    xtr, ytr = load_dataset("fashion-mnist", "train")
    xte, yte = load_dataset("fashion-mnist", "test")
    return xtr, ytr, xte, yte


class CliResult:
    """What one `robustscale ...` run returned; `.json` parses its stdout."""

    def __init__(self, proc):
        self.returncode, self.stdout, self.stderr = proc.returncode, proc.stdout, proc.stderr

    @property
    def json(self):
        import json

        return json.loads(self.stdout)

    def __repr__(self):
        return f"CliResult(rc={self.returncode}, stderr={self.stderr[-2000:]!r})"


def run_cli(*args, env=None, timeout=None, no_torch=False, cwd=None):
    """Run the real CLI in a subprocess (`python -m robustscale ARGS`).

    `env` adds to the environment; `no_torch=True` runs it with torch made unimportable, to prove
    a command needs no torch.
    """
    import os
    import subprocess
    import sys

    if no_torch:
        code = ("import sys; sys.modules['torch'] = None; sys.argv = ['robustscale', *sys.argv[1:]]; "
                "from robustscale.cli import main; main()")
        cmd = [sys.executable, "-c", code, *map(str, args)]
    else:
        cmd = [sys.executable, "-m", "robustscale", *map(str, args)]
    full_env = {**os.environ, **(env or {})}
    return CliResult(subprocess.run(cmd, capture_output=True, text=True, env=full_env,
                                    timeout=timeout, cwd=cwd))


@pytest.fixture
def cli():
    """`cli("fit", path, "--json")` runs the real command line; see `run_cli`."""
    return run_cli
