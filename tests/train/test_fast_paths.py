"""The GPU fast path, run on the CPU: every switch torch supports here matches the fp32 eager step.

One TRADES step of wrn-10-1 on a real Fashion-MNIST batch, through the trainer's own `loss` and
`apply_update`, compared with the fp32 eager step from the same weights. Tolerances, relative to the
fp32 step (loss value; L2 norm of the weight update):
- channels_last (fp32): 1e-5 on the loss, 1e-4 on the update (other convolution kernels);
- torch.compile, inductor CPU backend (fp32, a standard step): 1e-5 and 1e-4 (fused kernels
  reorder float sums);
- bf16 autocast: 5e-3 on the loss, 0.1 on the update (8-bit mantissas through 10 layers; measured
  2.5e-4 and 0.02);
- fused and foreach SGD against the per-tensor loop, and the foreach EMA against a python loop:
  1e-6 (the same arithmetic, vectorised).
The compiled attack's backward graph has one output, the input gradient: the weights are frozen.
Tests marked `cuda` check what only CUDA runs (skipped without a GPU), bf16 there within 2e-2 and 0.15.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

from robustscale.train import TrainConfig, Trainer

BATCH = 32


def _trainer(tmp_path, name: str, device: str = "cpu", **over) -> Trainer:
    cfg = TrainConfig(model="wrn-10-1", dataset="fashion-mnist", samples=10 * BATCH, out=str(tmp_path / name),
                      batch_size=BATCH, lr=0.05, attack_steps=2, eval_images=64, device=device, **over)
    return Trainer(cfg, progress=False)


@pytest.fixture(scope="module")
def batch(fashion_mnist):
    xtr, ytr, _, _ = fashion_mnist
    x = torch.from_numpy(xtr[:BATCH].copy()).permute(0, 3, 1, 2).float().div_(255)
    return x, torch.from_numpy(ytr[:BATCH].copy())


def _step(trainer: Trainer, x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
    """(loss, weight update) of one training step from the trainer's initial weights."""
    x, y = x.to(trainer.device), y.to(trainer.device)
    if trainer.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.model.train()
    loss = trainer.loss(x, y, 0, 0)
    loss.backward()
    trainer.apply_update(0)
    update = torch.cat([(p.detach() - b).float().flatten().cpu()
                        for p, b in zip(trainer.model.parameters(), before)])
    return loss.item(), update


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, batch):
    """The fp32 eager step."""
    trainer = _trainer(tmp_path_factory.mktemp("ref"), "run", bf16=False, channels_last=False)
    return _step(trainer, *batch)


@pytest.mark.parametrize("switch, loss_tol, update_tol", [
    ({"channels_last": True}, 1e-5, 1e-4),
    ({"bf16": True}, 5e-3, 0.1),
])
def test_switch_matches_fp32_eager_step(tmp_path, batch, reference, switch, loss_tol, update_tol):
    loss, update = _step(_trainer(tmp_path, "run", **{"bf16": False, "channels_last": False, **switch}),
                         *batch)
    ref_loss, ref_update = reference
    assert abs(loss - ref_loss) <= loss_tol * abs(ref_loss), (loss, ref_loss)
    assert _rel(update, ref_update) <= update_tol, _rel(update, ref_update)


def test_compiled_step_matches_fp32_eager_step(tmp_path, batch):
    """torch.compile with inductor's CPU backend: one plain (standard-mode) step, a single graph to
    compile (~20 s of C++ on 2 cores); the attack's compiled graph is checked below with a cheap backend."""
    settings = {"bf16": False, "channels_last": False, "mode": "standard"}
    loss, update = _step(_trainer(tmp_path, "compiled", compile=True, **settings), *batch)
    ref_loss, ref_update = _step(_trainer(tmp_path, "eager", **settings), *batch)
    assert abs(loss - ref_loss) <= 1e-5 * abs(ref_loss), (loss, ref_loss)
    assert _rel(update, ref_update) <= 1e-4, _rel(update, ref_update)


