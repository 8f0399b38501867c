"""`robustscale evaluate`: clean, PGD-40-CW and AutoAttack accuracy of a checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from robustscale.commands.output import JsonOption, console, emit, warn


def register(app: typer.Typer) -> None:
    app.command()(evaluate)


def _floats(text: str | None, flag: str) -> tuple[float, ...] | None:
    """'0.5,0.5,0.5' -> (0.5, 0.5, 0.5)."""
    from robustscale.errors import RobustscaleError

    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise RobustscaleError(f"{flag}: expected comma-separated numbers such as 0.5,0.5,0.5, "
                               f"got {text!r}") from None


def evaluate(
    checkpoint: Path = typer.Argument(..., help="Weights: a run dir, <stem>.safetensors/.json or the "
                                      "stem, or a PyTorch state dict (.pt/.pth) of a DeepMind-style WRN: "
                                      "RobustBench's files, the reference trainer's (keys 0. or module.0.), "
                                      "with or without DDP's module."),
    data: str = typer.Option(..., "--data", help="cifar10, cifar100, svhn, tiny-imagenet or fashion-mnist "
                             "(its test split; TinyImageNet's validation set)."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Folder of the dataset files."),
    attack: str = typer.Option("both", "--attack", help="pgd40-cw, autoattack or both."),
    n: int = typer.Option(10000, "--n", help="Number of test images (the first n)."),
    eps: str = typer.Option(None, "--eps", help="Attack radius, e.g. 8/255 (default: the dataset's for "
                            "--norm)."),
    norm: str = typer.Option("linf", "--norm", help="Threat model: linf or l2 (PGD, AutoAttack and "
                             "RobustBench's threat_model)."),
    out: Path = typer.Option(..., "--out", help="Output folder (a half-finished one is resumed)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Images per attack batch (256)."),
    chunk_size: int = typer.Option(None, "--chunk-size", help="Images per saved (resumable) chunk (500)."),
    device: str = typer.Option(None, "--device", help="cpu, cuda, ... (default: cuda if available)."),
    arch: str = typer.Option(None, "--arch", help="A .pt checkpoint's model, e.g. wrn-70-16 (default: "
                             "read off the tensors' shapes)."),
    mean: str = typer.Option(None, "--mean", help="A .pt checkpoint's input mean per channel, e.g. "
                             "0.4914,0.4822,0.4465 (default: the file's or its FILE.json's, else "
                             "RobustBench's CIFAR-10)."),
    std: str = typer.Option(None, "--std",
                            help="A .pt checkpoint's input std per channel (default as --mean)."),
    json_output: JsonOption = False,
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars."),
) -> None:
    """Clean accuracy, PGD-40-CW and/or AutoAttack robust accuracy and the paper's loss (TRADES
    beta=5 on PGD-40-CW examples); writes eval.json, per_image.parquet, adversarial.npz, clean.npz
    and robustbench.json under --out."""
    from robustscale.evaluate import EvalConfig, evaluate_checkpoint, parse_eps

    sizes = {k: v for k, v in (("batch_size", batch_size), ("chunk_size", chunk_size)) if v is not None}
    config = EvalConfig(checkpoint=str(checkpoint), data=data,
                        data_dir=str(data_dir) if data_dir else None, attack=attack, n=n, norm=norm,
                        eps=parse_eps(eps, norm) if eps is not None else None, out=str(out), device=device,
                        arch=arch, mean=_floats(mean, "--mean"), std=_floats(std, "--std"), **sizes)
    result = evaluate_checkpoint(config, progress=not no_progress)
    if result["normalization"]["source"] == "robustbench_default":
        warn(f"{checkpoint} records no input normalisation; used RobustBench's CIFAR-10 mean/std (eval.json "
             f"normalization.source: robustbench_default); pass --mean/--std if it was trained otherwise")
    for message in result.get("warnings", []):
        warn(message)
    emit(result, json_output, lambda r: _render(r, out))


def _render(result: dict, folder: Path) -> None:
    out = console()
    out.print(f"[bold]{result['model']}[/] on {result['dataset']} ({result['n']} images, "
              f"{result['norm']} eps={result['eps']:.4g})")
    out.print(f"clean accuracy      {100 * result['clean_accuracy']:.2f}%")
    for name, acc in result["accuracy"].items():
        out.print(f"robust ({name:<10}) {100 * acc:.2f}%")
    if result.get("loss") is not None:
        out.print(f"TRADES loss (beta=5, PGD-40-CW) {result['loss']:.4f}")
    out.print(f"wrote {folder}/eval.json, per_image.parquet, adversarial.npz, clean.npz, "
              "robustbench.json")
