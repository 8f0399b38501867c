"""Reference equivalence, as data: the committed fixture was made by running the paper's own code.

tests/models/reference/ holds a reference-format WRN-16-4 (fp16, exact in fp32), an input batch,
and what the reference implementation (bbartoldson/Adversarial-Robustness-Limits at the commit in
reference.json: `core/models/wideresnetwithswish.py`, `gowal21uncovering/utils/trades.py`) computed
on them: eval- and train-mode logits, one TRADES training step's loss and the final BatchNorm's
running statistics after that step.
"""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from robustscale.attacks.trades import trades_loss
from robustscale.models import load_model

REFERENCE = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """(path of the weights as a torch state dict file, the batch and outputs, reference.json)."""
    state = {k: v.float() if v.is_floating_point() else v
             for k, v in load_file(REFERENCE / "wrn-16-4.safetensors").items()}
    path = tmp_path_factory.mktemp("ref") / "wrn-16-4.pt"
    torch.save({"model_state_dict": {f"module.{k}": v for k, v in state.items()}}, path)  # as DDP saves it
    return path, load_file(REFERENCE / "batch.safetensors"), json.loads((REFERENCE / "reference.json").read_text())


def test_fixture_names_the_reference_commit(reference):
    _, _, meta = reference
    assert len(meta["commit"]) == 40 and meta["reference"].endswith("Adversarial-Robustness-Limits")


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


def test_one_trades_step_matches_the_reference(reference):
    path, batch, meta = reference
    model = load_model(path, arch="wrn-16-4").train()
    settings = meta["trades_loss"]
    # the reference draws its uniform start from torch's default generator seeded with `seed`
    loss = trades_loss(model, batch["images"].float() / 255, batch["labels"], eps=8 / 255, step_size=2 / 255,
                       steps=settings["perturb_steps"], beta=settings["beta"],
                       label_smoothing=settings["label_smoothing"],
                       generator=torch.Generator().manual_seed(settings["seed"]))
    assert abs(loss.item() - batch["trades_loss"].item()) < 1e-5
    # BatchNorm momentum 0.01, updated by the clean and then the adversarial batch, as the reference's
    assert (model.batchnorm.running_mean - batch["running_mean_after"]).abs().max() < 1e-6
    assert (model.batchnorm.running_var - batch["running_var_after"]).abs().max() < 1e-5


def test_arch_must_match_the_tensors(reference):
    from robustscale.errors import RobustscaleError

    path, _, _ = reference
    with pytest.raises(RobustscaleError, match="^arch: .* holds a wrn-16-4, not wrn-28-10"):
        load_model(path, arch="wrn-28-10")
