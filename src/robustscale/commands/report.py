"""`robustscale report`: the paper's figures and a page for a folder of runs or a table."""

from __future__ import annotations

from pathlib import Path

import typer

from robustscale.commands.law_options import LevelOption, warn_findings
from robustscale.commands.output import JsonOption, emit


def report(
    source: Path = typer.Argument(..., help="A runs directory or an observations table (.csv/.parquet)."),
    law: Path = typer.Option(None, "--law", help="law.json to plot (default: fit Approach 2 to the data)."),
    out: Path = typer.Option(..., "--out", help="Folder for the PNGs and index.html."),
    bootstrap: int = typer.Option(20, "--bootstrap", min=0, help="Resamples for the intervals (0: none; at least 2)."),
    level: LevelOption = 0.9,
    json_output: JsonOption = False,
) -> None:
    """Write the paper's figures for your runs as PNGs plus an index.html page."""
    from robustscale.report import write_report

    result = write_report(source, out, law=law, bootstrap=bootstrap, level=level, progress=True)
    law_summary = result["approach2"]
    warn_findings(law_summary["diagnostics"], law_summary["anchored"])
    emit(result, json_output, lambda r: print(f"report: {r['index']} ({len(r['figures'])} figures)"))


def register(app: typer.Typer) -> None:
    app.command()(report)
