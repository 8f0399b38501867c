"""How numbers read: the one set of formats for tables, summaries and the report (torch-free).

Every format turns None and non-finite numbers into "–" (never "nan" or "inf"), and every one is
short enough for an 80-column table: no format is ever cut with an ellipsis.
"""

from __future__ import annotations

import math
from typing import Callable

MISSING = "–"


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def sci(x) -> str:
    """Three significant digits, compact exponent: 7.3241e10 -> '7.32e10', 0.012 -> '0.012'."""
    if not _finite(x):
        return MISSING
    return f"{x:.3g}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


def num(x, digits: int = 4) -> str:
    """`digits` significant digits: 0.48123 -> '0.4812'."""
    return f"{x:.{digits}g}" if _finite(x) else MISSING


def fixed(x, decimals: int = 4) -> str:
    """A fixed number of decimals (losses, exponents): 0.6 -> '0.6000'."""
    return f"{x:.{decimals}f}" if _finite(x) else MISSING


def pct(x, decimals: int = 1) -> str:
    """A fraction as a percentage: 0.6421 -> '64.2%'."""
    return f"{100 * x:.{decimals}f}%" if _finite(x) else MISSING


def count(x) -> str:
    """A count of parameters or samples in words' units: 78_000 -> '78k', 1.2e9 -> '1.2B';
    from 1e12 on, powers of ten ('3.4e13')."""
    if not _finite(x):
        return MISSING
    if abs(x) >= 1e12:
        return sci(x)
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


def interval(lo, hi, fmt: Callable[[float], str] = num) -> str:
    """'[lo, hi]', or '' when either end is unknown."""
    return "" if lo is None or hi is None else f"[{fmt(lo)}, {fmt(hi)}]"


def with_interval(row: dict, key: str, fmt: Callable[[float], str] = num) -> str:
    """row[key] followed by its bootstrap interval when the row has one: '7.32e10 [5.1e10, 9.9e10]'.
    A row with the interval's keys but no values says so ('[–, –]')."""
    text = fmt(row.get(key))
    if f"{key}_lo" in row:
        lo, hi = row.get(f"{key}_lo"), row.get(f"{key}_hi")
        text += f" [{fmt(lo) if lo is not None else MISSING}, {fmt(hi) if hi is not None else MISSING}]"
    return text


def anchored_sentence(anchored: dict | None) -> str:
    """What an anchored fit did, in one clause ('' for a fit that is not anchored): the exponents
    taken from the prior law, or pulled towards it with a strength, and why."""
    if not anchored:
        return ""
    prior = anchored.get("prior")
    why = "as asked" if anchored.get("reason") == "requested" else "these runs alone do not pin them down"
    if anchored.get("strength") is None:
        return (f"an anchored fit: alpha and beta are taken from the prior law {prior} ({why}), "
                "not fitted to these runs")
    return (f"an anchored fit: alpha and beta are pulled towards the prior law {prior} with strength "
            f"{anchored['strength']:g} ({why}), so they rest on both the prior and these runs")
