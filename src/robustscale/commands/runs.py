"""`robustscale runs list|collect`: inspect a folder of runs and collect its observations."""

from __future__ import annotations

from pathlib import Path

import typer

from robustscale.commands.output import JsonOption, emit

runs_app = typer.Typer(help="Inspect a run store and collect its observations.", no_args_is_help=True)


@runs_app.command("list")
def runs_list(runs_dir: Path = typer.Argument(..., help="Folder of run directories."),
              json_output: JsonOption = False) -> None:
    """Table of runs: model, params, source, samples done/target, state, best PGD accuracy."""
    from robustscale.runs import list_runs

    runs = list_runs(runs_dir)
    emit({"runs_dir": str(runs_dir), "runs": [r.asdict() for r in runs]}, json_output,
         lambda _: _render_runs(runs_dir, runs))


def _render_runs(runs_dir: Path, runs: list) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{runs_dir}: {len(runs)} runs")
    for col in ("run", "model", "params", "source", "samples", "state", "best PGD acc"):
        table.add_column(col)
    for r in runs:
        acc = f"{100 * r.best_accuracy:.1f}%" if r.best_accuracy is not None else "-"
        table.add_row(r.run, r.model, f"{r.params:,}", r.source, f"{r.samples_done:,}/{r.samples_target:,}",
                      r.state, acc)
    Console(width=max(120, Console().width)).print(table)


@runs_app.command("collect")
def runs_collect(
    runs_dir: Path = typer.Argument(..., help="Folder of run directories."),
    out: Path = typer.Option(..., "--out", help="obs.csv or obs.parquet"),
    include_standard: bool = typer.Option(False, "--include-standard",
                                          help="Also rows of standard-training runs."),
    json_output: JsonOption = False,
) -> None:
    """Write the observations table (one row per evaluation point) that `robustscale fit` reads."""
    from robustscale.errors import RobustscaleError
    from robustscale.runs import collect

    if out.suffix not in (".csv", ".parquet"):
        raise RobustscaleError(f"--out: expected a .csv or .parquet path, got {out}")
    obs = collect(runs_dir, out, include_standard=include_standard)
    summary = {"out": str(out), "rows": len(obs), "runs": int(obs["run"].nunique()),
               "sources": sorted(obs["source"].unique().tolist())}
    emit(summary, json_output,
         lambda s: print(f"wrote {out}: {s['rows']} observations from {s['runs']} runs"))


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
