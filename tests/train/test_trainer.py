"""Training on real Fashion-MNIST: learns robustness, the reference's recipe, one evaluation, run-directory
schema, errors at the boundary."""

import json

import numpy as np
import pytest
import torch

from robustscale.errors import RobustscaleError
from robustscale.train import TrainConfig, Trainer, paper_batch_and_lr, parse_samples, train
from robustscale.train.schedule import learning_rate, one_cycle_lr, one_cycle_momentum
from robustscale.train.trainer import make_optimizer, set_step_schedule


def tiny_config(out, **kw):
    base = dict(model="wrn-10-1", dataset="fashion-mnist", samples=768, out=str(out), batch_size=64, lr=0.1,
                attack_steps=3, eval_every=128, eval_images=128, eval_steps=5, seed=0, epoch_samples=64)
    return TrainConfig(**{**base, **kw})


@pytest.mark.slow  # ~15 s on 2 cores: 32 TRADES steps + 8 PGD evaluations
def test_short_adversarial_run_learns(tmp_path):
    torch.set_num_threads(2)
    # 32 steps are too few for the reference's slow BatchNorm statistics (momentum 0.01) and 2.5% warm-up;
    # scored on the first 128 test images (eval_split test), robustness starts after ~16 steps
    result = train(tiny_config(tmp_path / "run", samples=2048, eval_every=256, bn_momentum=0.1,
                               warmup_fraction=0.25), progress=False)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [4, 8, 12, 16, 20, 24, 28, 32]
    assert set(lines[0]) == {"step", "samples", "flops", "lr", "train_loss", "clean_accuracy", "accuracy",
                             "loss", "time_s", "images_per_s", "eval_split"}
    # the clean task is learned first; robustness barely starts (0 -> ~0.1 PGD accuracy)
    assert lines[-1]["clean_accuracy"] > lines[0]["clean_accuracy"] + 0.15, lines
    assert lines[-1]["accuracy"] > lines[0]["accuracy"], lines
    assert lines[-1]["loss"] < lines[0]["loss"] - 0.1
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["flops_per_sample"] == 27 * config["forward_flops"] and config["fid"] == 0.0
    from robustscale.flops import train_flops_per_sample

    assert config["flops_per_sample"] == train_flops_per_sample("wrn-10-1", (1, 28, 28), "trades")
    assert lines[-1]["flops"] == 2048 * config["flops_per_sample"] == result["flops"]
    assert config["eps"] == pytest.approx(0.1) and config["step_size"] == pytest.approx(0.025)
    for name in ("model.safetensors", "model.json", "best.safetensors", "best.json", "checkpoint.pt",
                 "result.json"):
        assert (tmp_path / "run" / name).exists(), name
    assert result["best"]["accuracy"] == max(m["accuracy"] for m in lines)
    from robustscale.models.weights import load_model

    assert load_model(tmp_path / "run" / "model").get_num_params() == result["params"]


def test_nonfinite_loss_stops_and_names_the_step(tmp_path):
    with pytest.raises(RobustscaleError, match=r"non-finite at step \d+"):
        train(tiny_config(tmp_path / "nan", mode="standard", lr=1e12, samples=640, eval_every=640),
              progress=False)
    assert (tmp_path / "nan" / "nonfinite.pt").exists() and not (tmp_path / "nan" / "result.json").exists()


def test_refuses_existing_run_dir_without_resume(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("")
    with pytest.raises(RobustscaleError, match=r"resume the run"):
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
        TrainConfig.from_dict({"model": "wrn-28-4", "dataset": "cifar10", "samples": 10, "out": "x",
                               "colour": 1})


def test_one_cycle_schedule_is_torchs_onecyclelr_stepped_per_epoch():
    for total, pct in [(100, 0.025), (400, 0.025), (7, 0.5), (1, 0.025)]:
        # as the reference builds it: SGD with momentum 0.9, OneCycleLR's default cycle_momentum overriding it
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9, nesterov=True)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.3, pct_start=pct, total_steps=total)
        for epoch in range(total):
            assert one_cycle_lr(epoch, total, 0.3, pct) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
            momentum = opt.param_groups[0]["momentum"]
            assert one_cycle_momentum(epoch, total, pct) == pytest.approx(momentum, rel=1e-12)
            opt.step()
            if epoch < total - 1:
                sched.step()
    # a one-step warm-up (pct * total = 1), where torch divides 0 by 0, starts low
    assert one_cycle_lr(0, 40, 0.3, 0.025) == pytest.approx(0.3 / 25)
    # one learning rate per epoch of 3 updates; 10 updates are 4 epochs (the last one short)
    lrs = [learning_rate(s, 10, 3, 0.3, 0.25) for s in range(10)]
    assert lrs[0:3] == [lrs[0]] * 3 and lrs[3:6] == [lrs[3]] * 3 and lrs[9] == one_cycle_lr(3, 4, 0.3, 0.25)
    assert lrs[0] == pytest.approx(0.3 / 25) and lrs[-1] == pytest.approx(0.3 / 25 / 1e4)


