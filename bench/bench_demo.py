"""Throughput of the demo's preset on this machine: TRADES training images/s and held-out evaluation
images/s per model size, with the preset's own settings (`robustscale.demo.PRESETS`), and the
executed FLOPs/s of training as a fraction of the matmul peak measured in the same process.

Claim: the Fashion-MNIST preset fits its time budget on 2 CPU cores (both rounds: the grid and
the runs `suggest` chooses for `demo.SECOND_ROUND_FLOPS`), and its runs go faster one thread each,
two at a time (what the demo does), than one at a time on two threads. Evidence: for each model,
training images/s (the trainer's step, channels_last as the trainer sets it: batch, attack steps,
EMA, as the demo runs it, after one warm-up step), the executed FLOPs/s of those steps (our loop's
2 x attack steps + 6 forward-equivalents per image) over the peak of a --threads fp32 torch.mm, and
PGD-CW evaluation images/s on the preset's held-out images; then the demo's training + evaluation
time predicted from them (samples / rate, divided among --workers runs at once; the second round
between its budget spread over --workers runs and spent on one run alone).

    .venv/bin/python bench/bench_demo.py --threads 1 --workers 2   # the demo's way
    .venv/bin/python bench/bench_demo.py --threads 2 --workers 1   # one run on both cores
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch


def matmul_peak(n: int = 1024, repeats: int = 5) -> float:
    """FLOP/s of an fp32 n x n torch.mm on this process's threads (best of `repeats`, after a warm-up)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / min(times)


def main() -> None:
    from robustscale.demo import PRESETS, SECOND_ROUND_FLOPS
    from robustscale.train import TrainConfig, Trainer
    from robustscale.train.loader import BatchLoader

    preset = PRESETS["fashion-mnist"]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(preset["models"]))
    ap.add_argument("--steps", type=int, default=16, help="timed training steps per model")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of one run")
    ap.add_argument("--workers", type=int, default=2, help="runs at once (for the prediction)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    train, evaluation = preset["train"], preset["evaluation"]
    peak = matmul_peak()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32 matmul peak {peak / 1e9:.1f} "
          f"GFLOP/s; batch {train['batch_size']}, TRADES with {train['attack_steps']} attack steps; "
          f"PGD-{evaluation['eval_steps']}-CW on {evaluation['eval_images']} held-out images")
    grid_s, counted_rates = 0.0, []
    for model in args.models.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = TrainConfig(model=model, dataset=preset["dataset"], samples=10**6, out=tmp, device="cpu",
                              **train, **evaluation)
            t = Trainer(cfg, progress=False)
            t.model.train()
            with BatchLoader(t.sampler, t.device, 0, args.steps + 1) as batches:
                for step in range(args.steps + 1):
                    if step == 1:  # step 0 warms up
                        t0 = time.perf_counter()
                    _, images, labels = batches.next()
                    t._train_step(step, images, labels)
                    t.apply_update(step)
            train_ips = args.steps * cfg.batch_size / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            t.evaluate()
            eval_s = time.perf_counter() - t0
        executed = train_ips * (2 * cfg.attack_steps + 6) * t.forward_flops  # FLOP/s our loop executes
        counted_rates.append(train_ips * t.flops_per_sample)  # the FLOPs count's (27 forwards) per second
        samples = sum(preset["samples"])
        evals = sum(max(1, s // evaluation["eval_every"]) for s in preset["samples"] + preset["baselines"])
        # standard training runs ~3 forward-equivalents a sample against TRADES' ~10:
        # about a quarter of the time
        seconds = (samples + sum(preset["baselines"]) / 4) / train_ips + evals * eval_s
        grid_s += seconds
        print(f"{model:>9}: {t.params:>7,} params  train {train_ips:6.0f} images/s ({executed / 1e9:5.1f} "
              f"GFLOP/s executed, {100 * executed / peak:4.1f}% of the matmul peak)  evaluation "
              f"{evaluation['eval_images'] / eval_s:6.0f} images/s ({eval_s:.1f} s each)  "
              f"-> {seconds:.0f} s of round 1")
    rate = statistics.mean(counted_rates)  # the second round's models are suggest's choice: their mean
    spread, alone = SECOND_ROUND_FLOPS / (args.workers * rate), SECOND_ROUND_FLOPS / rate
    print(f"predicted round 1 (training + evaluation): {grid_s / args.workers:.0f} s ({args.workers} run(s) "
          f"at once, {args.threads} thread(s) each); round 2 ({SECOND_ROUND_FLOPS:.3g} counted FLOPs at "
          f"{rate / 1e9:.0f} GFLOP/s counted per run): {spread:.0f} s spread over {args.workers} runs to "
          f"{alone:.0f} s as one run, before its evaluations")


if __name__ == "__main__":
    main()
