"""`robustscale fit`: fit a scaling law to observations and write law.json (torch-free)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from robustscale.commands.law_options import (
    ACCURACY_UNAVAILABLE,
    AccuracyMapOption,
    LevelOption,
    SourcesOption,
    parse_names,
    warn_exclusions,
    warn_findings,
)
from robustscale.commands.output import JsonOption, emit, table, warn
from robustscale.errors import RobustscaleError
from robustscale.formatting import fixed, num, with_interval


def fit(
    obs: Path = typer.Argument(
        ..., help="Observations CSV/Parquet: run, source, fid, params, samples, flops, loss[, accuracy]."),
    approach: int = typer.Option(
        2, "--approach", min=1, max=3, help="1 envelope (App. F.1), 2 Eq 3, 3 Eq 5."),
    out: Path = typer.Option(..., "--out", help="law.json to write (its folder must exist)."),
    base_source: Optional[str] = typer.Option(
        None, "--base-source",
        help="Approach 2 base-fit source (default: most runs) / Approach 1 only source."),
    quality_sources: SourcesOption = None,
    prior: Optional[str] = typer.Option(
        None, "--prior", help="Anchored fit (approach 2): keep this preset's or law.json's α, β (and ε, ζ "
        "with one data quality), fit the rest."),
    prior_strength: Optional[float] = typer.Option(
        None, "--prior-strength", min=0.0, help="With --prior: pull α, β towards the prior with this penalty "
        "weight instead of fixing them."),
    flops_per_param_sample: Optional[float] = typer.Option(
        None, "--flops-per-param-sample", min=0.0, help="c in FLOPs = c·N·D (default: measured from the "
        "observations; the paper's 7822 without)."),
    bootstrap: int = typer.Option(
        0, "--bootstrap", min=0, help="K resampled refits stored in law.json for intervals (0 = none)."),
    level: LevelOption = 0.9,
    exclude_small_runs: bool = typer.Option(
        True, "--exclude-small-runs/--keep-small-runs",
        help="App. F.2.1 rule: drop N<100M, D>10M, FID<10 (approaches 2, 3)."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    accuracy_map: AccuracyMapOption = "runs",
    json_output: JsonOption = False,
) -> None:
    """Fit a scaling law (approach 1, 2 or 3) to observations and write law.json.

    Warns about parameters the data do not determine, runs App. F.2.1's rule leaves out, and a law
    without a loss -> accuracy regression.
    """
    from robustscale.laws import fit_law, intervals, save_law
    from robustscale.laws.planning import default_budget
    from robustscale.progress import progress_bar

    if approach == 3 and base_source is not None:
        raise RobustscaleError("--base-source: approach 3 fits every source at once; "
                               "it is for approaches 1 and 2")
    params = {"source": base_source} if approach == 1 else {"exclude_small_runs": exclude_small_runs}
    params["accuracy_map"] = accuracy_map
    if approach == 2:
        params["base_source"] = base_source
    try:
        with progress_bar(bootstrap, f"bootstrap ({bootstrap} refits)", enabled=bootstrap > 0) as advance:
            est = fit_law(obs, approach=approach, prior=prior, prior_strength=prior_strength,
                          quality_sources=parse_names(quality_sources), bootstrap=bootstrap, seed=seed,
                          flops_per_param_sample=flops_per_param_sample, on_step=advance, **params)
    except RobustscaleError as e:  # the library names its parameter; say which flag sets it
        raise RobustscaleError(str(e).replace("exclude_small_runs=False", "--keep-small-runs")) from None
    law = save_law(est, out, make_parents=False)
    warn_findings(est.diagnostics_, est.anchored_)
    warn_exclusions(law["excluded_runs"])
    if law["accuracy_map"] is None:
        warn(ACCURACY_UNAVAILABLE)
    elif law["accuracy_map"] != "runs":
        warn(f"accuracy: predicted with the borrowed regression '{law['accuracy_map']}' (as asked), not with "
             "these runs' own (law.json: accuracy_map)")
    shown = {k: v for k, v in law.items() if k != "bootstrap"}
    if bootstrap:
        flops, fid = default_budget(est), min(est.sources_.values())
        shown["intervals"] = {"flops": flops, "fid": fid, **intervals(est, flops, fid, level)}
    emit(shown, json_output, lambda d: _render(d, out))


def _render(law: dict, out: Path) -> None:
    rows = [("approach", str(law["approach"])), ("observations used", str(law["n_obs"])),
            ("runs left out", str(len(law["excluded_runs"]))),
            ("objective", num(law["objective"], 6)),
            ("FLOPs per param-sample", num(law["flops_per_param_sample"], 5)),
            ("loss -> accuracy", law["accuracy_map"] or "unavailable")]
    ivs = law.get("intervals", {}).get("params", {})
    if law["approach"] == 1:
        rows += [(f"{s}: a, b", f"{fixed(p['a'], 3)}, {fixed(p['b'], 3)}") for s, p in law["params"].items()]
    else:
        flags = {k for k, ok in law["identified"].items() if not ok}
        for k, v in law["params"].items():
            row = {"v": v, **({"v_lo": ivs[k][0], "v_hi": ivs[k][1]} if k in ivs else {})}
            rows.append((k + (" (not identified)" if k in flags else ""), with_interval(row, "v", num)))
    if law.get("anchored"):
        rows.append(("anchored to", f"{law['anchored']['prior']}"))
    rows.append(("written", str(out)))
    table("scaling law fit", rows)


def register(app: typer.Typer) -> None:
    app.command()(fit)
