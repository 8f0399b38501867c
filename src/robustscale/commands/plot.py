"""`robustscale plot`: the paper's scaling-law figures from a law and/or observations (torch-free)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from robustscale.commands.law_options import LAW_HELP, load, parse_floats
from robustscale.commands.output import JsonOption, emit
from robustscale.errors import RobustscaleError

TABLE3_FLOPS = 1e25  # Table 3 compares approaches at 1e25 training FLOPs


class PlotKind(str, Enum):
    isoflop = "isoflop"
    envelope = "envelope"
    forecast = "forecast"
    tradeoff = "tradeoff"


def plot(
    kind: PlotKind = typer.Argument(..., help="isoflop (Fig. 4/5), envelope (Fig. 3), forecast (Fig. 1), "
                                    "tradeoff (Fig. 7)."),
    out: Path = typer.Option(..., "--out", help="Figure file, .png or .svg (its folder must exist)."),
    law: Optional[str] = typer.Option(None, "--law", help=LAW_HELP + " (isoflop, forecast, tradeoff)."),
    obs: Optional[Path] = typer.Option(None, "--obs", help="Observations (isoflop, envelope)."),
    fid: List[str] = typer.Option([], "--fid", help="FID(s); forecast accepts several (0,1.76)."),
    flops: float = typer.Option(TABLE3_FLOPS, "--flops", help="Budget for tradeoff (default 1e25, Table 3)."),
    source: Optional[str] = typer.Option(None, "--source", help="Source for envelope (default: most runs)."),
    metric: str = typer.Option("accuracy", "--metric", help="forecast: accuracy or loss."),
    json_output: JsonOption = False,
) -> None:
    """Redraw the paper's scaling-law figures from a law and/or observations."""
    from robustscale.laws import plots

    fids = parse_floats(fid, "fid") if fid else []
    if kind is not PlotKind.envelope and law is None:
        raise RobustscaleError(f"law: required for the {kind.value} plot (--law)")
    if kind in (PlotKind.isoflop, PlotKind.envelope) and obs is None:
        raise RobustscaleError(f"obs: required for the {kind.value} plot (--obs)")
    est = load(law) if law is not None else None
    if kind is PlotKind.isoflop:
        path = plots.plot_isoflop(obs, est, out, fid=fids[0] if fids else None)
    elif kind is PlotKind.envelope:
        path = plots.plot_envelope(obs, out, law=est, source=source)
    elif kind is PlotKind.forecast:
        path = plots.plot_forecast(est, out, fid=fids or [0.0], metric=metric)
    else:
        path = plots.plot_tradeoff(est, out, flops, fids[0] if fids else 0.0)
    emit({"out": str(path)}, json_output, lambda r: print(f"wrote {r['out']}"))


def register(app: typer.Typer) -> None:
    app.command()(plot)
