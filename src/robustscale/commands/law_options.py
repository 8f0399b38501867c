"""Options and output shared by the scaling-law commands (fit, plan, tradeoff, plot, simulate; report for
its flags and warnings)."""

from __future__ import annotations

from typing import Annotated, List, Optional

import typer

from robustscale.commands.output import warn
from robustscale.errors import RobustscaleError
from robustscale.formatting import sci, with_interval

LAW_HELP = "paper-approach1, paper-approach2, paper-approach3, or a law.json written by `robustscale fit`."
LawOption = Annotated[str, typer.Option("--law", help=LAW_HELP)]
FidOption = Annotated[float, typer.Option("--fid", help="FID of the training data (0 = ideal data).")]
LevelOption = Annotated[float, typer.Option("--level", min=0.01, max=0.99,
                                            help="Central interval level for laws fitted with --bootstrap.")]
FlopsListOption = Annotated[List[str], typer.Option(
    "--flops", help="Training FLOPs budget(s): 1e25, or 1e22,1e24, or repeated.")]
SourcesOption = Annotated[Optional[List[str]], typer.Option(
    "--quality-sources",
    help="Sources for ε, ζ (comma-separated or repeated; default: other sources with FID < 10).")]
AccuracyMapOption = Annotated[str, typer.Option(
    "--accuracy-map", help="Loss -> accuracy regression: runs (fitted to the observations' accuracy column; "
    "none without one) or paper-dg (the paper's CIFAR-10 DG regression, App. F.2.2).")]


def parse_floats(values: List[str], name: str) -> list[float]:
    """`--flops 1e22,1e24 --flops 1e25` -> [1e22, 1e24, 1e25]."""
    out = []
    for v in values:
        for part in str(v).split(","):
            try:
                out.append(float(part))
            except ValueError:
                raise RobustscaleError(f"{name}: expected a number or comma-separated numbers, "
                                       f"got '{part}'") from None
    if not out:
        raise RobustscaleError(f"{name}: expected at least one value")
    return out


def parse_names(values: Optional[List[str]]) -> list[str] | None:
    """`--quality-sources EDM-7,EDM-10 --quality-sources EDM-20` -> ['EDM-7', 'EDM-10', 'EDM-20']."""
    if values is None:
        return None
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def load(law: str):
    """The law named by --law, with each of its guard findings as a `warning:` line."""
    from robustscale.laws import load_law

    est = load_law(law)
    warn_findings(getattr(est, "diagnostics_", None), getattr(est, "anchored_", None))
    return est


def warn_findings(diagnostics: list[dict] | None, anchored: dict | None) -> None:
    """Each distinct finding of a law's guard (and an automatic anchoring) as one `warning:` line."""
    for message in dict.fromkeys(f["message"] for f in diagnostics or []):
        warn(message)
    if anchored and anchored.get("reason") != "requested":
        warn(f"anchored to {anchored['prior']}: {anchored['reason']}")


def warn_nulls(rows: list[dict], what: str) -> None:
    """JSON prints non-finite numbers as null: say so (accuracy that no regression predicts is
    `accuracy_unavailable`'s to explain)."""
    skip = ("irreducible_loss", "accuracy_limit", "accuracy")
    for row in rows:
        for k, v in row.items():
            if v is None and not k.endswith(("_lo", "_hi", "_not_determined_below")) and k not in skip:
                below = row.get(f"{k}_not_determined_below")
                if f"{k}_not_determined_below" in row:
                    why = (f"is below one and not an answer: not determined below {sci(below)}" if below
                           else "is not determined")
                else:
                    why = "is not a finite number"
                warn(f"{what} at {sci(row.get('flops'))} FLOPs: {k} {why} (printed as null)")


def count_cell(row: dict, key: str) -> str:
    """A `bounded_plan` row's n_star or d_star for a table: '7.32e10 [5.1e10, 9.9e10]', or, where the runs
    leave the lower side open, `describe_bounded`'s 'not determined below X' (never a count below one)."""
    from robustscale.laws.planning import describe_bounded, plan_bounds

    if row.get(f"{key}_not_determined_below") is None and row.get(key) is not None:
        return with_interval(row, key, sci)
    return describe_bounded(plan_bounds(row, key), sci, "")


ACCURACY_UNAVAILABLE = ("accuracy: unavailable (null): the law has no loss -> accuracy regression, as its "
                        "runs measured no accuracy (no accuracy column, or fewer than 2 runs with one); "
                        "`robustscale fit --accuracy-map paper-dg` borrows the paper's CIFAR-10 one "
                        "(App. F.2.2)")


def warn_accuracy(est) -> None:
    """Say once why a law's plans carry no accuracy."""
    if getattr(est, "accuracy_", None) is None:
        warn(ACCURACY_UNAVAILABLE)


def warn_exclusions(excluded: list[dict] | None) -> None:
    """One `warning:` line for the runs App. F.2.1's rule left out of a fit (law.json lists them)."""
    if not excluded:
        return
    names = ", ".join(r["run"] for r in excluded[:3])
    if len(excluded) > 3:
        names += f" and {len(excluded) - 3} more"
    warn(f"{len(excluded)} run(s) left out of the fit by {excluded[0]['reason']}: {names} (law.json: "
         f"excluded_runs); --keep-small-runs keeps them")


def warn_report(law_summary: dict) -> None:
    """The warnings of a report's law (its `approach2` summary): the guard's findings, the runs left
    out, and accuracy that no regression predicts. `report` and the demo print these."""
    warn_findings(law_summary["diagnostics"], law_summary["anchored"])
    warn_exclusions(law_summary["excluded_runs"])
    if law_summary["accuracy_map"] is None:
        warn(ACCURACY_UNAVAILABLE)
