"""`robustscale demo`: a missing dataset stops at once; `--quick` runs a real (reduced) two-round study
end to end (a grid, then the runs `suggest` chose) -> summary, observations, one law per round, the
report, every file readable by others (umask 022). The summary is checked against numbers recomputed
here from the run folders and the laws' files, never against numbers the demo copied."""

from __future__ import annotations

import json
import re
import stat
import time

import pandas as pd
import pytest

from robustscale.data.datasets import check_dataset
from robustscale.demo import run_demo
from robustscale.errors import RobustscaleError
from robustscale.formatting import count
from robustscale.laws import load_law
from robustscale.laws.planning import bounded, describe_bounded
from robustscale.report import FIGURES
from robustscale.runs import list_runs, observations
from robustscale.sweep import load_sweep

PNG = b"\x89PNG\r\n\x1a\n"
# every key of the summary that holds a count of parameters or samples (`bounded` records: value, lo, hi)
COUNT_KEYS = {f"{q}{end}" for q in ("n_star", "d_star")
              for end in ("", "_lo", "_hi", "_not_determined_below")} | {
    "value", "lo", "hi", "not_determined_below"}


def test_missing_dataset_is_one_line_within_seconds(cli, tmp_path):
    t0 = time.perf_counter()
    r = cli("demo", "--data-dir", "/nonexistent", "--out", tmp_path / "out")
    assert time.perf_counter() - t0 < 10
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr
    assert "dataset-fashion-mnist" in lines[0] and "--data-dir" in lines[0] and "/nonexistent" in lines[0]
    assert not (tmp_path / "out").exists()  # checked before any work


def test_dataset_check_names_the_parameter(tmp_path):
    check_dataset("fashion-mnist")  # the installed package
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(RobustscaleError, match=r"^data_dir: no Fashion-MNIST in .*\(missing "
                                               r"train-labels-idx1-ubyte"):
        check_dataset("fashion-mnist", tmp_path)
    with pytest.raises(RobustscaleError, match="no CIFAR-10"):
        check_dataset("cifar10", tmp_path)
    with pytest.raises(RobustscaleError, match="preset: expected one of fashion-mnist, cifar10"):
        run_demo(tmp_path / "out", preset="mnist")


