"""Reference equivalence, as data: the committed fixture was made by running the paper's own code.

tests/models/reference/ holds a reference-format WRN-16-4 (fp16, exact in fp32) under the keys the
reference trainer saves (`module.0.`: DDP around `Sequential(wrn)`, see reference.json "layout"), an
input batch, and what the reference implementation (bbartoldson/Adversarial-Robustness-Limits at the
commit in reference.json: `core/models/wideresnetwithswish.py`, `gowal21uncovering/utils/trades.py`)
computed on them: eval- and train-mode logits, one TRADES training step's loss and the final
BatchNorm's running statistics after that step. The SGD step after it is checked against the
reference's optimiser as `watrain.py` builds it (`init_optimizer`, `init_scheduler`: torch's SGD with
its parameter groups and OneCycleLR).
"""

import copy
import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from robustscale.attacks.trades import trades_loss
from robustscale.models import load_model
from robustscale.models.weights import STATE_DICT_PREFIXES
from robustscale.train import TrainConfig
from robustscale.train.trainer import make_optimizer, set_step_schedule

REFERENCE = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """(path of the weights as the reference trainer's file, the batch and outputs, reference.json)."""
    state = {k: v.float() if v.is_floating_point() else v
             for k, v in load_file(REFERENCE / "wrn-16-4.safetensors").items()}
    path = tmp_path_factory.mktemp("ref") / "weights-best.pt"
    # `watrain.py` save_model: the averaged and the trained model, both DDP(Sequential(wrn)) state dicts
    torch.save({"model_state_dict": state, "unaveraged_model_state_dict": state}, path)
    return (path, load_file(REFERENCE / "batch.safetensors"),
            json.loads((REFERENCE / "reference.json").read_text()))


def test_fixture_names_the_reference_commit_and_layout(reference):
    _, _, meta = reference
    assert len(meta["commit"]) == 40 and meta["reference"].endswith("Adversarial-Robustness-Limits")
    keys = load_file(REFERENCE / "wrn-16-4.safetensors")
    assert all(k.startswith("module.0.") for k in keys) and "module.0.init_conv.weight" in keys


@pytest.mark.parametrize("prefix", STATE_DICT_PREFIXES)
def test_every_layout_gives_the_same_model(reference, tmp_path, prefix):
    """RobustBench's bare keys, DDP's `module.`, the reference trainer's `0.` and `module.0.`."""
    path, batch, _ = reference
    bare = {k.removeprefix("module.0."): v for k, v in torch.load(path)["model_state_dict"].items()}
    torch.save({f"{prefix}{k}": v for k, v in bare.items()}, tmp_path / "m.pt")
    x = batch["images"].float() / 255
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path / "m.pt").eval()(x), load_model(path).eval()(x))


def test_logits_match_the_reference(reference):
    path, batch, _ = reference
    model = load_model(path)  # architecture read off the tensors' shapes
    assert model.config.name == "wrn-16-4" and model.config.mean == (0.4914, 0.4822, 0.4465)
    x = batch["images"].float() / 255
    with torch.no_grad():
        assert (model.eval()(x) - batch["logits_eval"]).abs().max() < 1e-5
        assert (model.train()(x) - batch["logits_train"]).abs().max() < 1e-5
    # the tolerance is strict: symmetric stride-2 padding gives logits off by far more on the same weights
    from robustscale.models.wideresnet import Block

    for block in model.modules():
        if isinstance(block, Block) and block.stride == 2:
            block.stride, block.conv_0.padding = 1, (1, 1)
    with torch.no_grad():
        assert (model.eval()(x) - batch["logits_eval"]).abs().max() > 1e-2


@pytest.fixture(scope="module")
def trades_step(reference):
    """(model, loss) after the fixture's TRADES step and its backward pass, on the reference's weights."""
    path, batch, meta = reference
    model = load_model(path, arch="wrn-16-4").train()
    settings = meta["trades_loss"]
    # the reference draws its uniform start from torch's default generator seeded with `seed`
    loss = trades_loss(model, batch["images"].float() / 255, batch["labels"], eps=8 / 255, step_size=2 / 255,
                       steps=settings["perturb_steps"], beta=settings["beta"],
                       label_smoothing=settings["label_smoothing"],
                       generator=torch.Generator().manual_seed(settings["seed"]))
    loss.backward()
    return model, loss.item()


