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
