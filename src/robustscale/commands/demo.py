"""`robustscale demo`: a real small scaling study, end to end."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from robustscale.commands.law_options import warn_report
from robustscale.commands.output import JsonOption, emit


def demo(
    out: Path = typer.Option(Path("demo-out"), "--out",
                             help="Folder for runs, observations, laws and report."),
    preset: str = typer.Option("fashion-mnist", "--preset",
                               help="fashion-mnist (CPU, minutes) | cifar10 (paper study, GPU)."),
    data_dir: Path = typer.Option(None, "--data-dir",
                                  help="Real dataset folder (CIFAR-10 for --preset cifar10)."),
    quick: bool = typer.Option(False, "--quick",
                               help="A smaller grid and second round (tests, smoke checks)."),
    norm: str = typer.Option("linf", "--norm", help="Threat model of training and evaluation: linf or l2."),
    json_output: JsonOption = False,
) -> None:
    """A real small scaling study in two rounds: a grid, then the runs suggest chooses; report, summary."""
    from robustscale.demo import format_summary, run_demo

    summary = run_demo(out=out, preset=preset, data_dir=data_dir, quick=quick, norm=norm,
                       data_option="--data-dir",
                       log=lambda msg: print(msg, file=sys.stderr, flush=True))
    warn_report(summary["approach2"])  # as `report` warns: the guard's findings, runs left out
    emit(summary, json_output, lambda s: print(format_summary(s)))


def register(app: typer.Typer) -> None:
    app.command()(demo)
