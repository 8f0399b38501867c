"""`robustscale report`: the paper's figures and a page for a folder of runs or a table."""

from __future__ import annotations

from pathlib import Path

import typer

from robustscale.commands.law_options import AccuracyMapOption, LevelOption, warn_report
from robustscale.commands.output import JsonOption, emit


def report(
    source: Path = typer.Argument(..., help="A runs directory or an observations table (.csv/.parquet)."),
    law: Path = typer.Option(None, "--law", help="law.json to plot (default: fit Approach 2 to the data)."),
    out: Path = typer.Option(..., "--out", help="Folder for the PNGs and index.html."),
    bootstrap: int = typer.Option(20, "--bootstrap", min=0,
                                  help="Resamples for the intervals (0: none; at least 2)."),
    level: LevelOption = 0.9,
    exclude_small_runs: bool = typer.Option(True, "--exclude-small-runs/--keep-small-runs",
                                            help="App. F.2.1 rule for the fit: drop N<100M, D>10M, FID<10."),
    accuracy_map: AccuracyMapOption = "runs",
    json_output: JsonOption = False,
) -> None:
    """Write the paper's figures for your runs as PNGs plus an index.html page."""
    from robustscale.report import write_report

    result = write_report(source, out, law=law, bootstrap=bootstrap, level=level, progress=True,
                          exclude_small_runs=exclude_small_runs, accuracy_map=accuracy_map)
    warn_report(result["approach2"])
    emit(result, json_output, lambda r: print(f"report: {r['index']} ({len(r['figures'])} figures)"))


def register(app: typer.Typer) -> None:
    app.command()(report)
