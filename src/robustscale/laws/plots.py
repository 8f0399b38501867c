"""The paper's scaling-law figures redrawn (matplotlib, Agg backend); each function writes one file.

Every function takes an output path ending in .png or .svg, writes it atomically and returns it.
Observations may be as small as one source (e.g. real data, fid 0) with a few runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from robustscale.errors import RobustscaleError
from robustscale.fileio import atomic_path
from robustscale.laws.observations import final_points, load_observations

# The observations' loss as they report it: the paper's is the TRADES loss under PGD-CW (§3.1), but
# a report draws any study's runs, so the label claims no more than "loss".
LOSS_LABEL = "held-out loss"


def _figure(ncols: int, width: float = 4.2):
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window; set here, not at import
    import matplotlib.pyplot as plt

    # constrained layout makes room for colour bars itself (tight_layout warns that it cannot)
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, 3.6), squeeze=False, layout="constrained")
    fig.get_layout_engine().set(wspace=0.08)  # room between a colour bar's label and the next panel's
    return fig, axes[0]


def _save(fig, out) -> Path:
    import matplotlib.pyplot as plt

    out = Path(out)
    if out.suffix not in (".png", ".svg"):
        plt.close(fig)
        raise RobustscaleError(f"{out}: expected a .png or .svg output file")
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() == "log":
                _log_ticks(axis)
    try:
        with atomic_path(out, make_parents=False) as tmp:
            fig.savefig(tmp, format=out.suffix[1:], dpi=120)
    finally:
        plt.close(fig)
    return out


def _log_ticks(axis) -> None:
    """At most ~5 labelled ticks on a log axis: matplotlib labels minor ticks (2x10^13, 3x10^13, ...)
    when the range spans under a decade, and those labels overprint each other."""
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullFormatter

    lo, hi = sorted(axis.get_view_interval())
    decades = np.log10(hi / lo) if lo > 0 else 10.0
    subs = (1.0,) if decades >= 2 else (1.0, 3.0) if decades >= 0.7 else (1.0, 2.0, 5.0)
    axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=6))
    axis.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=False))
    axis.set_minor_formatter(NullFormatter())


def _colors(values):
    import matplotlib.pyplot as plt

    uniq = sorted(set(values))
    cmap = plt.get_cmap("viridis")
    return {v: cmap(i / max(len(uniq) - 1, 1)) for i, v in enumerate(uniq)}


def _size_colors(fig, ax, params):
    """{model size: colour} on a log colour scale, with its colour bar beside `ax`: readable for 3
    model sizes or 140 (a legend of 140 entries would cover the axes)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    uniq = sorted(set(float(n) for n in params))
    norm = LogNorm(uniq[0], uniq[-1]) if uniq[-1] > uniq[0] else LogNorm(uniq[0] / 2, uniq[0] * 2)
    cmap = plt.get_cmap("viridis")
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="parameters N")
    return {n: cmap(norm(n)) for n in uniq}


def plot_isoflop(obs: pd.DataFrame | str | os.PathLike, law, out, fid: float | None = None,
                 marked=None, n_star_rounds=()) -> Path:
    """Fig. 4 (left/middle), Fig. 5: observed final losses vs the law, and isoLoss contours with N*.

    Parameters: obs (observations), law (fitted Approach 2 or 3), out (.png/.svg), fid (data
    quality of the contour panel; None = FID of the source with the most runs), marked (run names
    drawn as stars: an adaptive sweep's later rounds), n_star_rounds ([(label, flops, record)]: an
    N* estimate and interval per round, `laws.planning.bounded` records, drawn at their budget).
    Left: each run's final loss against FLOPs, coloured by model size, law predictions as lines.
    Right: predicted loss over (FLOPs, N) with the compute-optimal N*(FLOPs) curve.
    """
    obs = load_observations(obs)
    if not hasattr(law, "predict_loss"):
        raise RobustscaleError("law: isoflop plot needs a parametric law (approach 2 or 3)")
    if fid is None:
        fid = float(obs["fid"].min())
    fig, (ax0, ax1) = _figure(2, 4.6)
    runs = obs.loc[obs.groupby("run")["samples"].idxmax()]
    colors = _size_colors(fig, ax0, runs["params"])
    for n, rows in runs.groupby("params"):
        rows = rows.sort_values("flops")
        ax0.scatter(rows["flops"], rows["loss"], color=colors[n], s=14)
        for src_fid, srows in rows.groupby("fid"):
            srows = srows.sort_values("samples")
            ax0.plot(srows["flops"], law.predict_loss(n, srows["samples"], src_fid), color=colors[n], lw=0.8)
    ax0.set(xscale="log", xlabel="training FLOPs", ylabel=LOSS_LABEL, title="runs (dots) and law (lines)")
    flops = np.geomspace(obs["flops"].min() / 10, obs["flops"].max() * 100, 80)
    n_grid = np.geomspace(obs["params"].min() / 10, obs["params"].max() * 10, 80)
    F, N = np.meshgrid(flops, n_grid)
    L = law.predict_loss(N, F / (law.flops_per_param_sample_ * N), fid)
    cs = ax1.contourf(F, N, np.log(L), levels=20, cmap="viridis")
    fig.colorbar(cs, ax=ax1, label="log loss")
    n_star = np.atleast_1d(law.optimum(flops, fid)[0])
    ax1.plot(flops, n_star, color="red", label="N*")
    ax1.scatter(runs["flops"], runs["params"], color="white", edgecolor="black", s=10, label="runs")
    later = runs[runs["run"].isin(list(marked or []))]
    if len(later):
        for ax, y in ((ax0, "loss"), (ax1, "params")):
            ax.scatter(later["flops"], later[y], marker="*", s=90, color="none", edgecolor="red", lw=1,
                       label="later rounds' runs")
        ax0.legend(fontsize=6)
    for i, (label, budget, b) in enumerate(n_star_rounds):
        x = budget * 1.25 ** i  # side by side at the budget they were planned for
        lo = b["lo"] if b["lo"] is not None else n_grid[0]  # open below: down to the panel's edge
        hi = b["hi"] if b["hi"] is not None else (b["value"] or b["not_determined_below"] or n_grid[0])
        color = ("orange", "magenta", "cyan")[i % 3]
        ax1.plot([x, x], [lo, hi], color=color, lw=2, label=label)
        if b["value"] is not None:
            ax1.scatter([x], [b["value"]], color=color, s=16)
    ax1.set(xscale="log", yscale="log", xlabel="training FLOPs", ylabel="parameters N",
            ylim=(n_grid[0], n_grid[-1]), title=f"isoLoss contours, FID={fid:g}")
    ax1.legend(fontsize=6)
    return _save(fig, out)


