"""`robustscale tradeoff`: a smaller model on more data at equal loss (Eq 6; torch-free)."""

from __future__ import annotations

import typer

from robustscale.commands.law_options import (
    FidOption,
    LawOption,
    LevelOption,
    count_cell,
    load,
    warn_accuracy,
    warn_nulls,
)
from robustscale.commands.output import JsonOption, emit, table
from robustscale.formatting import fixed, num, pct, with_interval


def tradeoff(
    law: LawOption,
    flops: float = typer.Option(..., "--flops", help="Training FLOPs budget defining N*, D*."),
    fid: FidOption = 0.0,
    omega_n: float = typer.Option(..., "--omega-n", help="Model size as a multiple of N* (0.5 = half)."),
    level: LevelOption = 0.9,
    json_output: JsonOption = False,
) -> None:
    """Smaller model, more data (Eq 6): the data multiple and compute overhead at equal loss.

    Shows the budget's plan too, with intervals when the law was fitted with --bootstrap (N*, D* below
    one parameter or sample: null and "not determined below X", as `plan` says it).
    """
    from robustscale.laws import tradeoff_table
    from robustscale.laws.planning import bounded_fields, bounded_plan, law_seen

    est = load(law)
    result = tradeoff_table(est, flops, fid, omega_n, level)
    seen = law_seen(est)
    for key, count in (("n", "n_star"), ("d", "d_star")):  # the smaller model and its data: counts too
        result.update(bounded_fields(key, result[key], seen=seen[count]))
    result["plan"] = bounded_plan(result["plan"], seen)
    warn_nulls([result, result["plan"]], "trade-off")
    warn_accuracy(est)
    emit(result, json_output, _render)


def _render(r: dict) -> None:
    p = r["plan"]
    table("trade-off (Eq 6)", [
        ("omega_n", f"{r['omega_n']:g}"),
        ("omega_d", with_interval(r, "omega_d", num)),
        ("overhead", with_interval(r, "overhead", lambda x: pct(x, 2))),
        ("n", count_cell(r, "n")), ("d", count_cell(r, "d")),
        ("N* at this budget", count_cell(p, "n_star")),
        ("D* at this budget", count_cell(p, "d_star")),
        ("loss", with_interval(p, "loss", fixed)),
        ("robust accuracy", "unavailable" if p["accuracy"] is None else with_interval(p, "accuracy", pct)),
    ])


def register(app: typer.Typer) -> None:
    app.command()(tradeoff)
