"""`robustscale plan`: compute-optimal N*, D*, loss and accuracy at FLOPs budgets (torch-free)."""

from __future__ import annotations

import typer

from robustscale.commands.law_options import (FidOption, FlopsListOption, LawOption, LevelOption, load, parse_floats,
                                              warn_nulls, with_interval)
from robustscale.commands.output import JsonOption, console, emit, sci


def plan(
    law: LawOption,
    flops: FlopsListOption,
    fid: FidOption = 0.0,
    level: LevelOption = 0.9,
    json_output: JsonOption = False,
) -> None:
    """Compute-optimal model size N*, data size D*, loss and robust accuracy at FLOPs budgets,
    with intervals (n_star_lo, n_star_hi, ...) when the law was fitted with --bootstrap."""
    from robustscale.laws import plan_table

    rows = plan_table(load(law), parse_floats(flops, "flops"), fid, level)
    warn_nulls(rows, "plan")
    emit(rows[0] if len(rows) == 1 else {"plans": rows}, json_output, lambda _: _render(rows, law, fid))


def _render(rows: list[dict], law: str, fid: float) -> None:
    from rich.table import Table

    title = f"compute-optimal plan ({law}, FID={fid:g})"
    if "level" in rows[0]:
        title += f", [{100 * rows[0]['level']:.0f}% bootstrap interval]"
    t = Table(title=title)
    for col in ("FLOPs", "N*", "D*", "loss", "acc.", "E'", "acc. limit", "a", "b"):
        t.add_column(col, justify="right")

    def pct(x):
        return f"{100 * x:.1f}%"

    for p in rows:
        t.add_row(sci(p["flops"]), with_interval(p, "n_star", sci), with_interval(p, "d_star", sci),
                  with_interval(p, "loss", lambda x: f"{x:.4f}"), with_interval(p, "accuracy", pct),
                  "–" if p["irreducible_loss"] is None else f"{p['irreducible_loss']:.4f}",
                  "–" if p["accuracy_limit"] is None else pct(p["accuracy_limit"]), f"{p['a']:.3f}", f"{p['b']:.3f}")
    from rich.console import Console

    wide = "level" in rows[0]  # intervals need the room: a terminal rewraps, a file keeps the lines
    (Console(width=max(150, console().width)) if wide else console()).print(t)


def register(app: typer.Typer) -> None:
    app.command()(plan)
