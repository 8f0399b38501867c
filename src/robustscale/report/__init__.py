"""Reports: the paper's figures (Figs. 1, 3, 4, 5, 7) for a user's runs, as PNGs and an index.html.

`write_report(source, out)` reads a runs directory or an observations table, fits Approach 2
(or loads --law), Approach 1 where the runs allow, bootstraps intervals, and writes:
  training_curves.png  Fig. 3: training curves, their envelope, N*(F) and D*(F)    (laws.plots)
  isoflop.png          Figs. 4/5: runs vs the law per model size, isoLoss contours   (laws.plots)
  law_fit.png          the law's predicted loss against each run's, loss -> accuracy (here)
  forecast.png         Fig. 1: compute-optimal robust accuracy from 1e24 to 1e30 FLOPs (laws.plots)
  tradeoff.png         Fig. 7: model size vs compute overhead                       (laws.plots)
  law.json, approach1.json, observations.csv, report.json, index.html
"""

from __future__ import annotations

import html
import os
import time
from pathlib import Path

from robustscale.errors import RobustscaleError
from robustscale.fileio import write_json, write_text

FORECAST_FLOPS = (1e24, 1e30)  # Fig. 1's horizon
BOOTSTRAP_K = 20  # resamples for the intervals; the paper reports none, so this is ours
FIGURES = ("training_curves", "isoflop", "law_fit", "forecast", "tradeoff")


def load_source(source: str | os.PathLike):
    """Observations from a runs directory (collected on the fly) or a .csv/.parquet table."""
    from robustscale.laws import load_observations

    path = Path(source)
    if path.is_dir():
        from robustscale.runs import observations

        return observations(path)
    if not path.exists():
        raise RobustscaleError(f"{path}: no such runs directory or observations table")
    return load_observations(path)


def write_report(source: str | os.PathLike, out: str | os.PathLike, law: str | os.PathLike | None = None,
                 bootstrap_k: int = BOOTSTRAP_K, progress: bool = False) -> dict:
    """Fit (or load) the laws, draw every figure and write index.html; returns report.json's content.

    Parameters: source (runs dir or observations table), out (folder), law (law.json or preset
    name; None = fit Approach 2 here), bootstrap_k (resamples for intervals; 0 = none), progress
    (a rich progress bar on stderr).
    """
    from robustscale.laws import Approach1, Approach2, bootstrap, intervals, load_law, save_law
    from robustscale.laws import plots
    from robustscale.laws.plots import plot_law_fit

    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    obs = load_source(source)
    obs.to_csv(out / "observations.csv", index=False)
    law2 = load_law(law) if law is not None else Approach2().fit(obs)
    if not hasattr(law2, "predict_loss"):
        raise RobustscaleError(f"--law: {law} is approach {law2.approach}; the report needs approach 2 or 3")
    try:
        law1 = Approach1().fit(obs)
    except RobustscaleError:  # too few runs per source for an envelope: that figure fits its own
        law1 = None

    # The source with the most runs is the one the figures describe (the paper's PFGM++ / DG-20).
    counts = obs.groupby("source")["run"].nunique()
    main_source = str(counts.idxmax())
    fid = float(obs.loc[obs["source"] == main_source, "fid"].iloc[0])
    largest = float(obs["flops"].max())

    steps = [("bootstrap", bootstrap_k if law is None and bootstrap_k >= 2 else 0)] + [(f, 1) for f in FIGURES]
    with _progress(progress, sum(k for _, k in steps)) as advance:
        if steps[0][1]:
            bootstrap(law2, obs, k=bootstrap_k, on_step=advance)
        draw = {
            "training_curves": lambda p: plots.plot_envelope(obs, p, law=law1, source=main_source),
            "isoflop": lambda p: plots.plot_isoflop(obs, law2, p, fid=fid),
            "law_fit": lambda p: plot_law_fit(obs, law2, p),
            "forecast": lambda p: plots.plot_forecast(law2, p, fid=sorted({0.0, fid}), flops_range=FORECAST_FLOPS),
            "tradeoff": lambda p: plots.plot_tradeoff(law2, p, flops=10 * largest, fid=fid),
        }
        figures, failed = {}, {}
        for name in FIGURES:
            path = out / f"{name}.png"
            try:
                draw[name](path)
                figures[name] = str(path)
            except (RobustscaleError, ValueError, FloatingPointError) as e:
                # a degenerate fit (e.g. runs too short to learn) has no finite optimum to draw:
                # the page says so instead of the whole report failing
                failed[name] = f"{type(e).__name__}: {e}"
                path.unlink(missing_ok=True)
            advance()

    save_law(law2, out / "law.json")
    if law1 is not None:
        save_law(law1, out / "approach1.json")
    plans = {f"{f:.0e}": law2.plan(f, fid) for f in (10 * largest, *FORECAST_FLOPS)}
    ranges = intervals(law2, 10 * largest, fid) if getattr(law2, "bootstrap_", None) else None
    result = {
        "index": str(out / "index.html"), "figures": figures, "failed_figures": failed, "source": str(source),
        "observations": int(len(obs)), "runs": int(obs["run"].nunique()), "main_source": main_source, "fid": fid,
        "approach2": {"params": law2.params_, "intervals": ranges, "plans": plans},
        "approach1": None if law1 is None else {"params": law1.params_},
        "wall_s": round(time.perf_counter() - t0, 2),
    }
    write_json(out / "report.json", result)
    write_text(out / "index.html", _html(result, obs))
    return result


