"""`robustscale tradeoff`: a smaller model on more data at equal loss (Eq 6; torch-free)."""

from __future__ import annotations

import typer

from robustscale.commands.law_options import FidOption, LawOption, LevelOption, load, warn_nulls, with_interval
from robustscale.commands.output import JsonOption, emit, sci, table


def tradeoff(
    law: LawOption,
    flops: float = typer.Option(..., "--flops", help="Training FLOPs budget defining N*, D*."),
    fid: FidOption = 0.0,
    omega_n: float = typer.Option(..., "--omega-n", help="Model size as a multiple of N* (0.5 = half)."),
    level: LevelOption = 0.9,
    json_output: JsonOption = False,
) -> None:
    """Smaller model, more data (Eq 6): the data multiple and compute overhead at equal loss, with
    the budget's plan (and intervals when the law was fitted with --bootstrap)."""
    from robustscale.laws import tradeoff_table

    result = tradeoff_table(load(law), flops, fid, omega_n, level)
    warn_nulls([result, result["plan"]], "trade-off")
    emit(result, json_output, _render)


def _render(r: dict) -> None:
    p = r["plan"]
    table("trade-off (Eq 6)", [
        ("omega_n", f"{r['omega_n']:g}"),
        ("omega_d", with_interval(r, "omega_d", lambda x: f"{x:.4g}")),
        ("overhead", with_interval(r, "overhead", lambda x: f"{100 * x:.2f}%")),
        ("n", sci(r["n"])), ("d", sci(r["d"])),
        ("N* at this budget", with_interval(p, "n_star", sci)), ("D* at this budget", with_interval(p, "d_star", sci)),
        ("loss", with_interval(p, "loss", lambda x: f"{x:.4f}")),
    ])


def register(app: typer.Typer) -> None:
    app.command()(tradeoff)