@pytest.mark.parametrize("schedule", ["cycle", "constant"])
def test_momentum_at_each_step_is_onecyclelrs(tmp_path, schedule):
    """The trainer's per-step learning rate and momentum against torch's OneCycleLR stepped once per epoch of
    3 updates (10 updates: 4 epochs), the reference's scheduler; 'constant' keeps momentum 0.9."""
    cfg = tiny_config(tmp_path, lr=0.3, warmup_fraction=0.5, momentum_schedule=schedule).resolved()
    model = torch.nn.Linear(2, 2)
    ours = make_optimizer(model, cfg)
    theirs = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9, nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(theirs, max_lr=0.3, pct_start=0.5, total_steps=4)
    momenta = []
    for step in range(10):
        lr = set_step_schedule(ours, cfg, step, 10, 3)
        momenta.append(ours.param_groups[0]["momentum"])
        assert lr == pytest.approx(theirs.param_groups[0]["lr"], rel=1e-12)
        expected = theirs.param_groups[0]["momentum"] if schedule == "cycle" else 0.9
        assert [g["momentum"] for g in ours.param_groups] == pytest.approx([expected] * 2, rel=1e-12)
        if step % 3 == 2 and step < 9:
            theirs.step()
            sched.step()
    if schedule == "cycle":  # 0.95 at the start, 0.85 at the end of warm-up, back to 0.95
        assert (momenta[0], momenta[3], momenta[9]) == pytest.approx((0.95, 0.85, 0.95))


def test_ema_equals_the_model_for_the_first_steps_then_decays():
    from robustscale.train.ema import EMA

    model = torch.nn.Linear(2, 2)
    ema = EMA(model, decay=0.995, start_step=0.025 * 400)  # the reference: 2.5% of the updates
    assert [ema.decay_at(s) for s in (0, 8)] == [0.0, 0.0]  # updates 1..9 copy the model
    assert ema.decay_at(9) == pytest.approx(1 / 10) and ema.decay_at(10) == pytest.approx(2 / 11)
    assert ema.decay_at(399) == pytest.approx(391 / 400) and ema.decay_at(10_000) == 0.995
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model, 0)
    assert torch.equal(ema.model.weight, model.weight)


def test_recipe_defaults_are_the_references():
    c = TrainConfig(model="wrn-28-4", dataset="cifar10", samples="5M", out="x")
    assert (c.warmup_fraction, c.ema_start_fraction, c.epoch_samples, c.resolved().attack_start) == (
        0.025, 0.025, 50_000, "uniform")
    # the reference's TRADES l2-pgd: a 0.001 N(0, 1) start and steps of 2 eps / steps, at 128/255
    l2 = TrainConfig(model="wrn-28-4", dataset="cifar100", samples="5M", out="x", norm="l2").resolved()
    assert (l2.attack_start, l2.eps, l2.step_size) == ("normal", 128 / 255, 2 * (128 / 255) / 10)
    assert (c.weight_decay, c.weight_decay_bn, c.real_fraction) == (5e-4, False, 1 / 8)
    with pytest.raises(RobustscaleError, match="^real_fraction: .*synthetic"):
        TrainConfig(model="wrn-28-4", dataset="cifar10", samples=10, out="x", real_fraction=0)


def test_for_resume_merges_the_stored_config(tmp_path):
    stored = {**tiny_config(tmp_path).resolved().asdict(), "params": 1, "sources": []}  # as config.json holds
    (tmp_path / "config.json").write_text(json.dumps(stored))
    config = TrainConfig.for_resume(tmp_path, device="cpu", samples=None)
    assert config.device == "cpu" and config.samples == 768 and config.batch_size == 64
    assert (config.momentum_schedule, config.eval_split) == ("cycle", "test")
    # a run from before these fields resumes with what it did: constant momentum, held-out training images
    (tmp_path / "config.json").write_text(json.dumps({k: v for k, v in stored.items()
                                                      if k not in ("momentum_schedule", "eval_split")}))
    legacy = TrainConfig.for_resume(tmp_path)
    assert (legacy.momentum_schedule, legacy.eval_split) == ("constant", "heldout")
    with pytest.raises(RobustscaleError, match="^model: required"):
        TrainConfig.for_resume(tmp_path / "empty")