def test_one_trades_step_matches_the_reference(reference, trades_step):
    _, batch, _ = reference
    model, loss = trades_step
    # PGD's sign steps make this loss ill-conditioned in the last bits: a gradient component near zero
    # flips its sign with the CPU's summation order, moving one pixel by a whole step. Measured on the
    # fixture: weights scaled by 1 + 1e-7 noise move the loss by up to 1.4e-3 (and one such draw gives
    # the fixture's value to 3e-6), so machines whose kernels differ agree to ~1e-3, not 1e-5. A wrong
    # attack is off by far more (measured: one step fewer -0.27, step 1.5/255 -0.70, beta 6 +2.4).
    assert abs(loss - batch["trades_loss"].item()) < 5e-3
    # BatchNorm momentum 0.01, updated by the clean and then the adversarial batch, as the reference's
    # the adversarial batch updates them too: the same 1e-7 weight noise moves them by up to 1e-5 / 5e-5
    assert (model.batchnorm.running_mean - batch["running_mean_after"]).abs().max() < 5e-5
    assert (model.batchnorm.running_var - batch["running_var_after"]).abs().max() < 2e-4


def test_arch_must_match_the_tensors(reference):
    from robustscale.errors import RobustscaleError

    path, _, _ = reference
    with pytest.raises(RobustscaleError, match="^arch: .* holds a wrn-16-4, not wrn-28-10"):
        load_model(path, arch="wrn-28-10")


def _reference_sgd_step(model, lr: float) -> None:
    """`watrain.py`: group_weight (BatchNorm by name, undecayed), SGD(momentum=0.9, nesterov), OneCycleLR
    (cycle_momentum left at its default) over 100 epochs, stepped per epoch: the first update."""
    named = list(model.named_parameters())
    groups = [{"params": [p for n, p in named if "batchnorm" not in n]},
              {"params": [p for n, p in named if "batchnorm" in n], "weight_decay": 0.0}]
    sgd = torch.optim.SGD(groups, lr=lr, weight_decay=5e-4, momentum=0.9, nesterov=True)
    torch.optim.lr_scheduler.OneCycleLR(sgd, max_lr=lr, pct_start=0.025, total_steps=100)
    sgd.step()


def test_one_sgd_step_matches_the_references(trades_step, tmp_path):
    """The fixture's TRADES step, then one update by our optimiser and by the reference's: equal within 1e-6
    with the cycled momentum (the reference's), 2.6% of the update apart with a constant 0.9."""
    model, _ = trades_step
    theirs = copy.deepcopy(model)
    for mine, other in zip(model.parameters(), theirs.parameters()):
        other.grad = mine.grad.clone()
    before = [p.detach().clone() for p in model.parameters()]
    # the reference's CIFAR-10 run at 5M samples: 100 epochs of 50,000 (App. D: batch 1024, lr 0.3)
    cfg = TrainConfig(model="wrn-16-4", dataset="cifar10", samples="5M", out=str(tmp_path)).resolved()
    assert cfg.momentum_schedule == "cycle"
    _reference_sgd_step(theirs, cfg.lr)
    update = torch.cat([(p.detach() - b).flatten() for p, b in zip(theirs.parameters(), before)])
    for schedule in ("cycle", "constant"):
        ours = copy.deepcopy(model)
        for mine, other in zip(model.parameters(), ours.parameters()):
            other.grad = mine.grad.clone()
        config = dataclasses.replace(cfg, momentum_schedule=schedule)
        optimizer = make_optimizer(ours, config)
        set_step_schedule(optimizer, config, 0, -(-cfg.samples // cfg.batch_size),
                          -(-cfg.epoch_samples // cfg.batch_size))
        optimizer.step()
        gap = torch.cat([(a.detach() - b.detach()).flatten()
                         for a, b in zip(ours.parameters(), theirs.parameters())])
        if schedule == "cycle":
            assert gap.abs().max() < 1e-6 and update.abs().max() > 1e-3
        else:  # a first update is lr (1 + momentum) times the gradient: 1.9 / 1.95 of the reference's
            assert (gap.norm() / update.norm()).item() == pytest.approx(0.05 / 1.95, rel=1e-3)
