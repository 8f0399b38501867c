"""Scaling-law commands: fit, plan, tradeoff, plot, simulate (library: robustscale.laws). Torch-free."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from robustscale.errors import RobustscaleError

# Table 3 compares approaches at 1e25 training FLOPs.
TABLE3_FLOPS = 1e25

LAW_HELP = "paper-approach2, paper-approach3, or a law.json written by `robustscale fit`."


class PlotKind(str, Enum):
    isoflop = "isoflop"
    envelope = "envelope"
    forecast = "forecast"
    tradeoff = "tradeoff"


def _parse_floats(values: List[str], name: str) -> list[float]:
    """`--flops 1e22,1e24 --flops 1e25` -> [1e22, 1e24, 1e25]."""
    out = []
    for v in values:
        for part in str(v).split(","):
            try:
                out.append(float(part))
            except ValueError:
                raise RobustscaleError(f"{name}: expected a number or comma-separated numbers, got '{part}'") from None
    if not out:
        raise RobustscaleError(f"{name}: expected at least one value")
    return out


def _sci(x: float) -> str:
    """1.44e+10 -> 1.44e10: compact enough for an 80-column table."""
    return f"{x:.3g}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


def _console():
    from rich.console import Console

    return Console()


def _table(title: str, rows: list[tuple[str, str]]) -> None:
    from rich.table import Table

    t = Table(title=title, show_header=False)
    for k, v in rows:
        t.add_row(k, v)
    _console().print(t)


def fit(
    obs: Path = typer.Argument(..., help="Observations CSV/Parquet: run, source, fid, params, samples, flops, loss[, accuracy]."),
    approach: int = typer.Option(2, "--approach", min=1, max=3, help="1 envelope (App. F.1), 2 Eq 3, 3 Eq 5."),
    out: Path = typer.Option(..., "--out", help="law.json to write."),
    base_source: Optional[str] = typer.Option(None, "--base-source", help="Approach 2 base-fit source (default: most runs) / Approach 1 only source."),
    bootstrap: int = typer.Option(0, "--bootstrap", min=0, help="K resamples of runs for percentile intervals (0 = none)."),
    exclude_small_runs: bool = typer.Option(True, "--exclude-small-runs/--keep-small-runs", help="App. F.2.1 rule: drop N<100M, D>10M, FID<10 (approaches 2, 3)."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    json_output: bool = typer.Option(False, "--json", help="Print the law as one JSON object."),
) -> None:
    """Fit a scaling law (approach 1, 2 or 3) to observations and write law.json."""
    from robustscale.fileio import write_json
    from robustscale.laws import Approach1, Approach2, Approach3, intervals, load_observations
    from robustscale.laws import bootstrap as run_bootstrap

    table = load_observations(obs)
    if approach == 1:
        est = Approach1(source=base_source)
    elif approach == 2:
        est = Approach2(exclude_small_runs=exclude_small_runs, base_source=base_source)
    else:
        est = Approach3(exclude_small_runs=exclude_small_runs)
    est.fit(table)
    if bootstrap:
        from rich.progress import Progress

        with Progress(transient=True, console=_stderr_console()) as progress:
            task = progress.add_task(f"bootstrap ({bootstrap} refits)", total=bootstrap)
            run_bootstrap(est, table, bootstrap, seed=seed, on_step=lambda: progress.advance(task))
    law = est.to_dict()
    if bootstrap:
        fid = table["fid"].min()  # intervals at the best data quality observed, Table 3's budget
        law["intervals"] = {"flops": TABLE3_FLOPS, "fid": float(fid), **intervals(est, TABLE3_FLOPS, fid)}
    write_json(out, law)
    if json_output:
        from robustscale.commands.output import print_json

        print_json({k: v for k, v in law.items() if k != "bootstrap"})
        return
    rows = [("approach", str(approach)), ("observations used", str(law["n_obs"])), ("objective", f"{law['objective']:.6g}")]
    if approach == 1:
        rows += [(f"{s}: a, b", f"{p['a']:.3f}, {p['b']:.3f}") for s, p in law["params"].items()]
    else:
        ivs = law.get("intervals", {}).get("params", {})
        rows += [(k, f"{v:.4g}" + (f"  [{ivs[k][0]:.4g}, {ivs[k][1]:.4g}]" if k in ivs else "")) for k, v in law["params"].items()]
    rows.append(("written", str(out)))
    _table("scaling law fit", rows)


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def plan(
    law: str = typer.Option(..., "--law", help=LAW_HELP),
    flops: List[str] = typer.Option(..., "--flops", help="Training FLOPs budget(s): 1e25, or 1e22,1e24, or repeated."),
    fid: float = typer.Option(0.0, "--fid", help="FID of the training data (0 = ideal data)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object (several budgets: {\"plans\": [...]})."),
) -> None:
    """Compute-optimal model size N*, data size D*, loss and robust accuracy at FLOPs budgets."""
    from robustscale.laws import intervals, load_law

    est = load_law(law)
    plans = []
    for f in _parse_floats(flops, "flops"):
        p = est.plan(f, fid)
        if getattr(est, "bootstrap_", None):
            p["intervals"] = {k: v for k, v in intervals(est, f, fid).items() if k in ("n_star", "d_star", "loss", "accuracy")}
        plans.append(p)
    if json_output:
        from robustscale.commands.output import print_json

        print_json(plans[0] if len(plans) == 1 else {"plans": plans})
        return
    from rich.table import Table

    t = Table(title=f"compute-optimal plan ({law}, FID={fid:g})")
    for col in ("FLOPs", "N*", "D*", "loss", "acc.", "E'", "acc. limit", "a", "b"):
        t.add_column(col, justify="right")
    for p in plans:
        t.add_row(_sci(p["flops"]), _sci(p["n_star"]), _sci(p["d_star"]), f"{p['loss']:.4f}", f"{100 * p['accuracy']:.1f}%",
                  "–" if p["irreducible_loss"] is None else f"{p['irreducible_loss']:.4f}",
                  "–" if p["accuracy_limit"] is None else f"{100 * p['accuracy_limit']:.1f}%", f"{p['a']:.3f}", f"{p['b']:.3f}")
    _console().print(t)


def tradeoff(
    law: str = typer.Option(..., "--law", help=LAW_HELP),
    flops: float = typer.Option(..., "--flops", help="Training FLOPs budget defining N*, D*."),
    fid: float = typer.Option(0.0, "--fid", help="FID of the training data."),
    omega_n: float = typer.Option(..., "--omega-n", help="Model size as a multiple of N* (0.5 = half)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Smaller model, more data (Eq 6): the data multiple and compute overhead at equal loss."""
    from robustscale.laws import load_law

    r = load_law(law).tradeoff(flops, fid, omega_n)
    if json_output:
        from robustscale.commands.output import print_json

        print_json(r)
        return
    _table("trade-off (Eq 6)", [("omega_n", f"{r['omega_n']:g}"), ("omega_d", f"{r['omega_d']:.4g}"),
                                ("overhead", f"{100 * r['overhead']:.2f}%"), ("n", _sci(r["n"])), ("d", _sci(r["d"]))])


