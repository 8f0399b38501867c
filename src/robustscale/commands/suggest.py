"""`robustscale suggest`: the next runs that narrow N*(F) most within a FLOPs budget (torch-free with
--params)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from robustscale.commands.law_options import LawOption, LevelOption, parse_floats, parse_names, warn_findings
from robustscale.commands.output import JsonOption, console, emit, sci, warn
from robustscale.errors import RobustscaleError

# Model sizes `--out` considers for a parameter count given with --params: the registry's names plus
# WRN-DEPTH-WIDTH from the demo's WRN-10-1 up (depth 6n+4, widths as in Table 2's family).
CLOSEST_DEPTHS = (10, 16, 22, 28, 40, 70)
CLOSEST_WIDTHS = (1, 2, 4, 8, 10, 16)


def suggest(
    observations: Path = typer.Argument(
        ..., metavar="OBS", help="The observations the law was fitted to (CSV/Parquet)."
    ),
    law: LawOption = ...,
    budget: Annotated[float, typer.Option("--budget", help="FLOPs to spend on the new runs.")] = ...,
    target_flops: Annotated[
        float, typer.Option("--target-flops", help="The budget F whose N*(F) should be known.")
    ] = ...,
    fid: Annotated[
        Optional[float], typer.Option("--fid", help="Target data quality (default: the main source's).")
    ] = None,
    source: Annotated[
        Optional[str], typer.Option("--source", help="Source of the new runs (default: the main one).")
    ] = None,
    params: Annotated[
        Optional[List[str]],
        typer.Option("--params", help="Candidate model sizes as parameter counts: 1e5,4e5 (torch-free)."),
    ] = None,
    models: Annotated[
        Optional[List[str]],
        typer.Option(
            "--models",
            help="Candidate models by registry name: wrn-16-1,wrn-28-2 (counted at --data's input shape).",
        ),
    ] = None,
    samples: Annotated[
        Optional[List[str]],
        typer.Option(
            "--samples",
            help="Dataset sizes to consider (default: x2 steps from the smallest observed D to 100x the "
            "largest).",
        ),
    ] = None,
    data: Annotated[
        Optional[str],
        typer.Option(
            "--data",
            help="Dataset of the runs (input shape for --models; the sweep file's): default --sweep's, else "
            "fashion-mnist.",
        ),
    ] = None,
    sweep: Annotated[
        Optional[Path],
        typer.Option(
            "--sweep",
            help="The sweep file of the observed runs: --out copies its dataset, source, training settings.",
        ),
    ] = None,
    max_runs: Annotated[Optional[int], typer.Option("--max-runs", help="At most this many runs.")] = None,
    level: LevelOption = 0.9,
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Write the runs as a sweep file (next.yaml).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """The runs within --budget FLOPs expected to narrow the interval of N* at --target-flops most
    (the delta method on the law's Jacobian; see robustscale.laws.design), and that interval before
    and after them."""
    from robustscale.laws import load_law
    from robustscale.laws.design import suggest_runs

    if (params is None) == (models is None):
        raise RobustscaleError(
            "params: give the candidate model sizes as --params or as --models (one of them)"
        )
    base = _read_sweep(sweep) if sweep is not None else {}
    dataset = data or base.get("dataset") or "fashion-mnist"
    est = load_law(law)  # its guard's findings are printed once the suggestion stands (an error comes alone)
    candidates = _candidates(params, models, dataset)
    result = suggest_runs(
        observations,
        est,
        budget=budget,
        target_flops=target_flops,
        candidates=candidates,
        fid=fid,
        source=source,
        samples=None if samples is None else parse_floats(samples, "samples"),
        max_runs=max_runs,
        level=level,
    )
    out_dict = result.to_dict()
    if out is not None:
        if not result.runs:
            raise RobustscaleError(f"out: no runs suggested, so no sweep file written to {out}")
        out_dict["out"] = str(out)
        out_dict["warnings"] += _write_sweep(out, result, base, dataset, sweep, models is not None)
    warn_findings(est.diagnostics_, est.anchored_)
    for message in out_dict["warnings"]:
        warn(message)
    emit(out_dict, json_output, _render)


def _candidates(params, models, dataset: str):
    from robustscale.laws.design import Candidate

    if params is not None:
        return [Candidate(p) for p in parse_floats(params, "params")]
    from robustscale.data.datasets import dataset_info
    from robustscale.flops import flops_summary  # torch: only for registry names

    shape = dataset_info(dataset).shape
    out = []
    for name in parse_names(models):
        s = flops_summary(name, shape, "trades")
        out.append(Candidate(float(s["params"]), float(s["train_flops_per_sample"]), name))
    return out


def _read_sweep(path: Path) -> dict:
    """The raw settings of the observed runs' sweep file (validated as a sweep first)."""
    from robustscale.sweep.spec import load_sweep

    load_sweep(path)
    text = path.read_text()
    if path.suffix == ".toml":
        import tomllib

        data = tomllib.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text)
    base = path.resolve().parent
    if data.get("data_dir") is not None:
        data["data_dir"] = str((base / str(data["data_dir"])).resolve())
    data["out"] = str((base / str(data.get("out", "runs"))).resolve())
    for entry in data.get("sources") or []:
        if isinstance(entry, dict) and entry.get("path") is not None:
            entry["path"] = str((base / str(entry["path"])).resolve())
    return data