class _progress:
    """A rich progress bar on stderr (or nothing); the context yields advance()."""

    def __init__(self, show: bool, total: int):
        self.show, self.total, self.bar = show, total, None

    def __enter__(self):
        if not self.show:
            return lambda: None
        from rich.console import Console
        from rich.progress import Progress

        self.bar = Progress(console=Console(stderr=True), transient=True)
        self.bar.start()
        task = self.bar.add_task("report", total=self.total)
        return lambda: self.bar.advance(task)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()


CAPTIONS = {
    "training_curves": "Training curves of the main source, their envelope (black) and the Approach 1 "
                       "regressions N* ∝ F<sup>a</sup>, D* ∝ F<sup>b</sup> (paper Fig. 3).",
    "isoflop": "Each run's final loss against FLOPs with the Approach 2 law per model size, and isoLoss "
               "contours with the compute-optimal N* (paper Figs. 4 and 5).",
    "law_fit": "The law's predicted loss against each run's observed loss, and the loss → robust accuracy "
               "regression (App. F.2.2).",
    "forecast": "Forecast: compute-optimal robust accuracy from 10<sup>24</sup> to 10<sup>30</sup> FLOPs; "
                "dashed: the infinite-compute limit (paper Fig. 1).",
    "tradeoff": "Training a smaller or larger model than N* to the same loss: the compute overhead "
                "(paper Fig. 7), at 10× the largest budget observed.",
}


def _fmt(x) -> str:
    if x is None:
        return "–"
    if isinstance(x, (int, float)):
        return f"{x:.4g}"
    return html.escape(str(x))


def _html(r: dict, obs) -> str:
    a2 = r["approach2"]
    ranges = (a2["intervals"] or {}).get("params", {})
    level = (a2["intervals"] or {}).get("level")
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td><td>"
        + (f"[{_fmt(ranges[k][0])}, {_fmt(ranges[k][1])}]" if k in ranges else "–") + "</td></tr>"
        for k, v in a2["params"].items())
    plan_rows = "".join(
        f"<tr><td>{k}</td><td>{_fmt(p['n_star'])}</td><td>{_fmt(p['d_star'])}</td><td>{_fmt(p['loss'])}</td>"
        f"<td>{_fmt(100 * p['accuracy'])}%</td></tr>" for k, p in a2["plans"].items())
    a1 = ""
    if r["approach1"]:
        a1 = "<h2>Approach 1 (envelope, per source)</h2><table><tr><th>source</th><th>a</th><th>b</th></tr>" + "".join(
            f"<tr><td>{html.escape(s)}</td><td>{_fmt(p['a'])}</td><td>{_fmt(p['b'])}</td></tr>"
            for s, p in r["approach1"]["params"].items()) + "</table>"
    figs = "".join(
        f'<figure><img src="{name}.png" alt="{name}"><figcaption>{CAPTIONS[name]}</figcaption></figure>'
        for name in r["figures"])
    figs += "".join(f"<p><b>{name}</b> not drawn: {html.escape(why)}</p>" for name, why in r["failed_figures"].items())
    interval_head = f"{100 * level:.0f}% bootstrap interval" if level else "bootstrap interval"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>robustscale report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}img{{max-width:100%}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
figure{{margin:2em 0}}</style></head><body>
<h1>Scaling-law report</h1>
<p>{r['runs']} runs, {r['observations']} evaluation points from <code>{html.escape(r['source'])}</code>;
main source <b>{html.escape(r['main_source'])}</b> (FID {r['fid']:g}).</p>
<h2>Approach 2: L(N, D, FID) = A/N<sup>α</sup> + B'/D<sup>β</sup> + E'</h2>
<table><tr><th>parameter</th><th>fit</th><th>{interval_head}</th></tr>{rows}</table>
<h3>Compute-optimal plans (FID {r['fid']:g})</h3>
<table><tr><th>FLOPs</th><th>N*</th><th>D*</th><th>loss</th><th>robust accuracy</th></tr>{plan_rows}</table>
{a1}
{figs}
</body></html>
"""
