"""`robustscale flops` and `robustscale evaluate`: model cost and robust evaluation."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command()(flops)
    app.command()(evaluate)


def flops(
    model: str = typer.Argument(..., help="Model name, e.g. wrn-70-16 (any wrn-DEPTH-WIDTH)."),
    data: str = typer.Option("cifar10", "--data", help="Dataset fixing the input shape: cifar10 or "
                             "fashion-mnist."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Parameters, forward FLOPs per image, training FLOPs per sample (27 forwards, App. B) and c
    in FLOPs = c N D (paper: 7822). Counted on the meta device: any size costs no memory."""
    import torch

    from robustscale.commands import print_json
    from robustscale.flops import flops_summary
    from robustscale.models import create_model

    with torch.device("meta"):
        summary = flops_summary(create_model(model, dataset=data))
    summary["dataset"] = data
    if json_output:
        print_json(summary)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{summary['model']} on {data}", show_header=False)
    table.add_row("params (N)", f"{summary['params']:,} ({summary['params'] / 1e6:.2f}M)")
    table.add_row("forward FLOPs / image", f"{summary['forward_flops']:.4g}")
    table.add_row("train FLOPs / sample", f"{summary['train_flops_per_sample']:.4g}")
    table.add_row("c (FLOPs = c N D)", f"{summary['c']:.0f}")
    Console().print(table)


def evaluate(
    checkpoint: Path = typer.Argument(..., help="Weights: a run dir, <stem>.safetensors/.json or the stem."),
    data: str = typer.Option(..., "--data", help="cifar10 or fashion-mnist (its test split)."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Folder of the dataset files."),
    attack: str = typer.Option("both", "--attack", help="pgd40-cw, autoattack or both."),
    n: int = typer.Option(10000, "--n", help="Number of test images (the first n)."),
    eps: str = typer.Option(None, "--eps", help="L-inf radius, e.g. 8/255 (default: the dataset's)."),
    out: Path = typer.Option(..., "--out", help="Output folder (a half-finished one is resumed)."),
    batch_size: int = typer.Option(256, "--batch-size", help="Images per attack batch."),
    chunk_size: int = typer.Option(500, "--chunk-size", help="Images per saved (resumable) chunk."),
    device: str = typer.Option(None, "--device", help="cpu, cuda, ... (default: cuda if available)."),
    json_output: bool = typer.Option(False, "--json", help="Print eval.json as one JSON object."),
) -> None:
    """Clean accuracy, PGD-40-CW and/or AutoAttack robust accuracy and the paper's loss (TRADES
    beta=5 on PGD-40-CW examples); writes eval.json, per_image.parquet, adversarial.npz, clean.npz
    and robustbench.json under --out."""
    from robustscale.commands import print_json
    from robustscale.evaluate import EvalConfig, evaluate_checkpoint, parse_eps

    config = EvalConfig(checkpoint=str(checkpoint), data=data,
                        data_dir=str(data_dir) if data_dir else None, attack=attack, n=n,
                        eps=parse_eps(eps) if eps is not None else None, out=str(out),
                        batch_size=batch_size, chunk_size=chunk_size, device=device)
    result = evaluate_checkpoint(config, progress=True)
    if json_output:
        print_json(result)
        return
    from rich.console import Console

    console = Console()
    console.print(f"[bold]{result['model']}[/] on {result['dataset']} ({result['n']} images, "
                  f"eps={result['eps']:.4g})")
    console.print(f"clean accuracy      {100 * result['clean_acc']:.2f}%")
    for name, acc in result["robust_acc"].items():
        console.print(f"robust ({name:<10}) {100 * acc:.2f}%")
    if result.get("loss") is not None:
        console.print(f"TRADES loss (beta=5, PGD-40-CW) {result['loss']:.4f}")
    console.print(f"wrote {out}/eval.json, per_image.parquet, adversarial.npz, clean.npz, robustbench.json")
