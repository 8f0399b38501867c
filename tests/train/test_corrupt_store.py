"""Broken synthetic stores are refused before training starts (nothing written to the run dir)."""

import shutil

import numpy as np
import pytest

from robustscale.errors import RobustscaleError
from robustscale.train import TrainConfig, train


def _config(out, store):
    return TrainConfig(model="wrn-10-1", dataset="fashion-mnist", samples=64, out=str(out), batch_size=32,
                       synthetic=[str(store)], eval_images=64)


@pytest.mark.parametrize("damage,message", [("truncate", "images-00001"), ("flip", "checksum"),
                                            ("labels", "labels")])
def test_broken_store_fails_before_training(tmp_path, synthetic_store, damage, message):
    store = tmp_path / "store"
    shutil.copytree(synthetic_store, store)
    if damage == "truncate":
        path = store / "images-00001.npy"
        path.write_bytes(path.read_bytes()[:-100])
    elif damage == "flip":
        path = store / "images-00002.npy"
        data = bytearray(path.read_bytes())
        data[-5] ^= 0xFF
        path.write_bytes(bytes(data))
    else:  # a label edited out of range: the labels file's checksum no longer matches
        labels = np.load(store / "labels-00000.npy")
        labels[3] = 42
        np.save(store / "labels-00000.npy", labels)
    with pytest.raises(RobustscaleError, match=message):
        train(_config(tmp_path / "run", store), progress=False)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
