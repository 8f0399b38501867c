"""CIFAR-100, SVHN and TinyImageNet end to end, from small archives in their owners' formats: `data
convert` (the real split and a DeepMind-format synthetic npz), `train --norm linf` (with the synthetic
store) and `--norm l2`, `evaluate --attack both --norm l2`, `export --format robustbench` and `evaluate`
of the exported file, and `study create --data` with the dataset's class names. The commands run through
the real CLI entry point in this process (`archives.run`); the models are WRN-10-1 trained for two
steps, so the numbers checked are the files' contents and their agreement, not accuracies."""

from __future__ import annotations

import json

import numpy as np
import pytest
from archives import MAKERS, run

from robustscale.data.datasets import DATASETS, class_names, default_eps

N_EVAL = 4  # test images evaluated (AutoAttack's Square dominates on CPU: keep it tiny)


def ok(*args) -> dict:
    code, out, err = run(*args, "--json")
    assert code == 0, err[-3000:]
    return json.loads(out)


@pytest.mark.parametrize("name", ["cifar100", "svhn", "tiny-imagenet"])
def test_dataset_end_to_end(name, tmp_path):
    info = DATASETS[name]
    c, h, w = info.shape
    data = tmp_path / "data"
    MAKERS[name](data)

    real = ok("data", "convert", name, "--data-dir", data, "--out", tmp_path / "real")
    assert real["shape"] == [h, w, c] and real["num_classes"] == info.num_classes and real["count"] >= 300

    # DeepMind's synthetic-data npz (image uint8 N x H x W x C, label) in the dataset's shape and classes
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "synth.npz", image=rng.integers(0, 256, (64, h, w, c), dtype=np.uint8),
             label=rng.integers(0, info.num_classes, 64))
    synth = ok("data", "convert", tmp_path / "synth.npz", "--out", tmp_path / "synth", "--num-classes",
               info.num_classes)
    assert synth["shape"] == [h, w, c] and synth["num_classes"] == info.num_classes

    tiny = ["--model", "wrn-10-1", "--data", name, "--data-dir", data, "--samples", "32", "--batch-size",
            "16", "--eval-images", "8", "--eval-every", "32", "--eval-steps", "2", "--attack-steps", "2",
            "--no-progress"]
    linf = ok("train", *tiny, "--norm", "linf", "--synthetic", tmp_path / "synth", "--fid", "20",
              "--out", tmp_path / "linf")
    l2 = ok("train", *tiny, "--norm", "l2", "--out", tmp_path / "l2")
    assert linf["steps"] == l2["steps"] == 2
    cfg_linf = json.loads((tmp_path / "linf" / "config.json").read_text())
    cfg_l2 = json.loads((tmp_path / "l2" / "config.json").read_text())
    assert cfg_linf["norm"] == "linf" and cfg_linf["eps"] == pytest.approx(8 / 255)
    assert cfg_linf["attack_start"] == "uniform" and cfg_linf["step_size"] == pytest.approx(2 / 255)
    eps = default_eps(name, "l2")
    assert cfg_l2["norm"] == "l2" and cfg_l2["eps"] == pytest.approx(eps)
    # the reference's TRADES l2-pgd: 0.001 N(0, 1) start, steps of 2 eps / attack_steps
    assert cfg_l2["attack_start"] == "normal" and cfg_l2["step_size"] == pytest.approx(eps)
    assert [s["name"] for s in cfg_linf["sources"]] == [name, "synth"] and cfg_linf["fid"] == 20

    code, out, err = run("evaluate", tmp_path / "l2", "--data", name, "--data-dir", data, "--attack", "both",
                         "--norm", "l2", "--n", N_EVAL, "--out", tmp_path / "eval", "--json", "--no-progress")
    assert code == 0, err[-3000:]
    result = json.loads(out)
    assert result["norm"] == "l2" and result["eps"] == pytest.approx(eps)
    assert ("warning: no published l2 radius" in err) == ("l2" in info.derived_eps)
    assert set(result["accuracy"]) == {"pgd40-cw", "autoattack"}
    rb = json.loads((tmp_path / "eval" / "robustbench.json").read_text())
    assert rb["threat_model"] == "L2" and rb["dataset"] == name
    adv, clean = np.load(tmp_path / "eval" / "adversarial.npz"), np.load(tmp_path / "eval" / "clean.npz")
    assert adv["images"].shape == (N_EVAL, h, w, c) and len(adv["classes"]) == info.num_classes
    # the uint8 adversarial images lie in the L2 ball (up to rounding: half a grey level per pixel)
    delta = (adv["images"].astype(float) - clean["images"].astype(float)).reshape(N_EVAL, -1) / 255
    assert np.linalg.norm(delta, axis=1).max() <= eps + 0.5 / 255 * np.sqrt(c * h * w)

    aa_settings = json.loads((tmp_path / "eval" / "autoattack" / "settings.json").read_text())
    assert aa_settings["attack"] == "autoattack-standard-L2"

    # the human study takes the dataset's class names (TinyImageNet's from its words.txt)
    study = ok("study", "create", "--adversarial", tmp_path / "eval", "--clean", tmp_path / "eval",
               "--name", "s", "--data", name, "--data-dir", data,
               "--db", f"sqlite:///{tmp_path / 'study.db'}")
    assert study["classes"] == list(class_names(name, data)) == [str(c) for c in adv["classes"]]
    assert len(study["classes"]) == info.num_classes

    exported = ok("export", tmp_path / "l2", "--format", "robustbench", "--out", tmp_path / "model.pt")
    assert exported["format"] == "robustbench"
    again = ok("evaluate", tmp_path / "model.pt", "--data", name, "--data-dir", data, "--attack", "pgd40-cw",
               "--norm", "l2", "--n", N_EVAL, "--out", tmp_path / "eval-exported", "--no-progress")
    assert again["clean_accuracy"] == result["clean_accuracy"]
    assert again["accuracy"]["pgd40-cw"] == result["accuracy"]["pgd40-cw"]
    assert again["loss"] == pytest.approx(result["loss"], rel=1e-5)