def plot_envelope(obs: pd.DataFrame | str | os.PathLike, out, law=None, source: str | None = None) -> Path:
    """Fig. 3: one source's training curves, their envelope, and the N*(F), D*(F) regressions.

    Parameters: obs, out (.png/.svg), law (a fitted Approach1; None = fit one here),
    source (None = the source with the most runs).
    """
    from robustscale.laws.approach1 import Approach1

    obs = load_observations(obs)
    source = source if source is not None else str(obs.groupby("source")["run"].nunique().idxmax())
    rows = obs[obs["source"] == source]
    if rows.empty:
        raise RobustscaleError(f"source: '{source}' not in the observations")
    if not isinstance(law, Approach1) or source not in law.params_ or not hasattr(law, "envelopes_"):
        law = Approach1(source=source).fit(rows)
    p, env = law.params_[source], law.envelopes_[source]
    fig, (ax0, ax1, ax2) = _figure(3, 3.8)
    colors = _size_colors(fig, ax0, rows["params"])
    for _, curve in rows.sort_values("flops").groupby("run"):
        ax0.plot(curve["flops"], curve["loss"], color=colors[curve["params"].iloc[0]], lw=0.8)
    ax0.plot(env["flops"], env["loss"], color="black", lw=2, label="envelope")
    ax0.set(xscale="log", xlabel="training FLOPs", ylabel=LOSS_LABEL, title=f"{source}: training curves")
    ax0.legend(fontsize=7)
    f = np.geomspace(env["flops"].min(), env["flops"].max() * 100, 50)
    for ax, col, key, coef, label, unit in ((ax1, "n", "a", "log_n0", "N*", "parameters"),
                                             (ax2, "d", "b", "log_d0", "D*", "samples")):
        ax.scatter(env["flops"], env[col], s=4, color="gray")
        ax.plot(f, np.exp(p[coef]) * f ** p[key], color="red", label=f"{label} ∝ F^{p[key]:.2f}")
        ax.set(xscale="log", yscale="log", xlabel="training FLOPs", ylabel=f"{label} ({unit})")
        ax.legend(fontsize=7)
    return _save(fig, out)