def _write_sweep(out: Path, result, base: dict, dataset: str, sweep: Path | None, by_name: bool) -> list[str]:
    """next.yaml: the chosen runs as a sweep (each model with its own samples); returns warnings."""
    import yaml

    from robustscale.fileio import write_text

    notes, warnings = [], []
    source = result.runs[0]["source"] if result.runs else None
    chosen: dict[str, list[int]] = {}
    if by_name:
        for r in result.runs:
            chosen.setdefault(r["model"], []).append(r["samples"])
    else:
        sizes = _registry_sizes(dataset)
        for r in result.runs:
            name, n = min(sizes.items(), key=lambda kv: abs(_log(kv[1]) - _log(r["params"])))
            notes.append(
                f"# suggested N = {r['params']:.4g} parameters at {r['samples']} samples: closest registry "
                f"model {name} ({n:,} parameters)"
            )
            if r["samples"] in chosen.get(name, []):
                warnings.append(
                    f"{out}: N = {r['params']:.4g} at {r['samples']} samples maps to {name}, already listed; "
                    "kept once"
                )
                continue
            chosen.setdefault(name, []).append(r["samples"])
    sources = [s for s in base.get("sources") or [] if (s if isinstance(s, str) else s.get("name")) == source]
    if not sources:
        if source != "real":
            raise RobustscaleError(
                f"sweep: the new runs' source {source!r} is a synthetic store; give --sweep (the "
                "observed runs' sweep file) so next.yaml names its path"
            )
        sources = ["real"]
    spec = {
        "name": f"{base.get('name', 'study')}-next",
        "dataset": dataset,
        "data_dir": base.get("data_dir"),
        "out": base.get("out", "runs"),
        "sources": sources,
        "models": [{"name": m, "samples": sorted(s)} for m, s in chosen.items()],
    }
    for key in ("train", "evaluation", "slurm"):
        if base.get(key):
            spec[key] = base[key]
    if sweep is None:
        warnings.append(
            f"{out}: no --sweep given: the runs use the default training settings; runs trained "
            "otherwise than the observed ones do not belong to the same law"
        )
    header = (
        f"# robustscale suggest: {len(result.runs)} runs, {result.spent:.4g} of {result.budget:.4g} FLOPs, "
        f"for N* at {result.target['flops']:.3g} FLOPs (FID {result.target['fid']:g})\n"
    )
    write_text(out, header + "".join(n + "\n" for n in notes) + yaml.safe_dump(spec, sort_keys=False))
    return warnings


def _registry_sizes(dataset: str) -> dict[str, int]:
    """{model name: parameters at the dataset's input shape}, built on the meta device (no memory)."""
    import torch

    from robustscale.models.registry import create_model, list_models

    names = dict.fromkeys([f"wrn-{d}-{w}" for d in CLOSEST_DEPTHS for w in CLOSEST_WIDTHS] + list_models())
    with torch.device("meta"):
        return {n: int(create_model(n, dataset=dataset).get_num_params()) for n in names}


def _log(x: float) -> float:
    import math

    return math.log(x)


def _render(d: dict) -> None:
    from rich.table import Table

    t = Table(title=f"suggested runs: {sci(d['spent'])} of {sci(d['budget'])} FLOPs")
    for col in ("model", "params N", "samples D", "source", "FLOPs"):
        t.add_column(col, justify="right")
    for r in d["runs"]:
        t.add_row(r["model"] or "–", sci(r["params"]), f"{r['samples']:,}", r["source"], sci(r["flops"]))
    console().print(t)
    target = f"N* at {sci(d['target']['flops'])} FLOPs, FID {d['target']['fid']:g}"
    print(
        f"{target}\n  now:                     {interval_text(d['before'], d['level'])}\n"
        f"  expected after the runs: {interval_text(d['expected'], d['level'])}"
    )
    if d.get("out"):
        print(f"sweep file: {d['out']} (run it with `robustscale sweep {d['out']}`)")


def interval_text(iv: dict, level: float) -> str:
    """'1.2e9 parameters [90% interval 3e8 to 5e9]', or 'not determined below X' where the runs leave the
    lower side open: `laws.planning.describe_bounded`, as plan, the demo and the report say it."""
    from robustscale.laws.planning import describe_bounded, plan_bounds

    return describe_bounded(plan_bounds(iv, "n_star", level), sci, "parameters")


def register(app: typer.Typer) -> None:
    app.command()(suggest)
