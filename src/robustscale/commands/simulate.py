"""`robustscale simulate`: a paper-shaped observations table drawn from a law (torch-free)."""

from __future__ import annotations

from pathlib import Path

import typer

from robustscale.commands.law_options import LAW_HELP, load
from robustscale.commands.output import JsonOption, emit
from robustscale.errors import RobustscaleError


def simulate(
    law: str = typer.Option(..., "--law", help=LAW_HELP + " Approach 2 or 3."),
    out: Path = typer.Option(
        ..., "--out", help="Observations file to write (.csv or .parquet; its folder must exist)."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the noise."),
    noise: float = typer.Option(0.01, "--noise", min=0.0,
                                help="Multiplicative log-normal noise (sd) on loss."),
    points_per_run: int = typer.Option(5, "--points-per-run", min=1, help="Evaluations per run."),
    json_output: JsonOption = False,
) -> None:
    """Draw a paper-shaped grid of observations (Table 1 sources x Table 2 models x sizes) from a law."""
    from robustscale.fileio import write_table
    from robustscale.laws import simulate as draw

    est = load(law)
    if not hasattr(est, "predict_loss"):
        raise RobustscaleError(f"law: {law} is approach {est.approach}; simulate needs a loss formula "
                               "(approach 2 or 3)")
    df = draw(est, seed=seed, noise=noise, points_per_run=points_per_run)
    write_table(out, df, make_parents=False)
    summary = {"out": str(out), "rows": int(len(df)), "runs": int(df["run"].nunique())}
    emit(summary, json_output,
         lambda s: print(f"wrote {s['out']}: {s['rows']} observations of {s['runs']} runs"))


def register(app: typer.Typer) -> None:
    app.command()(simulate)