def plot(
    kind: PlotKind = typer.Argument(..., help="isoflop (Fig. 4/5), envelope (Fig. 3), forecast (Fig. 1), tradeoff (Fig. 7)."),
    out: Path = typer.Option(..., "--out", help="Figure file, .png or .svg."),
    law: Optional[str] = typer.Option(None, "--law", help=LAW_HELP + " (isoflop, forecast, tradeoff)."),
    obs: Optional[Path] = typer.Option(None, "--obs", help="Observations (isoflop, envelope)."),
    fid: List[str] = typer.Option([], "--fid", help="FID(s); forecast accepts several (0,1.76)."),
    flops: float = typer.Option(TABLE3_FLOPS, "--flops", help="Budget for tradeoff (default 1e25, Table 3)."),
    source: Optional[str] = typer.Option(None, "--source", help="Source for envelope (default: most runs)."),
    metric: str = typer.Option("accuracy", "--metric", help="forecast: accuracy or loss."),
    json_output: bool = typer.Option(False, "--json", help="Print {\"out\": path}."),
) -> None:
    """Redraw the paper's scaling-law figures from a law and/or observations."""
    from robustscale.laws import load_law
    from robustscale.laws import plots

    fids = _parse_floats(fid, "fid") if fid else []
    needs_law = kind is not PlotKind.envelope
    if needs_law and law is None:
        raise RobustscaleError(f"--law: required for the {kind.value} plot")
    if kind in (PlotKind.isoflop, PlotKind.envelope) and obs is None:
        raise RobustscaleError(f"--obs: required for the {kind.value} plot")
    est = load_law(law) if law is not None else None
    if kind is PlotKind.isoflop:
        path = plots.plot_isoflop(obs, est, out, fid=fids[0] if fids else None)
    elif kind is PlotKind.envelope:
        path = plots.plot_envelope(obs, out, law=est, source=source)
    elif kind is PlotKind.forecast:
        path = plots.plot_forecast(est, out, fid=fids or [0.0], metric=metric)
    else:
        path = plots.plot_tradeoff(est, out, flops, fids[0] if fids else 0.0)
    if json_output:
        from robustscale.commands.output import print_json

        print_json({"out": str(path)})
    else:
        print(f"wrote {path}")


def simulate(
    law: str = typer.Option(..., "--law", help=LAW_HELP + " Approach 2 or 3."),
    out: Path = typer.Option(..., "--out", help="Observations file to write (.csv or .parquet)."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the noise."),
    noise: float = typer.Option(0.01, "--noise", min=0.0, help="Multiplicative log-normal noise (sd) on loss."),
    points_per_run: int = typer.Option(5, "--points-per-run", min=1, help="Evaluations per run."),
    json_output: bool = typer.Option(False, "--json", help="Print {out, rows, runs}."),
) -> None:
    """Draw a paper-shaped grid of observations (Table 1 sources x Table 2 models x sizes) from a law."""
    from robustscale.fileio import atomic_path
    from robustscale.laws import load_law
    from robustscale.laws import simulate as draw

    est = load_law(law)
    if not hasattr(est, "predict_loss"):
        raise RobustscaleError("--law: simulate needs a parametric law (approach 2 or 3)")
    if out.suffix not in (".csv", ".parquet"):
        raise RobustscaleError(f"{out}: expected a .csv or .parquet output file")
    df = draw(est, seed=seed, noise=noise, points_per_run=points_per_run)
    with atomic_path(out) as tmp:
        df.to_parquet(tmp) if out.suffix == ".parquet" else df.to_csv(tmp, index=False)
    summary = {"out": str(out), "rows": int(len(df)), "runs": int(df["run"].nunique())}
    if json_output:
        from robustscale.commands.output import print_json

        print_json(summary)
    else:
        print(f"wrote {out}: {summary['rows']} observations of {summary['runs']} runs")


def register(app: typer.Typer) -> None:
    for command in (fit, plan, tradeoff, plot, simulate):
        app.command()(command)
