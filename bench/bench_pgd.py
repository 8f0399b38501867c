"""PGD-40 evaluation throughput beside plain forward+backward throughput of the same model, and the
cost of a compiled attack step with the weights frozen or not.

Claim: robust evaluation with PGD-40 on the CW loss (§3.1) costs about 40 forward+input-backward
passes per image plus two forwards, so its images/s should sit near 1/40 of a plain
forward+backward pass; a much lower ratio would mean overhead in the attack loop. With `--compile`,
a compiled attack step whose weights still require gradients also computes every weight gradient
and discards it; freezing them (as training does) must make the step cheaper.
Evidence: images/s of `robustscale.attacks.evaluation.robust_evaluation` (PGD-40-CW, eval mode,
the one evaluation of training and `evaluate`) and of a
plain training-style forward+backward on the same model and batch, mean ± std over --repeats
timed blocks after warm-up, timed between two synchronisations, and their ratio; with --compile,
ms per TRADES attack step eager, compiled, and compiled with frozen weights.

    .venv/bin/python bench/bench_pgd.py                                   # CPU: wrn-10-1 on 28x28
    python bench/bench_pgd.py --model wrn-28-10 --dataset cifar10 --batch 512 --device cuda --compile
"""

from __future__ import annotations

import contextlib
import statistics

import torch
import torch.nn.functional as F
from bench_train import bench_arguments, timed  # bench/ is on sys.path when a script here runs

from robustscale.attacks.evaluation import robust_evaluation
from robustscale.attacks.trades import frozen_bn_stats, frozen_weights, trades_attack
from robustscale.data.datasets import dataset_info
from robustscale.models import create_model


def _setup(model_name: str, dataset: str, batch: int, device: torch.device):
    info = dataset_info(dataset)
    torch.manual_seed(0)
    model = create_model(model_name, dataset=dataset).to(device)
    x = torch.rand(batch, *info.shape, device=device)
    y = torch.randint(0, len(info.classes), (batch,), device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    return info, model, x, y, sync


def measure(model_name: str = "wrn-10-1", dataset: str = "fashion-mnist", batch: int = 64, steps: int = 40,
            warmup: int = 1, repeats: int = 3, device: str | None = None) -> dict:
    """images/s (mean, std) of a plain forward+backward and of PGD-`steps`-CW evaluation, and their ratio."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    info, model, x, y, sync = _setup(model_name, dataset, batch, device)

    def forward_backward(_step):
        model.train()
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()

    def pgd_eval(_step):
        robust_evaluation(model, x, y, eps=info.default_eps, steps=steps, batch_size=batch)

    plain, pgd = ([batch / t for t in timed(fn, 1, warmup, repeats, sync)]
                  for fn in (forward_backward, pgd_eval))
    return {"model": model_name, "dataset": dataset, "device": str(device), "batch": batch, "steps": steps,
            "forward_backward": (statistics.mean(plain), statistics.pstdev(plain)),
            "pgd": (statistics.mean(pgd), statistics.pstdev(pgd)),
            "ratio": statistics.mean(pgd) / statistics.mean(plain)}


def measure_compiled_attack(model_name: str = "wrn-10-1", dataset: str = "fashion-mnist", batch: int = 64,
                            steps: int = 10, warmup: int = 2, repeats: int = 3,
                            device: str | None = None) -> dict:
    """ms per attack step (TRADES' PGD on the KL, train mode): eager, compiled, compiled with \
frozen weights."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    info, model, x, _, sync = _setup(model_name, dataset, batch, device)
    model.train()
    with torch.no_grad():
        clean = model(x)
    compiled = torch.compile(model)
    out = {}
    for name, net, freeze in (("eager", model, False), ("compiled", compiled, False),
                              ("compiled_frozen", compiled, True)):
        def attack(_step, net=net, freeze=freeze):
            with frozen_bn_stats(model), frozen_weights(model) if freeze else contextlib.nullcontext():
                trades_attack(net, x, clean, eps=info.default_eps, step_size=info.default_eps / 4,
                              steps=steps)

        times = timed(attack, 1, warmup, repeats, sync)
        out[name] = 1000 * statistics.mean(times) / steps
    return out


def main() -> None:
    parser = bench_arguments(__doc__.splitlines()[0], 64, 40, "PGD steps (the paper's 40)")
    parser.add_argument("--compile", action="store_true",
                        help="also time compiled attack steps (slow to compile)")
    args = parser.parse_args()
    r = measure(args.model, args.dataset, args.batch, args.steps, args.warmup, args.repeats, args.device)
    print(f"{r['model']} on {r['dataset']} ({r['device']}, batch {r['batch']}, torch {torch.__version__})")
    print(f"  forward+backward : {r['forward_backward'][0]:10.1f} ± {r['forward_backward'][1]:.1f} img/s")
    print(f"  PGD-{r['steps']}-CW eval  : {r['pgd'][0]:10.1f} ± {r['pgd'][1]:.1f} img/s")
    print(f"  ratio PGD / forward+backward: {r['ratio']:.4f} (ideal about 1/{r['steps'] + 1} = "
          f"{1 / (r['steps'] + 1):.4f})")
    if args.compile:
        c = measure_compiled_attack(args.model, args.dataset, args.batch, device=args.device)
        print(f"  attack step: eager {c['eager']:.1f} ms, compiled {c['compiled']:.1f} ms, compiled with "
              f"frozen weights {c['compiled_frozen']:.1f} ms (frozen / not: "
              f"{c['compiled_frozen'] / c['compiled']:.2f})")


if __name__ == "__main__":
    main()