def test_fused_and_foreach_sgd_match_the_loop(tmp_path, batch):
    trainer = _trainer(tmp_path, "run", bf16=False, channels_last=False)
    x, y = batch
    trainer.loss(x, y, 0, 0).backward()
    grads = [p.grad.clone() for p in trainer.model.parameters()]
    results = {}
    for kind in ("loop", "foreach", "fused"):
        params = [p.detach().clone().requires_grad_(True) for p in trainer.model.parameters()]
        opt = torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4,
                              **{"loop": {"foreach": False}, "foreach": {"foreach": True},
                                 "fused": {"fused": True}}[kind])
        for _ in range(3):  # momentum buffers in play from the second step
            for p, g in zip(params, grads):
                p.grad = g.clone()
            opt.step()
        results[kind] = torch.cat([p.detach().flatten() for p in params])
    for kind in ("foreach", "fused"):
        assert _rel(results[kind], results["loop"]) <= 1e-6, kind


def test_foreach_ema_matches_a_python_loop(tmp_path):
    from robustscale.train.ema import EMA

    torch.manual_seed(0)
    trainer = _trainer(tmp_path, "run", bf16=False, channels_last=False)
    model = trainer.model
    ema = EMA(model, decay=0.9)
    loop = [p.detach().clone() for p in model.parameters()]
    for step in range(5):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.01)
        ema.update(model, step)
        d = ema.decay_at(step)
        for q, p in zip(loop, model.parameters()):
            q.mul_(d).add_(p.detach(), alpha=1 - d)
    for q, p in zip(loop, ema.model.parameters()):
        assert _rel(p.detach(), q) <= 1e-6


def test_compiled_attack_computes_no_weight_gradients(batch):
    """The attack's compiled backward graph: with the weights frozen its only output is the input's
    gradient; without, it would also compute (and throw away) one gradient per parameter."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    from robustscale.attacks.trades import frozen_bn_stats, frozen_weights, trades_attack
    from robustscale.models import create_model

    backward_graphs = []

    def keep_backward(gm, _inputs):
        backward_graphs.append(gm)
        return make_boxed_func(gm.forward)

    backend = aot_autograd(fw_compiler=lambda gm, _inputs: make_boxed_func(gm.forward),
                           bw_compiler=keep_backward)
    torch.manual_seed(0)
    model = create_model("wrn-10-1", dataset="fashion-mnist").train()
    compiled = torch.compile(model, backend=backend)
    x = batch[0][:4]
    outputs = {}
    for frozen in (True, False):
        torch._dynamo.reset()
        backward_graphs.clear()
        with torch.no_grad():
            clean = model(x)
        with frozen_bn_stats(model), frozen_weights(model) if frozen else contextlib.nullcontext():
            trades_attack(compiled, x, clean, eps=0.1, step_size=0.025, steps=2)
        out = next(n for n in backward_graphs[-1].graph.nodes if n.op == "output")
        outputs[frozen] = sum(a is not None for a in out.args[0])
    n_params = len(list(model.parameters()))
    assert outputs == {True: 1, False: 1 + n_params}
    assert all(p.requires_grad for p in model.parameters())  # restored afterwards


@pytest.mark.cuda
def test_cuda_defaults_bf16_channels_last_fused_match_fp32(tmp_path, batch):
    """On CUDA the defaults are bf16 autocast, channels_last and fused SGD; cudnn.benchmark is on."""
    fast = _trainer(tmp_path, "fast", device="cuda")
    assert fast.bf16 and fast.channels_last and torch.backends.cudnn.benchmark
    loss, update = _step(fast, *batch)
    ref_loss, ref_update = _step(_trainer(tmp_path, "ref", device="cuda", bf16=False, channels_last=False),
                                 *batch)
    assert abs(loss - ref_loss) <= 2e-2 * abs(ref_loss)
    assert _rel(update, ref_update) <= 0.15


@pytest.mark.cuda
def test_cuda_compiled_bf16_step_matches_fp32(tmp_path, batch):
    loss, update = _step(_trainer(tmp_path, "fast", device="cuda", compile=True), *batch)
    ref_loss, ref_update = _step(_trainer(tmp_path, "ref", device="cuda", bf16=False, channels_last=False),
                                 *batch)
    assert abs(loss - ref_loss) <= 2e-2 * abs(ref_loss)
    assert _rel(update, ref_update) <= 0.15