def test_nothing_below_one_parameter_is_an_answer():
    # `demo --quick` once printed "N* = 9.5e-18 parameters": an estimate below one is not determined
    b = bounded(9.5e-18, seen=77562)
    assert b["value"] is None and b["open_below"] and b["not_determined_below"] == 77562
    assert describe_bounded(b, count, "params") == "not determined below 77.6k params"
    # "N* = 275,226 [2.23e-05, 510,078]": the lower end is open, the upper end is what the data say
    b = bounded(275_226, 2.23e-5, 510_078, level=0.9)
    assert (b["value"], b["lo"], b["hi"], b["not_determined_below"]) == (275_226, None, 510_078, 510_078)
    assert describe_bounded(b, count, "params") == "275k params (90% interval: not determined below 510k)"
    b = bounded(275_226, 12_003, float("inf"), level=0.9)
    assert not b["open_below"] and b["hi"] is None
    assert describe_bounded(b, count, "params") == "275k params [90% interval 12k to not determined above]"
    # suggest's upper side: N* above F/c parameters means fewer than one sample (the `ceiling`)
    b = bounded(275_226, 12_003, 2e6, level=0.9, ceiling=1e6)
    assert not b["open_below"] and (b["lo"], b["hi"]) == (12_003, None)
    assert describe_bounded(b, count, "params") == "275k params [90% interval 12k to not determined above]"
    # one owner: suggest's table says it with the same words (its records are `bounded_fields`')
    from robustscale.commands.suggest import interval_text
    from robustscale.laws.planning import bounded_fields

    iv = bounded_fields("n_star", 9.5e-18, 1e-20, 510_078, seen=77562, level=0.9)
    assert iv == {"n_star": None, "n_star_lo": None, "n_star_hi": 510_078,
                  "n_star_not_determined_below": 510_078}
    assert interval_text(iv, 0.9) == "not determined below 5.1e5 parameters"


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG and data[12:16] == b"IHDR", path
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_quick_demo_two_rounds_against_its_files(quick_demo):
    out, r = quick_demo
    s = r.json
    assert s == json.loads((out / "summary.json").read_text())
    grid = load_sweep(out / "sweep.yaml")
    second = load_sweep(out / "design" / "round-2" / "sweep.yaml")
    suggestion = json.loads((out / "design" / "round-1" / "suggest.json").read_text())
    # round 2 trains exactly what suggest chose, within its budget, beside the 6-run grid
    assert sorted((x.model, x.samples) for x in second.runs) == sorted(
        (x["model"], round(x["samples"])) for x in suggestion["runs"])
    assert 0 < suggestion["spent"] <= grid.design.budget_per_round
    assert len(grid.runs) == 6 and s["runs"] == 6 + len(second.runs)
    assert [len(x["runs"]) for x in s["design"]["rounds"]] == [6, len(second.runs)]

    # the observations are the run folders' evaluations, both rounds
    obs = pd.read_csv(out / "observations.csv")
    again = observations(grid.out)
    assert len(obs) == len(again) and sorted(obs["run"].unique()) == sorted(again["run"].unique())
    assert {x.name for x in second.runs} <= set(obs["run"])
    assert {77562, 174778} <= set(obs["params"])  # WRN-10-1 and WRN-16-1 on 28x28x1

    # every round's N* at the target is that round's law.json planned here again (below one: not determined)
    target = grid.design.target_flops
    assert s["design"]["target_flops"] == target == s["compute_optimal"]["flops"]
    for k, rnd in enumerate(s["design"]["rounds"], 1):
        law = load_law(out / "design" / f"round-{k}" / "law.json")
        n_star = law.plan(target, 0.0)["n_star"]
        # >= 1 sample too
        expected = bounded(n_star if n_star <= target / law.flops_per_param_sample_ else None)
        if expected["value"] is None:
            assert rnd["n_star"]["value"] is None and rnd["n_star"]["not_determined_below"] >= 1, (k, rnd)
        else:
            assert rnd["n_star"]["value"] == pytest.approx(expected["value"]), (k, rnd)
    last = load_law(out / "design" / "round-2" / "law.json")
    assert s["approach2"]["params"] == pytest.approx(last.params_)
    plan = last.plan(target, 0.0)
    for key in ("n_star", "d_star"):
        value = bounded(plan[key])["value"]
        assert s["compute_optimal"][key] == (pytest.approx(value) if value else None), key

    # the honesty check recomputed from result.json: TRADES beats standard training on PGD accuracy at
    # every size
    final = {(x.model, x.samples_target, x.mode): json.loads((grid.out / x.run / "result.json").read_text())
             ["final"]["accuracy"] for x in list_runs(grid.out)}
    assert [(h["model"], h["samples"]) for h in s["honesty"]] == [("wrn-10-1", 256), ("wrn-16-1", 256)]
    for h in s["honesty"]:
        assert h["trades_accuracy"] == final[(h["model"], h["samples"], "trades")]
        assert h["standard_accuracy"] == final[(h["model"], h["samples"], "standard")]
    assert s["honest"], s["honesty"]  # even this small
    assert s["honest"] == all(h["trades_accuracy"] > h["standard_accuracy"]
                              for h in s["honesty"]), s["honesty"]
    assert (s["eval_images"] == json.loads((grid.runs[0].out / "config.json").read_text())["eval_images"]
            == 128)

    # nothing below one parameter or sample, anywhere in the summary
    def counts(node, key=""):
        if isinstance(node, dict):
            for k, v in node.items():
                yield from counts(v, k)
        elif isinstance(node, list):
            for v in node:
                yield from counts(v, key)
        elif key in COUNT_KEYS and node is not None:
            yield key, node
    small = [(k, v) for k, v in counts(s) if v < 1]
    assert small == []
    text = (out / "summary.txt").read_text()
    assert not re.search(r"\d\.?\d*e-\d+ (params|parameters|samples)", text), text
    assert "after round 1" in text and "after round 2" in text and "total wall time" in text
    assert set(s["phases"]) == {"plan", "round 1", "round 2", "collect", "report"}
    assert s["wall_s"] >= sum(s["phases"].values()) - 1


def test_quick_demo_report_draws_both_rounds(quick_demo):
    out, _ = quick_demo
    report = json.loads((out / "report" / "report.json").read_text())
    assert set(report["figures"]) | set(report["failed_figures"]) == set(FIGURES)
    assert not set(report["figures"]) & set(report["failed_figures"])
    # drawn from the runs whatever the fit says; a law fitted to runs this short may have no forecast to draw
    assert {"training_curves", "isoflop", "law_fit"} <= set(report["figures"]), report["failed_figures"]
    for name in FIGURES:
        path = out / "report" / f"{name}.png"
        if name in report["figures"]:
            width, height = _png_size(path)
            assert path.stat().st_size > 10_000 and width >= 400 and height >= 200, (name, width, height)
        else:
            assert not path.exists() and report["failed_figures"][name]
    assert [d["round"] for d in report["design"]] == [1, 2]
    page = (out / "report" / "index.html").read_text()
    assert "Designed rounds" in page
    assert all(f"<td>{d['round']}</td>" in page for d in report["design"])


def test_every_demo_file_is_readable_by_others(quick_demo):
    out, _ = quick_demo
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 30
    modes = {str(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode) for p in files}
    assert {k: oct(m) for k, m in modes.items() if m != 0o644} == {}


def test_rerun_skips_finished_runs(quick_demo, cli):
    out, r = quick_demo
    laws = {p: p.stat().st_mtime_ns for p in (out / "design").rglob("*.json")}
    again = cli("demo", "--quick", "--out", out, timeout=600)
    assert again.returncode == 0, again
    assert again.stderr.count("skipped") == r.json["runs"] and "total wall time" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in laws} == laws  # no round refitted or re-suggested
