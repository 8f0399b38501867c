"""A sweep's declared FIDs reach the run folder and the observations; no FID is ever invented (local
executor)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from robustscale.errors import RobustscaleError
from robustscale.rundir import RunDir
from robustscale.runs import collect
from robustscale.sweep import load_sweep, run_sweep

TINY_TRAIN = {"batch_size": 32, "lr": 0.05, "attack_steps": 1, "step_size": 0.1, "ema_decay": 0.5}
TINY_EVAL = {"eval_every": 64, "eval_images": 32, "eval_steps": 2}


def _store(tmp_path, fashion_mnist, fid=None):
    """512 Fashion-MNIST test images as a synthetic shard store, with or without an FID in its manifest."""
    from robustscale.data.convert import convert

    _, _, xte, yte = fashion_mnist
    np.savez(tmp_path / "syn.npz", image=xte[:512], label=yte[:512])
    convert(tmp_path / "syn.npz", tmp_path / "store", name="gen", fid=fid, shard_size=256)
    return tmp_path / "store"


def _sweep(tmp_path, source: dict, **train):
    spec = {"dataset": "fashion-mnist", "out": "runs", "models": ["wrn-10-1"], "samples": [64],
            "sources": [source], "train": {**TINY_TRAIN, **train}, "evaluation": TINY_EVAL}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_declared_fid_reaches_config_and_observations(tmp_path, fashion_mnist):
    _store(tmp_path, fashion_mnist)  # the manifest has no FID: the sweep file's is the only one
    sweep = load_sweep(_sweep(tmp_path, {"name": "syn", "path": "store", "fid": 5.0, "real_fraction": 0},
                              tensorboard=True))
    (planned,) = sweep.runs
    assert (planned.config.fid, planned.config.source, planned.fid) == (5.0, "syn", 5.0)
    result = run_sweep(sweep, executor="local")
    assert result.finished == ["wrn-10-1_syn_64"], result
    run = RunDir(tmp_path / "runs" / "wrn-10-1_syn_64")
    config = run.read_config()
    assert (config["fid"], config["source"], config["real_fraction"]) == (5.0, "syn", 0)
    assert run.read_result()["fid"] == 5.0
    assert list(run.tensorboard_dir.glob("events.out.tfevents.*"))  # `train: {tensorboard: true}`
    obs = collect(tmp_path / "runs", tmp_path / "obs.csv")
    assert obs["fid"].tolist() == [5.0] and obs["source"].tolist() == ["syn"]


def test_synthetic_source_without_any_fid_stops_before_training(tmp_path, fashion_mnist, cli):
    from robustscale.train import train_run

    store = _store(tmp_path, fashion_mnist)
    path = _sweep(tmp_path, {"name": "syn", "path": "store", "real_fraction": 0})
    r = cli("sweep", path, "--dry-run")
    (line,) = r.stderr.strip().splitlines()
    assert r.returncode == 2 and line.startswith("error: ") and "sources[0]: source 'syn'" in line, r
    assert "no FID" in line and not (tmp_path / "runs").exists()
    # `train` alone too: neither --fid nor the manifest has one; nothing is written
    with pytest.raises(RobustscaleError, match="^fid: synthetic store 'gen' has no FID"):
        train_run(tmp_path / "direct", model="wrn-10-1", dataset="fashion-mnist", samples=64,
                  synthetic=[str(store)], real_fraction=0, progress=False)
    assert not (tmp_path / "direct").exists()


def test_sweep_fid_disagreeing_with_the_manifest_is_an_error(tmp_path, fashion_mnist):
    _store(tmp_path, fashion_mnist, fid=12.5)
    with pytest.raises(RobustscaleError, match=r"\]: source 'syn': fid: 5 disagrees with the FID 12.5"):
        load_sweep(_sweep(tmp_path, {"name": "syn", "path": "store", "fid": 5.0}))
    agreeing = load_sweep(_sweep(tmp_path, {"name": "syn", "path": "store", "fid": 12.5}))
    assert agreeing.runs[0].config.fid == 12.5
    from_manifest = load_sweep(_sweep(tmp_path, {"name": "syn", "path": "store"}))
    assert from_manifest.runs[0].config.fid == 12.5
    with pytest.raises(RobustscaleError, match=r"sources\[0\].fid: real data's FID is 0"):
        load_sweep(_sweep(tmp_path, {"name": "real", "fid": 3.0}))
