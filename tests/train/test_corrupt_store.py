"""Broken synthetic stores are refused before training starts (nothing written to the run dir).

Opening a store checks its manifest, files and byte sizes; same-size corruption (a flipped byte)
is what `data verify` is for, as checksums are verified at convert and on request only.
"""

import shutil

import numpy as np
import pytest

from robustscale.errors import RobustscaleError
from robustscale.train import TrainConfig, train


def _config(out, store):
    return TrainConfig(model="wrn-10-1", dataset="fashion-mnist", samples=64, out=str(out), batch_size=32,
                       synthetic=[str(store)], eval_images=64)


@pytest.mark.parametrize("damage,message", [("truncate", r"images-00001.npy: truncated"),
                                            ("missing", r"labels-00002.npy: missing shard file"),
                                            ("dtype", r"labels-00000.npy: expected int64")])
def test_broken_store_fails_before_training(tmp_path, synthetic_store, damage, message):
    store = tmp_path / "store"
    shutil.copytree(synthetic_store, store)
    if damage == "truncate":
        path = store / "images-00001.npy"
        path.write_bytes(path.read_bytes()[:-100])
    elif damage == "missing":
        (store / "labels-00002.npy").unlink()
    else:
        np.save(store / "labels-00000.npy", np.load(store / "labels-00000.npy").astype(np.int32))
    with pytest.raises(RobustscaleError, match=message):
        train(_config(tmp_path / "run", store), progress=False)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
