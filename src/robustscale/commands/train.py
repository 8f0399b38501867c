"""`robustscale train`: adversarial (TRADES) or standard training into a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from robustscale.commands.output import JsonOption, emit


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)


def train_command(
    model: Optional[str] = typer.Option(None, "--model",
                                        help="Model name, e.g. wrn-28-4 (any wrn-DEPTH-WIDTH)."),
    data: Optional[str] = typer.Option(None, "--data", help="Real dataset: cifar10, cifar100, svhn, "
                                       "tiny-imagenet or fashion-mnist."),
    samples: Optional[str] = typer.Option(None, "--samples", help="Training samples: 10M, 200k, 1e6, 5000."),
    out: Path = typer.Option(..., "--out", help="Run directory (must be new or empty unless --resume)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder of the real dataset."),
    synthetic: Optional[List[Path]] = typer.Option(None, "--synthetic",
                                                   help="Synthetic shard store (repeatable)."),
    real_fraction: Optional[float] = typer.Option(None, "--real-fraction", help="Share of real images "
                                                  "per batch with --synthetic (1/8); 0 = synthetic only "
                                                  "(App. E)."),
    mode: Optional[str] = typer.Option(None, "--mode",
                                       help="trades (default, adversarial) or standard (plain CE)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size",
                                             help="Global batch; default from --samples (App. D)."),
    lr: Optional[float] = typer.Option(None, "--lr",
                                       help="Peak learning rate; default from --samples (App. D)."),
    norm: Optional[str] = typer.Option(None, "--norm", help="Threat model of the attacks: linf (default) or "
                                       "l2."),
    eps: Optional[float] = typer.Option(None, "--eps", help="Attack radius; default the dataset's for --norm "
                                        "(L-inf 8/255, L2 128/255 on the 32x32 sets)."),
    attack_steps: Optional[int] = typer.Option(None, "--attack-steps",
                                               help="PGD steps at training time (10)."),
    eval_every: Optional[str] = typer.Option(None, "--eval-every",
                                             help="Samples between evaluations (default 1/10 run)."),
    eval_images: Optional[int] = typer.Option(None, "--eval-images", help="Images the held-out scores and "
                                              "the law's loss are measured on (1024)."),
    eval_split: Optional[str] = typer.Option(None, "--eval-split", help="test (default: the first "
                                             "--eval-images test images, as the paper's CW_test_loss) or "
                                             "heldout (training images left out of training)."),
    eval_steps: Optional[int] = typer.Option(None, "--eval-steps", help="PGD-CW steps at evaluation (40)."),
    momentum_schedule: Optional[str] = typer.Option(None, "--momentum-schedule", help="cycle (default, the "
                                                    "reference's: SGD momentum 0.95 -> 0.85 at the end of "
                                                    "warm-up -> 0.95, OneCycleLR's) or constant (0.9)."),
    epoch_samples: Optional[int] = typer.Option(None, "--epoch-samples", help="Samples per epoch, the "
                                                "learning rate's step (50000, the reference's); --batch-size "
                                                "steps per update."),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every",
                                                   help="Steps between checkpoints."),
    accum_steps: Optional[int] = typer.Option(None, "--accum-steps",
                                              help="Micro-batches per step per process (1)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Run seed (0)."),
    device: Optional[str] = typer.Option(None, "--device",
                                         help="cpu, cuda or cuda:N (default: cuda if present)."),
    bf16: Optional[bool] = typer.Option(None, "--bf16/--no-bf16", help="bf16 autocast (default on CUDA)."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the model."),
    sync_bn: bool = typer.Option(False, "--sync-bn", help="SyncBatchNorm across processes (CUDA)."),
    fid: Optional[float] = typer.Option(None, "--fid", help="FID of the --synthetic data, if its store's "
                                        "manifest has none (it must agree with the manifest's otherwise)."),
    source: Optional[str] = typer.Option(None, "--source", help="Name of the data source in the observations "
                                         "(default: real, or the synthetic stores' names)."),
    tensorboard: bool = typer.Option(False, "--tensorboard", help="Also write TensorBoard event files "
                                     "(OUT/tensorboard) of the metrics.jsonl scalars."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its checkpoint."),
    json_output: JsonOption = False,
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
) -> None:
    """Train a WideResNet with TRADES (paper §3.1, App. B) into a run directory; --resume continues it.

    With --resume and no --model/--data/--samples, the run's own config.json supplies them.
    Multi-GPU: torchrun --nproc-per-node K -m robustscale train ...
    """
    from robustscale.train import parse_samples, train_run
    from robustscale.train.distributed import is_main_process

    given = {"model": model, "dataset": data, "samples": samples, "data_dir": data_dir and str(data_dir),
             "synthetic": [str(s) for s in synthetic] if synthetic else None, "real_fraction": real_fraction,
             "batch_size": batch_size, "mode": mode, "lr": lr, "norm": norm, "eps": eps,
             "attack_steps": attack_steps,
             "eval_images": eval_images, "eval_split": eval_split, "eval_steps": eval_steps,
             "momentum_schedule": momentum_schedule, "epoch_samples": epoch_samples,
             "eval_every": parse_samples(eval_every, "eval_every") if eval_every else None,
             "checkpoint_every": checkpoint_every, "accum_steps": accum_steps, "seed": seed, "device": device,
             "bf16": bf16, "compile": compile or None, "sync_bn": sync_bn or None, "fid": fid,
             "source": source, "tensorboard": tensorboard or None}
    result = train_run(out, resume=resume, progress=not no_progress, **given)
    # Under torchrun every rank returns the same result: one copy on stdout is enough.
    if is_main_process():
        emit(result, json_output, _render)


def _render(result: dict) -> None:
    final = result["final"]
    print(f"{result['out']}: {result['steps']} steps, {result['samples']} samples, {result['flops']:.3g} "
          f"FLOPs; held-out clean {final['clean_accuracy']:.4f}, PGD-40 {final['accuracy']:.4f}, "
          f"loss {final['loss']:.4f}; "
          f"best PGD-40 {result['best']['accuracy']:.4f} at step {result['best']['step']}")
