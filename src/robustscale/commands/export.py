"""`robustscale export`: a trained model in another checkpoint format (RobustBench's)."""

from __future__ import annotations

from pathlib import Path

import typer

from robustscale.commands.output import JsonOption, emit

FORMATS = ("robustbench",)


def register(app: typer.Typer) -> None:
    app.command()(export)


def export(
    source: Path = typer.Argument(..., metavar="RUN_OR_MODEL",
                                  help="A run dir (its model.*), or <stem>.safetensors/.json or the stem."),
    format: str = typer.Option("robustbench", "--format", help="robustbench: a PyTorch state dict of a "
                               "DeepMind-style WRN, exactly the tensors RobustBench's DMWideResNet loads "
                               "strictly; mean/std go into OUT.json beside it."),
    out: Path = typer.Option(..., "--out", help="File to write, e.g. model.pt."),
    json_output: JsonOption = False,
) -> None:
    """Write a trained model in RobustBench's checkpoint format (normalisation in OUT.json beside it);
    `robustscale evaluate model.pt` reads both back."""
    from robustscale.errors import RobustscaleError
    from robustscale.models.robustbench import export_robustbench

    if format not in FORMATS:
        raise RobustscaleError(f"--format: expected one of {', '.join(FORMATS)}, got {format!r}")
    result = export_robustbench(source, out)
    emit(result, json_output, lambda r: print(f"{r['source']} ({r['model']}, {r['params']:,} params) -> "
                                              f"{r['out']} ({r['format']}; normalisation in "
                                              f"{r['normalization_file']})"))
