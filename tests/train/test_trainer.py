"""Training on real Fashion-MNIST: learns robustness, run-directory schema, errors at the boundary."""

import json

import pytest
import torch

from robustscale.errors import RobustscaleError
from robustscale.train import TrainConfig, paper_batch_and_lr, parse_samples, train
from robustscale.train.schedule import one_cycle_lr


def tiny_config(out, **kw):
    base = dict(model="wrn-10-1", dataset="fashion-mnist", samples=768, out=str(out), batch_size=64, lr=0.1,
                attack_steps=3, eval_every=128, eval_images=128, eval_steps=5, seed=0)
    return TrainConfig(**{**base, **kw})


@pytest.mark.slow  # ~100 s on 2 cores: 12 TRADES steps + 6 PGD evaluations
def test_short_adversarial_run_improves_heldout_pgd_accuracy(tmp_path):
    torch.set_num_threads(2)
    result = train(tiny_config(tmp_path / "run"), progress=False)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [2, 4, 6, 8, 10, 12]
    assert set(lines[0]) == {"step", "samples", "flops", "lr", "train_loss", "clean_acc", "pgd_acc", "loss", "time_s"}
    assert lines[-1]["pgd_acc"] > lines[0]["pgd_acc"] + 0.05, lines
    assert lines[-1]["loss"] < lines[0]["loss"]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["flops_per_sample"] == 27 * config["forward_flops"] and config["fid"] == 0.0
    assert lines[-1]["flops"] == 768 * config["flops_per_sample"] == result["flops"]
    assert config["eps"] == pytest.approx(0.1) and config["step_size"] == pytest.approx(0.025)
    for name in ("model.safetensors", "model.json", "best.safetensors", "best.json", "checkpoint.pt", "result.json"):
        assert (tmp_path / "run" / name).exists(), name
    assert result["best"]["pgd_acc"] == max(m["pgd_acc"] for m in lines)
    from robustscale.models.weights import load_model

    assert load_model(tmp_path / "run" / "model").get_num_params() == result["params"]


def test_nonfinite_loss_stops_and_names_the_step(tmp_path):
    with pytest.raises(RobustscaleError, match=r"non-finite at step \d+"):
        train(tiny_config(tmp_path / "nan", mode="standard", lr=1e12, samples=640, eval_every=640), progress=False)
    assert (tmp_path / "nan" / "nonfinite.pt").exists() and not (tmp_path / "nan" / "result.json").exists()


def test_refuses_existing_run_dir_without_resume(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("")
    with pytest.raises(RobustscaleError, match="--resume"):
        train(tiny_config(tmp_path / "x"), progress=False)


@pytest.mark.parametrize("text,value", [("10M", 10_000_000), ("200k", 200_000), ("1e6", 1_000_000),
                                        ("5000", 5000), ("1.5M", 1_500_000)])
def test_parse_samples(text, value):
    assert parse_samples(text) == value


@pytest.mark.parametrize("bad", ["ten", "0", "-5", "1.5"])
def test_parse_samples_rejects(bad):
    with pytest.raises(RobustscaleError, match="samples"):
        parse_samples(bad)


def test_paper_rule_and_validation():
    assert paper_batch_and_lr(10_000_000) == (1024, 0.3)
    assert paper_batch_and_lr(10_000_001) == (2048, 0.2)
    assert paper_batch_and_lr(300_000_000) == (2048, 0.1)
    c = TrainConfig(model="wrn-28-4", dataset="cifar10", samples="50M", out="x").resolved()
    assert (c.batch_size, c.lr, c.eps, c.step_size) == (2048, 0.2, 8 / 255, 2 / 255)
    with pytest.raises(RobustscaleError, match="^mode"):
        TrainConfig(model="wrn-28-4", dataset="cifar10", samples=10, out="x", mode="fgsm")
    with pytest.raises(RobustscaleError, match="^colour"):
        TrainConfig.from_dict({"model": "wrn-28-4", "dataset": "cifar10", "samples": 10, "out": "x", "colour": 1})


def test_one_cycle_schedule_shape():
    lrs = [one_cycle_lr(s, 100, 0.3) for s in range(100)]
    assert lrs[0] == pytest.approx(0.3 / 25) and max(lrs) == pytest.approx(0.3) and lrs.index(max(lrs)) == 25
    assert lrs[-1] == pytest.approx(0.3 / 25 / 1e4)
