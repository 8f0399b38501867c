"""PGD-40 evaluation throughput beside plain forward+backward throughput of the same model.

Claim: robust evaluation with PGD-40 on the CW loss (§3.1) costs about 40 forward+input-backward
passes per image plus two forwards, so its images/s should sit near 1/40 of a plain
forward+backward pass; a much lower ratio would mean overhead in the attack loop.
Evidence: images/s of `robustscale.attacks.evaluation.robust_accuracy` (PGD-40-CW, eval mode) and of a
plain training-style forward+backward on the same model and batch, mean ± std over --repeats
timed blocks after warm-up, timed between two synchronisations, and their ratio. GPU figures go
in bench/RESULTS.md with the device and commit.

    .venv/bin/python bench/bench_pgd.py                                   # CPU: wrn-10-1 on 28x28
    python bench/bench_pgd.py --model wrn-28-10 --dataset cifar10 --batch 512 --device cuda
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F

from bench_train import timed  # bench/ is on sys.path when a script here runs
from robustscale.attacks.evaluation import robust_accuracy
from robustscale.data.datasets import dataset_info
from robustscale.models import create_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="wrn-10-1")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40, help="PGD steps (the paper's 40)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    device = torch.device(args.device)
    info = dataset_info(args.dataset)
    torch.manual_seed(0)
    model = create_model(args.model, dataset=args.dataset).to(device)
    x = torch.rand(args.batch, *info.shape, device=device)
    y = torch.randint(0, len(info.classes), (args.batch,), device=device)

    def forward_backward(_step):
        model.train()
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()

    def pgd_eval(_step):
        robust_accuracy(model, x, y, eps=info.default_eps, steps=args.steps, step_size=info.default_eps / 4,
                        batch_size=args.batch)

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    plain, pgd = ([args.batch / t for t in timed(fn, 1, args.warmup, args.repeats, sync)]
                  for fn in (forward_backward, pgd_eval))
    mean = statistics.mean
    print(f"{args.model} on {args.dataset} ({device}, batch {args.batch}, torch {torch.__version__})")
    print(f"  forward+backward : {mean(plain):10.1f} ± {statistics.pstdev(plain):.1f} img/s")
    print(f"  PGD-{args.steps}-CW eval  : {mean(pgd):10.1f} ± {statistics.pstdev(pgd):.1f} img/s")
    print(f"  ratio PGD / forward+backward: {mean(pgd) / mean(plain):.4f} "
          f"(ideal about 1/{args.steps + 1} = {1 / (args.steps + 1):.4f})")


if __name__ == "__main__":
    main()
