"""Throughput of the demo's preset on this machine: TRADES training images/s and held-out
evaluation images/s per model size, with the preset's own settings (`robustscale.demo.PRESETS`).

Claim: the Fashion-MNIST preset fits its time budget on 2 CPU cores, and its runs go faster one
thread each, two at a time (what the demo does), than one at a time on two threads. Evidence: for
each model, training images/s (the trainer's step: batch, attack steps, EMA, as the demo runs it,
after one warm-up step) and PGD-CW evaluation images/s on the preset's held-out images at
--threads; then the demo's training + evaluation time predicted from them (samples / rate, divided
among --workers runs at once).

    .venv/bin/python bench/bench_demo.py --threads 1 --workers 2   # the demo's way
    .venv/bin/python bench/bench_demo.py --threads 2 --workers 1   # one run on both cores
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch


def main() -> None:
    from robustscale.demo import PRESETS
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
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch {train['batch_size']}, "
          f"TRADES with {train['attack_steps']} attack steps; PGD-{evaluation['eval_steps']}-CW on "
          f"{evaluation['eval_images']} held-out images")
    predicted = 0.0
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
        samples = sum(preset["samples"])
        evals = sum(max(1, s // evaluation["eval_every"]) for s in preset["samples"] + preset["baselines"])
        # standard training runs ~3 forward-equivalents a sample against TRADES' ~12: a quarter of the time
        seconds = (samples + sum(preset["baselines"]) / 4) / train_ips + evals * eval_s
        predicted += seconds
        print(f"{model:>9}: {t.params:>7,} params  train {train_ips:6.0f} images/s  "
              f"evaluation {evaluation['eval_images'] / eval_s:6.0f} images/s ({eval_s:.1f} s each)  "
              f"-> {seconds:.0f} s of the demo")
    print(f"predicted demo training + evaluation: {predicted / args.workers:.0f} s "
          f"({args.workers} run(s) at once, {args.threads} thread(s) each)")


if __name__ == "__main__":
    main()
