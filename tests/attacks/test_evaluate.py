"""`robustscale evaluate`: outputs and their schema, AutoAttack <= PGD, kill + resume, bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from robustscale.evaluate import EvalConfig, evaluate_checkpoint, format_eps, parse_eps

N, CHUNK = 8, 4  # AutoAttack's Square (5000 queries) dominates: keep the image count tiny on CPU


@pytest.fixture(scope="module")
def evaluated(trained, tmp_path_factory):
    _, stem, _, _ = trained
    out = tmp_path_factory.mktemp("eval")
    result = evaluate_checkpoint(EvalConfig(checkpoint=str(stem), data="fashion-mnist", attack="both",
                                            n=N, out=str(out), chunk_size=CHUNK, device="cpu"),
                                 progress=False)
    return result, out


@pytest.mark.slow
def test_eval_outputs(evaluated):
    result, out = evaluated
    assert json.loads((out / "eval.json").read_text()) == json.loads(json.dumps(result))
    assert result["eps"] == pytest.approx(0.1) and result["n"] == N
    table = pd.read_parquet(out / "per_image.parquet")
    assert len(table) == N and (table["index"] == np.arange(N)).all()
    assert result["clean_accuracy"] == pytest.approx(table["clean_correct"].mean())
    assert result["accuracy"]["pgd40-cw"] == pytest.approx(table["pgd40-cw_correct"].mean())
    assert result["loss"] == pytest.approx(table["loss"].mean()) and result["loss"] > 0
    clean, adv = np.load(out / "clean.npz"), np.load(out / "adversarial.npz")
    assert adv["images"].dtype == np.uint8 and adv["images"].shape == (N, 28, 28, 1)
    assert (adv["labels"] == clean["labels"]).all() and (adv["indices"] == np.arange(N)).all()
    assert list(adv["classes"][:2]) == ["T-shirt/top", "Trouser"]
    diff = np.abs(adv["images"].astype(int) - clean["images"].astype(int))
    assert diff.max() <= round(0.1 * 255) + 1 and diff.max() > 0
    rb = json.loads((out / "robustbench.json").read_text())
    assert rb["architecture"] == "WideResNet-10-1" and rb["eps"] == "0.1"
    assert rb["autoattack_acc"] == f"{100 * result['accuracy']['autoattack']:.2f}"
    assert {"name", "additional_data", "number_forward_passes", "dataset", "threat_model", "venue",
            "link", "clean_acc"} <= set(rb)


@pytest.mark.slow
def test_autoattack_at_most_pgd(evaluated):
    result, out = evaluated
    table = pd.read_parquet(out / "per_image.parquet")
    acc = result["accuracy"]
    assert acc["autoattack"] <= acc["pgd40-cw"] <= result["clean_accuracy"]
    assert not (table["autoattack_correct"] & ~table["clean_correct"]).any()
    assert acc["pgd40-cw"] > 0  # something left for AutoAttack to attack


@pytest.mark.slow
def test_killed_autoattack_resumes_with_identical_flags(trained, evaluated, tmp_path, cli):
    _, stem, _, _ = trained
    result, reference = evaluated
    out = tmp_path / "out"
    args = ["evaluate", stem, "--data", "fashion-mnist", "--attack", "autoattack", "--n", N,
            "--chunk-size", CHUNK, "--device", "cpu", "--out", out, "--json"]
    proc = subprocess.Popen([sys.executable, "-m", "robustscale", *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = out / "autoattack" / "chunk_0000000.npz"
    deadline = time.time() + 300
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert first.exists() and proc.poll() is None, "first chunk never appeared before the run ended"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "eval.json").exists()
    mtime = first.stat().st_mtime_ns
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    assert first.stat().st_mtime_ns == mtime  # the finished chunk was loaded, not redone
    resumed = json.loads(done.stdout)
    assert resumed["accuracy"]["autoattack"] == result["accuracy"]["autoattack"]
    flags = pd.read_parquet(out / "per_image.parquet")["autoattack_correct"]
    assert (flags == pd.read_parquet(reference / "per_image.parquet")["autoattack_correct"]).all()


def test_eps_parsing():
    assert parse_eps("8/255") == pytest.approx(8 / 255) and parse_eps("0.1") == 0.1
    assert format_eps(8 / 255) == "8/255" and format_eps(0.1) == "0.1"


def test_bad_input_one_line_exit_2(trained, tmp_path, cli):
    _, stem, _, _ = trained
    base = ["evaluate", "--data", "fashion-mnist", "--attack", "pgd40-cw", "--n", 4, "--out", tmp_path / "o"]
    corrupt = tmp_path / "corrupt"
    corrupt.with_suffix(".json").write_text(stem.with_suffix(".json").read_text())
    corrupt.with_suffix(".safetensors").write_bytes(b"\x00garbage" * 10)
    mismatch = tmp_path / "mismatch"
    cfg = json.loads(stem.with_suffix(".json").read_text())
    cfg["config"]["width"] = 2
    mismatch.with_suffix(".json").write_text(json.dumps(cfg))
    mismatch.with_suffix(".safetensors").write_bytes(stem.with_suffix(".safetensors").read_bytes())
    cases = {
        (tmp_path / "missing",): "checkpoint file not found",
        (corrupt,): "corrupt safetensors file",
        (mismatch,): "weights do not match wrn-10-2",
        (stem, "--data", "cifar10"): "model takes 1x28x28 images but cifar10 has 3x32x32",
        (stem, "--eps", "2"): "eps: must lie in [0, 1]",
        (stem, "--eps", "8/0"): "eps: expected a number or fraction",
        (stem, "--attack", "fgsm"): "attack: expected one of pgd40-cw, autoattack, both",
        (stem, "--arch", "wrn-16-2"): "arch: ",
        (stem, "--mean", "a,b"): "--mean: expected comma-separated numbers",
    }
    for extra, message in cases.items():
        r = cli(*base, *extra)
        assert r.returncode == 2, (extra, r.stderr)
        assert r.stderr.startswith("error: ") and message in r.stderr, (extra, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.slow
def test_study_counts_what_eval_json_counts(evaluated, tmp_path):
    """The human study's robust count is eval.json's accuracy_uint8, on the same saved uint8
    images (it re-predicted them and found robust images eval.json's accuracy did not)."""
    from robustscale.human_study.db import make_engine, make_sessionmaker
    from robustscale.human_study.images import create_study

    result, out = evaluated
    adv = np.load(out / "adversarial.npz")
    assert result["accuracy_uint8"] == pytest.approx((adv["predictions"] == adv["labels"]).mean())
    sessions = make_sessionmaker(make_engine(f"sqlite:///{tmp_path / 's.db'}"))
    if result["accuracy_uint8"] == 1:
        pytest.skip("no successful attack to import")
    info = create_study(sessions, "s", out, out)
    assert info["robust"] == round(result["accuracy_uint8"] * N) and info["total"] == N