def plot_forecast(law, out, fid=(0.0,), flops_range: tuple[float, float] = (1e18, 1e30),
                  metric: str = "accuracy") -> Path:
    """Fig. 1: predicted compute-optimal robust accuracy (or loss) against FLOPs, per FID.

    Parameters: law (fitted Approach 1, 2 or 3), out (.png/.svg), fid (one FID or several),
    flops_range (min, max training FLOPs), metric ("accuracy" or "loss").
    Dashed lines: the infinite-compute limit at each FID (approaches 2 and 3).
    """
    if metric not in ("accuracy", "loss"):
        raise RobustscaleError(f"metric: expected 'accuracy' or 'loss', got '{metric}'")
    if metric == "accuracy" and getattr(law, "accuracy_", None) is None:
        raise RobustscaleError("metric: the law has no loss -> accuracy regression (its runs measured no "
                               "accuracy); use 'loss'")
    fids = [float(x) for x in np.atleast_1d(fid)]
    flops = np.geomspace(*flops_range, 60)
    fig, (ax,) = _figure(1, 5.5)
    colors = _colors(fids)
    for x in fids:
        with np.errstate(all="ignore"):
            loss = np.array([law.optimum(f, x)[2] for f in flops], dtype=float)
        y = law.predict_accuracy(loss) if metric == "accuracy" else loss
        ax.plot(flops, 100 * y if metric == "accuracy" else y, color=colors[x], label=f"FID={x:g}")
        limit = law.irreducible_loss(x)
        if limit is not None:
            lim = 100 * law.predict_accuracy(limit) if metric == "accuracy" else limit
            ax.axhline(float(lim), color=colors[x], ls="--", lw=0.8)
    ax.set(xscale="log", xlabel="training FLOPs",
           ylabel="predicted robust accuracy (%)" if metric == "accuracy" else "predicted loss L*",
           title=f"compute-optimal forecast (approach {law.approach})")
    ax.legend(fontsize=7)
    return _save(fig, out)


def plot_tradeoff(law, out, flops: float, fid: float = 0.0,
                  omega_range: tuple[float, float] = (0.1, 2.0)) -> Path:
    """Fig. 7: compute overhead of training a model ω_N× the optimal size to the same loss.

    Parameters: law (fitted Approach 2 or 3), out (.png/.svg), flops (budget defining N*, D*),
    fid, omega_range (ω_N span; sizes needing infinite data are left out).
    """
    if not hasattr(law, "tradeoff"):
        raise RobustscaleError(f"law: approach {law.approach} has no loss formula; the trade-off needs "
                               "approach 2 or 3")
    omegas = np.geomspace(*omega_range, 60)
    pts = []
    for w in omegas:
        try:
            pts.append((w, law.tradeoff(flops, fid, w)["overhead"]))
        except RobustscaleError:
            continue
    if not pts:
        raise RobustscaleError("omega_range: no model size in range reaches the optimal loss")
    w, over = np.array(pts).T
    n_star = float(law.optimum(flops, fid)[0])
    fig, (ax,) = _figure(1, 5.5)
    ax.plot(w * n_star, 100 * over, color="black")
    ax.axvline(n_star, color="red", ls="--", lw=0.8, label=f"N* = {n_star / 1e6:.3g}M")
    from matplotlib.ticker import NullFormatter

    ax.set(xscale="log", xlabel="model size N", ylabel="compute overhead (%)",
           ylim=(min(-5, 100 * over.min()), min(200, 100 * over.max() + 5)),
           title=f"{flops:.3g} FLOPs, FID={fid:g}")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.legend(fontsize=7)
    return _save(fig, out)


def plot_law_fit(obs: pd.DataFrame, law, out) -> Path:
    """Each run's final loss and accuracy, observed against predicted by the law (parity plots).

    Parameters: obs (validated observations), law (fitted Approach 2 or 3), out (.png/.svg).
    Left: predicted vs observed loss per run, coloured by model size, with the y = x line.
    Right (where the runs measured accuracy): accuracy observed vs the law's loss -> accuracy
    regression (App. F.2.2).
    """
    runs = final_points(obs)
    predicted = np.asarray(law.predict_loss(runs["params"].to_numpy(), runs["samples"].to_numpy(),
                                            runs["fid"].to_numpy()), dtype=float)
    measured = "accuracy" in obs.columns and obs["accuracy"].notna().any() and law.accuracy_ is not None
    fig, axes = _figure(2 if measured else 1, 4.6)
    ax0 = axes[0]
    colors = _size_colors(fig, ax0, runs["params"])
    for n, idx in runs.groupby("params").groups.items():
        ax0.scatter(runs.loc[idx, "loss"], predicted[runs.index.get_indexer(idx)], color=colors[n], s=18)
    lo = min(runs["loss"].min(), predicted.min()) * 0.97
    hi = max(runs["loss"].max(), predicted.max()) * 1.03
    ax0.plot([lo, hi], [lo, hi], color="gray", ls="--", lw=0.8)
    rel = np.abs(predicted / runs["loss"].to_numpy() - 1)
    ax0.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="observed loss", ylabel="law's predicted loss",
            title=f"approach {law.approach}: mean |error| {100 * rel.mean():.1f}%")
    if measured:  # without an accuracy column there is nothing to draw against loss
        ax1 = axes[1]
        pts = obs.dropna(subset=["accuracy"])
        ax1.scatter(pts["loss"], 100 * pts["accuracy"], s=8, color="gray", label="evaluations")
        grid = np.linspace(pts["loss"].min(), pts["loss"].max(), 50)
        ax1.plot(grid, 100 * np.asarray(law.predict_accuracy(grid), dtype=float), color="red",
                 label="loss -> accuracy fit")
        ax1.legend(fontsize=6)
        ax1.set(xlabel="loss", ylabel="robust accuracy (%)", title="accuracy against loss")
    return _save(fig, out)
