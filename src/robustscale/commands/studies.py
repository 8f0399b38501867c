"""Scaling studies end to end: `sweep`, `runs list|collect`, `report`, `demo`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

JSON = typer.Option(False, "--json", help="Print one JSON object on stdout.")


def _fmt_flops(x: float) -> str:
    return f"{x:.3g}"


def sweep(
    study: Path = typer.Argument(..., help="Study file (.yaml/.yml/.toml)."),
    executor: str = typer.Option("local", "--executor", help="local | slurm"),
    max_parallel: int = typer.Option(1, "--max-parallel", help="Runs at once (local processes / Slurm array slots)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the grid with FLOPs and exit."),
    json_output: bool = JSON,
) -> None:
    """Run a study's grid of training runs locally or on Slurm; finished runs are skipped."""
    from rich.console import Console
    from rich.table import Table

    from robustscale.commands import print_json
    from robustscale.sweep import load_study, plan, run_sweep

    err = Console(stderr=True)
    spec = load_study(study)
    grid = plan(spec)
    if dry_run:
        if json_output:
            print_json(grid)
            return
        table = Table(title=f"{study}: {len(grid['runs'])} runs -> {grid['out']}")
        for col in ("run", "model", "params", "source", "samples", "mode", "FLOPs", "finished"):
            table.add_column(col)
        for r in grid["runs"]:
            table.add_row(r["run"], r["model"], f"{r['params']:,}", r["source"], f"{r['samples']:,}", r["mode"],
                          _fmt_flops(r["flops"]), "yes" if r["finished"] else "")
        Console(width=max(140, Console().width)).print(table)
        print(f"total FLOPs {_fmt_flops(grid['total_flops'])} (to run: {_fmt_flops(grid['todo_flops'])})")
        return

    err.print(f"{len(grid['runs'])} runs, total {_fmt_flops(grid['total_flops'])} FLOPs, "
              f"to run {_fmt_flops(grid['todo_flops'])}")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[status]}"), console=err) as bar:
        task = bar.add_task("sweep", total=len(spec.runs), status="")

        def on_run(run, state: str) -> None:
            err.print(f"[{state}] {run.name}")
            bar.update(task, advance=state in ("finished", "failed", "skipped"), status=run.name)

        result = run_sweep(spec, executor=executor, max_parallel=max_parallel, on_run=on_run)
    if json_output:
        print_json({**result.asdict(), "total_flops": grid["total_flops"]})
    else:
        print(f"finished {len(result.finished)}, skipped {len(result.skipped)} (already done), "
              f"failed {len(result.failed)} in {result.wall_s:.1f} s")
        for name, reason in result.failed.items():
            print(f"FAILED {name}: {reason}")
    if result.failed:
        raise typer.Exit(1)


runs_app = typer.Typer(help="Inspect a run store and collect its observations.", no_args_is_help=True)


@runs_app.command("list")
def runs_list(runs_dir: Path = typer.Argument(..., help="Folder of run directories."), json_output: bool = JSON) -> None:
    """Table of runs: model, params, source, samples done/target, state, best PGD accuracy."""
    from rich.console import Console
    from rich.table import Table

    from robustscale.commands import print_json
    from robustscale.runs import list_runs

    runs = list_runs(runs_dir)
    if json_output:
        print_json({"runs_dir": str(runs_dir), "runs": [r.asdict() for r in runs]})
        return
    table = Table(title=f"{runs_dir}: {len(runs)} runs")
    for col in ("run", "model", "params", "source", "samples", "state", "best PGD acc"):
        table.add_column(col)
    for r in runs:
        acc = f"{100 * r.best_pgd_acc:.1f}%" if r.best_pgd_acc is not None else "-"
        table.add_row(r.run, r.model, f"{r.params:,}", r.source, f"{r.samples_done:,}/{r.samples_target:,}",
                      r.state, acc)
    Console(width=max(120, Console().width)).print(table)


@runs_app.command("collect")
def runs_collect(
    runs_dir: Path = typer.Argument(..., help="Folder of run directories."),
    out: Path = typer.Option(..., "--out", help="obs.csv or obs.parquet"),
    include_standard: bool = typer.Option(False, "--include-standard", help="Also rows of standard-training runs."),
    json_output: bool = JSON,
) -> None:
    """Write the observations table (one row per evaluation point) that `robustscale fit` reads."""
    from robustscale.commands import print_json
    from robustscale.runs import collect

    obs = collect(runs_dir, out, include_standard=include_standard)
    summary = {"out": str(out), "rows": len(obs), "runs": int(obs["run"].nunique()),
               "sources": sorted(obs["source"].unique().tolist())}
    if json_output:
        print_json(summary)
    else:
        print(f"wrote {out}: {summary['rows']} observations from {summary['runs']} runs")


def report(
    source: Path = typer.Argument(..., help="A runs directory or an observations table (.csv/.parquet)."),
    law: Path = typer.Option(None, "--law", help="law.json to plot (default: fit Approach 2 to the data)."),
    out: Path = typer.Option(..., "--out", help="Folder for the PNGs and index.html."),
    bootstrap: int = typer.Option(20, "--bootstrap", help="Resamples for the parameter intervals (0: none)."),
    json_output: bool = JSON,
) -> None:
    """Write the paper's figures for your runs as PNGs plus an index.html page."""
    from robustscale.commands import print_json
    from robustscale.report import write_report

    result = write_report(source, out, law=law, bootstrap_k=bootstrap, progress=True)
    if json_output:
        print_json(result)
    else:
        print(f"report: {result['index']} ({len(result['figures'])} figures)")


def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", help="Folder for runs, observations, laws and report."),
    preset: str = typer.Option("fashion-mnist", "--preset", help="fashion-mnist (CPU, minutes) | cifar10 (paper study, GPU)."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Real dataset folder (CIFAR-10 for --preset cifar10)."),
    quick: bool = typer.Option(False, "--quick", help="A smaller grid (tests, smoke checks)."),
    json_output: bool = JSON,
) -> None:
    """A real small scaling study: train a grid, collect, fit Approaches 1 and 2, write the report."""
    from robustscale.commands import print_json
    from robustscale.demo import format_summary, run_demo

    summary = run_demo(out=out, preset=preset, data_dir=data_dir, quick=quick,
                       log=lambda msg: print(msg, file=sys.stderr, flush=True))
    if json_output:
        print_json(summary)
    else:
        print(format_summary(summary))


def register(app: typer.Typer) -> None:
    app.command()(sweep)
    app.add_typer(runs_app, name="runs")
    app.command()(report)
    app.command()(demo)
