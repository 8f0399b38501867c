"""`robustscale flops`: a model's parameters and training cost."""

from __future__ import annotations

import typer

from robustscale.commands.output import JsonOption, emit, table


def register(app: typer.Typer) -> None:
    app.command()(flops)


def flops(
    model: str = typer.Argument(..., help="Model name, e.g. wrn-70-16 (any wrn-DEPTH-WIDTH)."),
    data: str = typer.Option("cifar10", "--data", help="Dataset fixing the input shape: cifar10, "
                             "cifar100, svhn (3x32x32), tiny-imagenet (3x64x64) or fashion-mnist (1x28x28)."),
    mode: str = typer.Option("trades", "--mode", help="trades (27 forwards per sample) or standard (3)."),
    json_output: JsonOption = False,
) -> None:
    """Parameters, forward FLOPs per image, training FLOPs per sample (App. B: 27 forwards for TRADES,
    3 for standard training) and c in FLOPs = c N D (paper: 7822). Counted on the meta device: any
    size costs no memory."""
    from robustscale.data.datasets import dataset_info
    from robustscale.flops import flops_summary

    info = dataset_info(data)
    summary = flops_summary(model, info.shape, mode, num_classes=info.num_classes)
    summary["dataset"] = data
    emit(summary, json_output, _render)


def _render(summary: dict) -> None:
    table(f"{summary['model']} on {summary['dataset']} ({summary['mode']})", [
        ("input", f"{'x'.join(map(str, summary['input_shape']))}, {summary['num_classes']} classes"),
        ("params (N)", f"{summary['params']:,} ({summary['params'] / 1e6:.2f}M)"),
        ("forward FLOPs / image", f"{summary['forward_flops']:.4g}"),
        ("train FLOPs / sample", f"{summary['train_flops_per_sample']:.4g}"),
        ("c (FLOPs = c N D)", f"{summary['c']:.0f}"),
    ])
