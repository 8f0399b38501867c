"""`robustscale sweep`: run a sweep's grid of training runs locally or on Slurm."""

from __future__ import annotations

from pathlib import Path

import typer

from robustscale.commands.output import JsonOption, emit, sci


def sweep(
    sweep_file: Path = typer.Argument(..., metavar="SWEEP", help="Sweep file (.yaml/.yml/.toml)."),
    executor: str = typer.Option("local", "--executor", help="local | slurm"),
    max_parallel: int = typer.Option(1, "--max-parallel",
                                     help="Runs at once: local processes, or the sweep's Slurm jobs queued "
                                          "or running, over all its arrays and resource groups."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the grid with FLOPs and exit."),
    verify: bool = typer.Option(False, "--verify",
                                help="Re-hash every synthetic store first (reads all its data)."),
    json_output: JsonOption = False,
) -> None:
    """Run a sweep's grid of training runs locally or on Slurm; finished runs are skipped.

    Each state change is one line on stderr: `RUN: submitted JOBID`, `RUN: pending: REASON` (every
    minute), `RUN: finished`, `RUN: failed: REASON`, `RUN: cancelled: ...`. On Slurm the sweep may be
    killed and rerun at any time: it reattaches to its runs' jobs still queued or running.
    """
    from rich.console import Console

    from robustscale.errors import RobustscaleError
    from robustscale.sweep import load_sweep, plan, run_sweep
    from robustscale.sweep.executors import ENDED, check_arguments, state_kind

    err = Console(stderr=True)
    try:
        check_arguments(executor, max_parallel)
    except RobustscaleError as e:  # the library names its parameters; say which flag set them
        message = str(e)
        for param, flag in (("executor:", "--executor:"), ("max_parallel:", "--max-parallel:")):
            if message.startswith(param):
                message = flag + message[len(param):]
        raise RobustscaleError(message) from None
    spec = load_sweep(sweep_file, verify=verify)
    grid = plan(spec)
    if dry_run:
        emit(grid, json_output, lambda g: _render_grid(sweep_file, g))
        return

    err.print(f"{len(grid['runs'])} runs, total {sci(grid['total_flops'])} FLOPs, "
              f"to run {sci(grid['todo_flops'])}")
    from robustscale.progress import progress_bar

    if spec.design is not None:  # an adaptive sweep: rounds of runs, fit and suggestion (sweep.design)
        from robustscale.sweep.design import current_round, render_design, run_design

        k = current_round(spec)
        if k > 1:
            err.print(f"design: going on in round {min(k, spec.design.rounds)} of {spec.design.rounds} (the "
                      f"laws and suggestions of the rounds before are kept)")
        with progress_bar(spec.design.rounds, "design") as advance:  # rounds done before pass quickly
            def on_round(summary: dict) -> None:
                err.print(render_design(summary))
                advance()

            result = run_design(spec, executor=executor, max_parallel=max_parallel, on_round=on_round,
                                on_run=lambda run, state: err.print(f"[{state}] {run.name}"))
        emit(result.asdict(), json_output, lambda _: _render_result(result))
        if result.failed:
            raise typer.Exit(1)
        return

    with progress_bar(len(spec.runs), "sweep") as advance:
        def on_run(run, state: str) -> None:
            # plain text: rich would read "[finished]" as markup and drop it, and wrap long reasons
            err.print(f"{run.name}: {state}", markup=False, highlight=False, soft_wrap=True)
            if state_kind(state) in ENDED:
                advance()

        result = run_sweep(spec, executor=executor, max_parallel=max_parallel, on_run=on_run)
    outcome = {**result.asdict(), "total_flops": grid["total_flops"]}
    emit(outcome, json_output, lambda _: _render_result(result))
    if result.failed or result.cancelled:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(sweep)


def _render_grid(sweep_file: Path, grid: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{sweep_file}: {len(grid['runs'])} runs -> {grid['out']}")
    for col in ("run", "model", "params", "source", "samples", "mode", "tasks", "FLOPs", "finished"):
        table.add_column(col)
    for r in grid["runs"]:
        table.add_row(r["run"], r["model"], f"{r['params']:,}", r["source"], f"{r['samples']:,}", r["mode"],
                      str(r["world_size"]), sci(r["flops"]), "yes" if r["finished"] else "")
    Console(width=max(140, Console().width)).print(table)
    print(f"total FLOPs {sci(grid['total_flops'])} (to run: {sci(grid['todo_flops'])})")


def _render_result(result) -> None:
    print(f"finished {len(result.finished)}, skipped {len(result.skipped)} (already done), "
          f"failed {len(result.failed)}, cancelled {len(result.cancelled)} in {result.wall_s:.1f} s")
    for name, reason in result.failed.items():
        print(f"FAILED {name}: {reason}")
    for name, reason in result.cancelled.items():
        print(f"CANCELLED {name}: {reason}")