def test_heldout_scores_are_evaluates_scores_on_the_test_split(tmp_path):
    """By default training scores the first eval_images test images (the paper's CW_test_loss); its PGD-40-CW
    loss and `evaluate`'s on the same images agree: one definition."""
    from robustscale.evaluate import EvalConfig, evaluate_checkpoint

    config = tiny_config(tmp_path / "run", samples=128, eval_every=128, eval_images=16, eval_steps=40,
                         attack_steps=2)
    assert config.eval_split == "test" and config.momentum_schedule == "cycle"
    trainer = Trainer(config, progress=False)
    final = trainer.run()["final"]
    assert final["eval_split"] == "test"
    # BatchNorm parameters are not decayed (the reference's groups); the rest is
    decay, no_decay = trainer.optimizer.param_groups
    assert no_decay["weight_decay"] == 0 and decay["weight_decay"] == 5e-4
    assert {id(p) for p in no_decay["params"]} == {id(p) for n, p in trainer.model.named_parameters()
                                                   if "batchnorm" in n}
    assert json.loads((tmp_path / "run" / "config.json").read_text())["eval_split"] == "test"
    scores = evaluate_checkpoint(EvalConfig(checkpoint=str(tmp_path / "run"), data="fashion-mnist",
                                            attack="pgd40-cw", n=16, out=str(tmp_path / "eval"),
                                            device="cpu"),
                                 progress=False)
    assert 0 < final["loss"] and abs(scores["loss"] - final["loss"]) < 1e-6, (scores["loss"], final["loss"])
    assert scores["clean_accuracy"] == final["clean_accuracy"]
    assert scores["accuracy"]["pgd40-cw"] == final["accuracy"]


def test_heldout_split_leaves_its_images_out_of_training(tmp_path, fashion_mnist):
    """eval_split heldout (the earlier behaviour): eval_images training images, left out of training."""
    from robustscale.train.trainer import HELDOUT_SEED

    xtr, ytr, xte, _ = fashion_mnist
    held = Trainer(tiny_config(tmp_path / "held", eval_images=16, eval_split="heldout"), progress=False)
    order = np.random.default_rng(HELDOUT_SEED).permutation(len(ytr))
    assert len(held.sampler.real) == len(ytr) - 16 and np.array_equal(held.heldout[0], xtr[order[:16]])
    test = Trainer(tiny_config(tmp_path / "test", eval_images=16), progress=False)
    assert len(test.sampler.real) == len(ytr) and np.array_equal(test.heldout[0], xte[:16])
    with pytest.raises(RobustscaleError, match="^eval_images: fashion-mnist has 10000 test images"):
        Trainer(tiny_config(tmp_path / "big", eval_images=10_001), progress=False)
    with pytest.raises(RobustscaleError, match="^eval_split: expected one of test, heldout"):
        tiny_config(tmp_path / "bad", eval_split="train")


def test_synthetic_only_run_records_its_sources_fid(tmp_path, synthetic_store):
    trainer = Trainer(tiny_config(tmp_path / "syn", samples=128, eval_every=128, eval_images=64, eval_steps=2,
                                  attack_steps=1, real_fraction=0, synthetic=[str(synthetic_store)]),
                      progress=False)
    assert (trainer.sampler.n_real, trainer.sampler.n_synthetic) == (0, 64)
    assert len(trainer.heldout[1]) == 64  # scored on real held-out images all the same
    result = trainer.run()
    config = json.loads((tmp_path / "syn" / "config.json").read_text())
    assert result["fid"] == config["fid"] == 12.5 and config["real_fraction"] == 0
    from robustscale.flops import train_flops_per_sample  # the count `sweep --dry-run` and `flops` use

    assert (result["flops"] == 128 * config["flops_per_sample"]
            == 128 * train_flops_per_sample("wrn-10-1", (1, 28, 28)))
    assert result["synthetic_passes"] == pytest.approx(128 / 10000)
    assert 0 < result["final"]["loss"] < 10


def test_train_help_lists_the_recipe_knobs(cli):
    r = cli("train", "--help", env={"COLUMNS": "150"})
    assert r.returncode == 0, r
    for flag, choices in (("--momentum-schedule", "cycle (default"), ("--eval-split", "test (default")):
        assert flag in r.stdout and choices in r.stdout, flag


def test_sweep_file_sets_the_norm(tmp_path):
    """`train: {norm: l2}` in a sweep file reaches every run's config, with the dataset's L2 radius."""
    from robustscale.sweep import load_sweep

    grid = "dataset: cifar100\nmodels: [wrn-10-1]\nsamples: [1k]\nsources: [{name: real}]\n"
    (tmp_path / "sweep.yaml").write_text(grid + "train: {norm: l2}\n")
    runs = load_sweep(tmp_path / "sweep.yaml").runs
    resolved = [r.config for r in runs]
    assert resolved and all((c.norm, c.eps) == ("l2", 128 / 255) for c in resolved)
    (tmp_path / "bad.yaml").write_text(grid + "train: {norm: l1}\n")
    with pytest.raises(RobustscaleError, match="norm: expected one of linf, l2"):
        load_sweep(tmp_path / "bad.yaml")
