"""FLOPs accounting (App. B): c in FLOPs = c N D within 3% of the paper's 7822; one function by mode and \
shape."""

import pytest
import torch

from robustscale.flops import (
    STANDARD_FORWARD_EQUIVALENTS,
    TRADES_FORWARD_EQUIVALENTS,
    flops_ratio,
    flops_summary,
    forward_flops,
    train_flops_per_sample,
)
from robustscale.models import create_model


@pytest.mark.parametrize("name", ["wrn-70-16", "wrn-82-8"])
def test_c_matches_paper(name):
    assert flops_ratio(name) == pytest.approx(7822, rel=0.03)


def test_forward_flops_by_hand():
    # 2 FLOPs per multiply-accumulate of every conv and the head, counted from the architecture
    model = create_model("wrn-10-1", dataset="fashion-mnist")
    macs = 0
    hooks = []

    def conv_hook(m, inp, out):
        nonlocal macs
        macs += out.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups

    def linear_hook(m, inp, out):
        nonlocal macs
        macs += out.numel() * m.in_features

    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, torch.nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    model.eval()(torch.rand(1, 1, 28, 28))
    assert forward_flops(model) == 2 * macs
    assert train_flops_per_sample(model) == TRADES_FORWARD_EQUIVALENTS * 2 * macs == 27 * 2 * macs
    assert (train_flops_per_sample(model, mode="standard")
            == STANDARD_FORWARD_EQUIVALENTS * 2 * macs == 3 * 2 * macs)
    # a registry name at the dataset's shape counts what the built model counts
    assert train_flops_per_sample("wrn-10-1", (1, 28, 28)) == train_flops_per_sample(model)
    assert forward_flops("wrn-10-1") > forward_flops("wrn-10-1", (1, 28, 28))  # 3x32x32 by default


def test_largest_model_costs_no_memory():
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    summary = flops_summary("wrn-94-16")
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert summary["params"] > 360e6  # 1.4 GiB of float32 weights, were they allocated
    assert grown_mib < 200


def test_cli_json(cli):
    d = cli("flops", "wrn-82-8", "--json").json
    assert d["params"] == 79125466 and d["input_shape"] == [3, 32, 32]
    assert d["train_flops_per_sample"] == 27 * d["forward_flops"]
    assert d["c"] == pytest.approx(7822, rel=0.03)
    assert d["c"] == pytest.approx(d["train_flops_per_sample"] / d["params"])
    standard = cli("flops", "wrn-82-8", "--mode", "standard", "--data", "fashion-mnist", "--json").json
    assert standard["input_shape"] == [1, 28, 28]
    assert standard["train_flops_per_sample"] == 3 * standard["forward_flops"] < d["forward_flops"] * 3


def test_cli_bad_model(cli):
    r = cli("flops", "wrn-27-4")
    assert r.returncode == 2
    assert r.stderr.startswith("error: invalid model 'wrn-27-4'")
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("name, shape", [("wrn-28-10", None), ("wrn-70-16", None), ("wrn-10-1", (1, 28, 28)),
                                         ("wrn-16-4", (3, 32, 32)), ("wrn-22-2", (3, 64, 64))])
def test_forward_flops_equal_torchs_flop_counter(name, shape):
    """The model's own count (from its layers' shapes) is what torch's FlopCounterMode measures."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from robustscale.flops import _meta_copy, forward_flops

    meta = _meta_copy(name, shape)
    with FlopCounterMode(display=False) as counter:
        meta(torch.empty(1, *meta.input_shape(), device="meta"))
    assert forward_flops(name, shape) == counter.get_total_flops()


def test_flops_follow_the_dataset(cli):
    """TinyImageNet's 3x64x64 images cost 4x CIFAR's per convolution and its 200 classes add head weights."""
    tiny = cli("flops", "wrn-28-10", "--data", "tiny-imagenet", "--json").json
    cifar = flops_summary("wrn-28-10", (3, 32, 32), num_classes=10)
    assert tiny["input_shape"] == [3, 64, 64] and tiny["num_classes"] == 200
    assert tiny["params"] - cifar["params"] == 640 * 190 + 190  # the linear head's extra rows and biases
    head = 2 * 640 * (200 - 4 * 10)  # the head's FLOPs do not grow with the image; the 4x would count them
    assert tiny["forward_flops"] == 4 * cifar["forward_flops"] + head
    assert tiny["c"] == pytest.approx(4 * cifar["c"], rel=0.01)
