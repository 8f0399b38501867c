"""A sweep's declared FIDs reach the run folder and the observations; no FID is ever invented (local executor)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import yaml

from robustscale.rundir import RunDir

TINY_TRAIN = {"batch_size": 32, "lr": 0.05, "attack_steps": 1, "step_size": 0.1, "ema_decay": 0.5}
TINY_EVAL = {"eval_every": 64, "eval_images": 32, "eval_steps": 2}


def _store(tmp_path, fashion_mnist, fid=None):
    """512 Fashion-MNIST test images as a synthetic shard store, with or without an FID in its manifest."""
    from robustscale.data.convert import convert

    _, _, xte, yte = fashion_mnist
    np.savez(tmp_path / "syn.npz", image=xte[:512], label=yte[:512])
    convert(tmp_path / "syn.npz", tmp_path / "store", name="gen", fid=fid, shard_size=256)
    return tmp_path / "store"


def _sweep(tmp_path, source: dict) -> str:
    spec = {"dataset": "fashion-mnist", "out": "runs", "models": ["wrn-10-1"], "samples": [64],
            "sources": [source], "train": TINY_TRAIN, "evaluation": TINY_EVAL}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_declared_fid_reaches_config_and_observations(tmp_path, fashion_mnist, cli):
    _store(tmp_path, fashion_mnist)  # the manifest has no FID: the sweep file's is the only one
    path = _sweep(tmp_path, {"name": "syn", "path": "store", "fid": 5.0, "real_fraction": 0})
    r = cli("sweep", path, "--json")
    assert r.returncode == 0 and r.json["finished"] == ["wrn-10-1_syn_64"], r
    run = RunDir(tmp_path / "runs" / "wrn-10-1_syn_64")
    config = run.read_config()
    assert (config["fid"], config["source"], config["real_fraction"]) == (5.0, "syn", 0)
    assert run.read_result()["fid"] == 5.0
    r = cli("runs", "collect", tmp_path / "runs", "--out", tmp_path / "obs.csv", "--json")
    assert r.returncode == 0 and r.json["sources"] == ["syn"], r
    obs = pd.read_csv(tmp_path / "obs.csv")
    assert len(obs) == 1 and obs["fid"].tolist() == [5.0] and obs["source"].tolist() == ["syn"]


def test_synthetic_source_without_any_fid_stops_before_training(tmp_path, fashion_mnist, cli):
    store = _store(tmp_path, fashion_mnist)
    path = _sweep(tmp_path, {"name": "syn", "path": "store", "real_fraction": 0})
    for args in (["--dry-run"], []):
        r = cli("sweep", path, *args)
        (line,) = r.stderr.strip().splitlines()
        assert r.returncode == 2 and line.startswith("error: ") and "sources[0]: source 'syn'" in line, r
        assert "no FID" in line and not (tmp_path / "runs").exists()
    # `train` alone too: neither --fid nor the manifest
    r = cli("train", "--model", "wrn-10-1", "--data", "fashion-mnist", "--samples", "64", "--synthetic", store,
            "--real-fraction", "0", "--out", tmp_path / "direct", "--no-progress")
    assert r.returncode == 2 and "fid: synthetic store 'gen' has no FID" in r.stderr, r
    assert not (tmp_path / "direct").exists()


def test_sweep_fid_disagreeing_with_the_manifest_is_an_error(tmp_path, fashion_mnist, cli):
    _store(tmp_path, fashion_mnist, fid=12.5)
    path = _sweep(tmp_path, {"name": "syn", "path": "store", "fid": 5.0})
    r = cli("sweep", path, "--dry-run")
    (line,) = r.stderr.strip().splitlines()
    assert r.returncode == 2 and "source 'syn'" in line and "5 disagrees with the FID 12.5" in line, r
    agreeing = _sweep(tmp_path, {"name": "syn", "path": "store", "fid": 12.5})
    r = cli("sweep", agreeing, "--dry-run", "--json")
    assert r.returncode == 0 and [x["fid"] for x in r.json["runs"]] == [12.5], r
    assert json.loads((tmp_path / "store" / "manifest.json").read_text())["fid"] == 12.5
