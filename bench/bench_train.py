"""Training-step throughput: our TRADES step vs a reference step written the DeepMind way.

Claim: our step (clean forward computed once and reused, channels_last, bf16 autocast on CUDA,
fused SGD, foreach EMA, no per-step host sync, optional torch.compile) trains faster than the
reference step (fp32, a separate no-grad clean forward for the attack, python-loop EMA, `.item()`
every step) on the same model and batch. Both do TRADES with PGD-10 (§3.1). Each step gets its
batch in the layout the trainer hands it: augmentation returns contiguous NCHW, which the trainer
turns into channels_last only when the model is (a batch fresh from NHWC uint8 storage would reach
both steps in channels_last already and overstate the reference).
Evidence: images/s of each (mean ± std over --repeats timed blocks, after warm-up, timed between
two synchronisations), their ratio, and MFU = executed model FLOPs / time / --peak-tflops
(executed FLOPs per image: ours 26 forward passes, reference 27, App. B.1; the peak is never
assumed). GPU figures go in bench/RESULTS.md with the device and commit.

    .venv/bin/python bench/bench_train.py                          # CPU: wrn-10-1, small batch
    .venv/bin/python bench/bench_train.py --channels-last off      # what channels_last is worth
    python bench/bench_train.py --model wrn-28-10 --batch 512 --peak-tflops 989   # e.g. H100 bf16 dense
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F


def reference_step(model, ema_model, optimizer, x, y, *, eps, step_size, steps, beta, smoothing, decay):
    """DeepMind/TRADES-reference style: fp32, redundant clean forward, python EMA, .item() per step."""
    model.eval()
    with torch.no_grad():
        p_natural = F.softmax(model(x), dim=1)  # the extra forward App. B.1 points out
    model.train()
    x_adv = x + 0.001 * torch.randn_like(x)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        kl = F.kl_div(F.log_softmax(model(x_adv), 1), p_natural, reduction="sum")
        grad, = torch.autograd.grad(kl, x_adv)
        x_adv = torch.min(torch.max(x_adv.detach() + step_size * grad.sign(), x - eps), x + eps).clamp(0, 1)
    logits_natural, logits_adv = model(x), model(x_adv)
    loss = F.cross_entropy(logits_natural, y, label_smoothing=smoothing) + beta * F.kl_div(
        F.log_softmax(logits_adv, 1), F.softmax(logits_natural, 1), reduction="batchmean")
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        for p_ema, p in zip(ema_model.parameters(), model.parameters()):
            p_ema.mul_(decay).add_(p, alpha=1 - decay)
        for b_ema, b in zip(ema_model.buffers(), model.buffers()):
            b_ema.copy_(b)
    return loss.item()


def timed(fn, n_steps, warmup, repeats, sync):
    for i in range(warmup):
        fn(i)
    sync()
    out = []
    for r in range(repeats):
        t0 = time.perf_counter()
        for i in range(n_steps):
            fn(warmup + r * n_steps + i)
        sync()
        out.append(time.perf_counter() - t0)
    return out


def measure(model: str = "wrn-10-1", dataset: str = "fashion-mnist", batch: int = 32, steps: int = 2,
            warmup: int = 1, repeats: int = 3, device: str | None = None, compile: bool = False,
            peak_tflops: float | None = None, channels_last: bool | None = None) -> dict:
    """images/s (mean, std) of our step and of the reference step, their ratio, and MFU when a peak is \
given."""
    import copy

    from robustscale.data.datasets import images_to_tensor, load_dataset
    from robustscale.flops import forward_flops
    from robustscale.train import TrainConfig, Trainer

    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(model=model, dataset=dataset, samples=10 * batch, out=tmp, batch_size=batch, lr=0.1,
                          device=device, compile=compile, eval_images=16, channels_last=channels_last)
        ours = Trainer(cfg, progress=False)
    c = ours.cfg
    dev = ours.device
    images, labels = load_dataset(dataset, "train")
    x = images_to_tensor(images[:batch], dev).contiguous()  # NCHW, as random_crop_flip returns it
    y = torch.from_numpy(labels[:batch]).to(dev)
    x_ours = x.contiguous(memory_format=torch.channels_last) if ours.channels_last else x
    ref_model = copy.deepcopy(ours.model).to(memory_format=torch.contiguous_format).float()
    ref_ema = copy.deepcopy(ref_model)
    ref_opt = torch.optim.SGD(ref_model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4,
                              foreach=False)
    ours.model.train()

    def our_step(i):
        ours.loss(x_ours, y, i, 0).backward()
        ours.apply_update(i)

    def ref_step(i):
        reference_step(ref_model, ref_ema, ref_opt, x, y, eps=c.eps, step_size=c.step_size,
                       steps=c.attack_steps, beta=c.beta, smoothing=c.label_smoothing, decay=c.ema_decay)

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    fwd = forward_flops(ours.model)
    out = {"device": device_name(dev), "model": model, "batch": batch, "attack_steps": c.attack_steps,
           "bf16": ours.bf16, "channels_last": ours.channels_last, "compile": compile,
           "torch": torch.__version__}
    for name, fn, passes in (("reference", ref_step, 2 * c.attack_steps + 7),
                             ("ours", our_step, 2 * c.attack_steps + 6)):
        ips = [batch * steps / t for t in timed(fn, steps, warmup, repeats, sync)]
        mean = statistics.mean(ips)
        out[name] = {"img_s": mean, "std": statistics.stdev(ips) if len(ips) > 1 else 0.0,
                     "mfu": mean * passes * fwd / (peak_tflops * 1e12) if peak_tflops else None}
    out["ratio"] = out["ours"]["img_s"] / out["reference"]["img_s"]
    return out


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def bench_arguments(description: str, batch: int, steps: int, steps_help: str) -> argparse.ArgumentParser:
    """The flags the training and attack benchmarks share (CPU-sized defaults)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--model", default="wrn-10-1")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--batch", type=int, default=batch)
    ap.add_argument("--steps", type=int, default=steps, help=steps_help)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default=None)
    return ap


def main() -> None:
    ap = bench_arguments(__doc__.splitlines()[0], 32, 2, "steps per timed block")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU (e.g. bf16 dense)")
    ap.add_argument("--channels-last", choices=("on", "off"), default=None,
                    help="default: the trainer's choice")
    args = ap.parse_args()
    r = measure(args.model, args.dataset, args.batch, args.steps, args.warmup, args.repeats, args.device,
                args.compile, args.peak_tflops,
                None if args.channels_last is None else args.channels_last == "on")
    print(f"device {r['device']}, torch {r['torch']}, {r['model']}, batch {r['batch']}, "
          f"PGD-{r['attack_steps']}, bf16 {r['bf16']}, "
          f"channels_last {r['channels_last']}, compile {r['compile']}")
    for name in ("reference", "ours"):
        mfu = f"  MFU {100 * r[name]['mfu']:.1f}%" if r[name]["mfu"] is not None else ""
        print(f"{name:>9}: {r[name]['img_s']:10.1f} ± {r[name]['std']:.1f} images/s{mfu}")
    print(f"    ratio: {r['ratio']:.2f}x (ours / reference)")


if __name__ == "__main__":
    main()
