"""The paper's checkpoint formats: export loads strictly into RobustBench's own class, every layout the
paper's files come in is read, and evaluation scores them identically."""

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from robustscale.errors import RobustscaleError
from robustscale.evaluate import EvalConfig, evaluate_checkpoint
from robustscale.models import create_model, load_model
from robustscale.models.weights import ROBUSTBENCH_MEAN, ROBUSTBENCH_STD, infer_arch, open_model


def robustbench_dm_wide_resnet():
    """RobustBench's `DMWideResNet` (PyPI robustbench, installed --no-deps by the Makefile). Its package
    imports timm and torchvision, so the one module that defines the class is loaded from its file."""
    spec = importlib.util.find_spec("robustbench")
    assert spec is not None, "robustbench missing: pip install --no-deps robustbench==1.1.1 (see Makefile)"
    path = Path(spec.submodule_search_locations[0]) / "model_zoo" / "architectures" / "dm_wide_resnet.py"
    module_spec = importlib.util.spec_from_file_location("robustbench_dm_wide_resnet", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.DMWideResNet


def test_export_loads_strictly_into_robustbenchs_class(trained, tmp_path, cli):
    model, stem, _, _ = trained
    exported = cli("export", stem, "--format", "robustbench", "--out", tmp_path / "model.pt", "--json")
    assert exported.returncode == 0, exported.stderr
    assert exported.json["model"] == "wrn-10-1"
    assert exported.json["normalization_file"] == f"{tmp_path}/model.pt.json"
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    sidecar = json.loads((tmp_path / "model.pt.json").read_text())
    assert (sidecar["mean"], sidecar["std"]) == (list(model.config.mean), list(model.config.std))
    # as RobustBench's zoo builds the paper's models (model_zoo/cifar10.py, Bartoldson2024Adversarial_*)
    theirs = robustbench_dm_wide_resnet()(num_classes=10, depth=10, width=1, activation_fn=torch.nn.SiLU,
                                          mean=sidecar["mean"], std=sidecar["std"], num_input_channels=1)
    assert set(state) == set(theirs.state_dict())  # exactly its keys: no mean/std
    theirs.load_state_dict(state, strict=True)
    # its head pools a fixed 8x8 window, i.e. 32x32 inputs; the weights do not depend on the input size
    x = torch.rand(16, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (theirs.eval()(x) - model.eval()(x)).abs().max() < 1e-5


def test_export_then_evaluate_gives_identical_scores(trained, tmp_path, cli):
    _, stem, _, _ = trained
    assert cli("export", stem, "--out", tmp_path / "model.pt").returncode == 0
    common = ["--data", "fashion-mnist", "--attack", "pgd40-cw", "--n", 8, "--device", "cpu", "--no-progress",
              "--json"]
    ours = cli("evaluate", stem, *common, "--out", tmp_path / "ours")
    theirs = cli("evaluate", tmp_path / "model.pt", "--arch", "wrn-10-1", *common,
                 "--out", tmp_path / "theirs")
    assert ours.returncode == 0 and theirs.returncode == 0, (ours.stderr, theirs.stderr)
    a, b = ours.json, theirs.json
    assert (a["clean_accuracy"], a["accuracy"], a["loss"]) == (b["clean_accuracy"], b["accuracy"], b["loss"])
    assert 0 < a["accuracy"]["pgd40-cw"] < a["clean_accuracy"]
    flags = [pd.read_parquet(tmp_path / run / "per_image.parquet")["pgd40-cw_correct"]
             for run in ("ours", "theirs")]
    assert (flags[0] == flags[1]).all()
    # the normalisation came back from the sidecar, not RobustBench's CIFAR-10 default (other scores)
    assert (a["checkpoint_format"], a["normalization"]["source"]) == ("robustscale", "config")
    assert (b["checkpoint_format"], b["state_dict_prefix"], b["normalization"]) == (
        "state_dict", "", {**a["normalization"], "source": "sidecar"})
    assert "warning" not in theirs.stderr


def test_reference_trainer_layout_scores_like_the_bare_layout(trained, tmp_path):
    """The reference trainer's file (DDP around Sequential(wrn): keys module.0.) and the bare state dict."""
    model, _, _, _ = trained
    bare = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save(bare, tmp_path / "bare.pt")
    torch.save({"model_state_dict": {f"module.0.{k}": v for k, v in bare.items()}}, tmp_path / "reference.pt")
    mean, std = model.config.mean, model.config.std
    scores = [evaluate_checkpoint(EvalConfig(checkpoint=str(tmp_path / f"{name}.pt"), data="fashion-mnist",
                                             attack="pgd40-cw", n=8, out=str(tmp_path / name), device="cpu",
                                             mean=mean, std=std), progress=False)
              for name in ("bare", "reference")]
    assert [s["state_dict_prefix"] for s in scores] == ["", "module.0."]
    assert scores[0]["loss"] == scores[1]["loss"] > 0
    assert (scores[0]["clean_accuracy"], scores[0]["accuracy"]) == (scores[1]["clean_accuracy"],
                                                                      scores[1]["accuracy"])
    assert scores[1]["normalization"] == {"mean": list(mean), "std": list(std), "source": "given"}


def test_state_dict_without_normalisation_defaults_to_robustbench(tmp_path):
    model = create_model("wrn-16-2")
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "m.pth")
    loaded = load_model(tmp_path / "m.pth")
    assert loaded.config.name == "wrn-16-2" and loaded.config.num_classes == 10
    assert (loaded.config.mean, loaded.config.std) == (ROBUSTBENCH_MEAN, ROBUSTBENCH_STD)
    given = load_model(tmp_path / "m.pth", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert given.config.std == (0.25, 0.25, 0.25)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), model.eval()(x))


def test_missing_normalisation_is_recorded_or_refused(trained, tmp_path, cli):
    rgb = create_model("wrn-10-1")
    torch.save(rgb.state_dict(), tmp_path / "rgb.pt")
    assert open_model(tmp_path / "rgb.pt").record()["normalization"] == {
        "mean": list(ROBUSTBENCH_MEAN), "std": list(ROBUSTBENCH_STD), "source": "robustbench_default"}
    model, _, _, _ = trained
    # one channel: RobustBench's CIFAR-10 default cannot be
    torch.save(model.state_dict(), tmp_path / "gray.pt")
    r = cli("evaluate", tmp_path / "gray.pt", "--data", "fashion-mnist", "--out", tmp_path / "o")
    assert r.returncode == 2 and r.stderr.startswith("error: mean/std: ") and "1-channel" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "o" / "eval.json").exists()


def test_paper_sizes_are_read_off_the_shapes():
    with torch.device("meta"):
        state = create_model("wrn-70-16").state_dict()
    assert infer_arch(state) == {"depth": 70, "width": 16, "num_classes": 10, "in_channels": 3}


def test_foreign_files_are_refused(tmp_path, cli):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "resnet.pt")
    with pytest.raises(RobustscaleError, match="not a PyTorch state dict"):
        load_model(tmp_path / "junk.pt")
    with pytest.raises(RobustscaleError, match="not a DeepMind-style WideResNet"):
        load_model(tmp_path / "resnet.pt")
    torch.save({f"1.{k}": v for k, v in create_model("wrn-10-1").state_dict().items()}, tmp_path / "twice.pt")
    with pytest.raises(RobustscaleError, match="normalize=true"):
        load_model(tmp_path / "twice.pt")
    r = cli("evaluate", tmp_path / "resnet.pt", "--data", "cifar10", "--out", tmp_path / "o")
    assert r.returncode == 2 and r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1
