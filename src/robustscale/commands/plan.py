"""`robustscale plan`: compute-optimal N*, D*, loss and accuracy at FLOPs budgets (torch-free)."""

from __future__ import annotations

import typer

from robustscale.commands.law_options import (
    FidOption,
    FlopsListOption,
    LawOption,
    LevelOption,
    count_cell,
    load,
    parse_floats,
    warn_accuracy,
    warn_nulls,
)
from robustscale.commands.output import JsonOption, add_columns, console, emit, new_table
from robustscale.formatting import fixed, pct, sci, with_interval


def plan(
    law: LawOption,
    flops: FlopsListOption,
    fid: FidOption = 0.0,
    level: LevelOption = 0.9,
    json_output: JsonOption = False,
) -> None:
    """Compute-optimal model size N*, data size D*, loss and robust accuracy at FLOPs budgets.

    A law fitted with --bootstrap adds intervals (n_star_lo, n_star_hi, ...). Accuracy is null
    for a law without a loss -> accuracy regression. An N*, D* or bound below one parameter or sample
    is null, with n_star_not_determined_below / d_star_not_determined_below saying up to where the runs
    speak (null where determined).
    """
    from robustscale.laws import plan_table
    from robustscale.laws.planning import bounded_plan, law_seen

    est = load(law)
    rows = plan_table(est, parse_floats(flops, "flops"), fid, level)
    rows = [bounded_plan(row, law_seen(est)) for row in rows]
    warn_nulls(rows, "plan")
    warn_accuracy(est)
    emit(rows[0] if len(rows) == 1 else {"plans": rows}, json_output, lambda _: _render(rows, law, fid))


def _render(rows: list[dict], law: str, fid: float) -> None:
    """One row per budget; what does not change with the budget (E', the accuracy limit) goes in
    the caption, so the table fits 80 columns and intervals wrap inside their cells."""
    first = rows[0]
    title = f"compute-optimal plan ({law}, FID={fid:g})"
    if "level" in first:
        title += f", [{100 * first['level']:.0f}% bootstrap interval]"
    has_accuracy = first["accuracy"] is not None
    caption = []
    if first["irreducible_loss"] is not None:
        caption.append(f"E' (loss at infinite compute) {fixed(first['irreducible_loss'])}"
                       + (f", accuracy limit {pct(first['accuracy_limit'])}" if has_accuracy else ""))
    if not has_accuracy:
        caption.append("robust accuracy: unavailable (the law has no loss -> accuracy regression)")
    t = new_table(title, "\n".join(caption) or None)
    columns = ["FLOPs", "N*", "D*", "loss"] + (["acc."] if has_accuracy else []) + ["a", "b"]
    add_columns(t, *columns)
    for p in rows:
        cells = [sci(p["flops"]), count_cell(p, "n_star"), count_cell(p, "d_star"),
                 with_interval(p, "loss", fixed)]
        if has_accuracy:
            cells.append(with_interval(p, "accuracy", pct))
        t.add_row(*cells, fixed(p["a"], 3), fixed(p["b"], 3))
    console().print(t)


def register(app: typer.Typer) -> None:
    app.command()(plan)
