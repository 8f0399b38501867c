"""The paper's checkpoint format: export to a RobustBench state dict and evaluate it back, identically."""

import pandas as pd
import pytest
import torch

from robustscale.errors import RobustscaleError
from robustscale.models import create_model, load_model
from robustscale.models.robustbench import ROBUSTBENCH_MEAN, ROBUSTBENCH_STD, infer_arch


def test_export_then_evaluate_gives_identical_scores(trained, tmp_path, cli):
    _, stem, _, _ = trained
    exported = cli("export", stem, "--format", "robustbench", "--out", tmp_path / "model.pt", "--json")
    assert exported.returncode == 0, exported.stderr
    assert exported.json["model"] == "wrn-10-1"
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert "logits.weight" in state and state["mean"].shape == (1, 1, 1)  # DMWideResNet's names and buffers
    common = ["--data", "fashion-mnist", "--attack", "pgd40-cw", "--n", 8, "--device", "cpu", "--no-progress",
              "--json"]
    ours = cli("evaluate", stem, *common, "--out", tmp_path / "ours")
    theirs = cli("evaluate", tmp_path / "model.pt", "--arch", "wrn-10-1", *common, "--out", tmp_path / "theirs")
    assert ours.returncode == 0 and theirs.returncode == 0, (ours.stderr, theirs.stderr)
    a, b = ours.json, theirs.json
    assert (a["clean_accuracy"], a["accuracy"], a["loss"]) == (b["clean_accuracy"], b["accuracy"], b["loss"])
    assert 0 < a["accuracy"]["pgd40-cw"] < a["clean_accuracy"]
    flags = [pd.read_parquet(tmp_path / run / "per_image.parquet")["pgd40-cw_correct"] for run in ("ours", "theirs")]
    assert (flags[0] == flags[1]).all()


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
    r = cli("evaluate", tmp_path / "resnet.pt", "--data", "cifar10", "--out", tmp_path / "o")
    assert r.returncode == 2 and r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1
