"""`robustscale demo`: a missing dataset stops at once; `--quick` runs a real (reduced) study end to
end -> summary, observations, one law, the report, every file readable by others (umask 022)."""

from __future__ import annotations

import json
import stat
import time

import pandas as pd
import pytest
from markupsafe import escape

from robustscale.data.datasets import check_dataset
from robustscale.demo import run_demo
from robustscale.errors import RobustscaleError
from robustscale.report import FIGURES


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
    with pytest.raises(RobustscaleError, match=r"^data_dir: no Fashion-MNIST in .*\(missing train-labels-idx1-ubyte"):
        check_dataset("fashion-mnist", tmp_path)
    with pytest.raises(RobustscaleError, match="no CIFAR-10"):
        check_dataset("cifar10", tmp_path)
    with pytest.raises(RobustscaleError, match="preset: expected one of fashion-mnist, cifar10"):
        run_demo(tmp_path / "out", preset="mnist")


def test_quick_demo_end_to_end(quick_demo):
    out, r = quick_demo
    s = r.json
    assert s == json.loads((out / "summary.json").read_text())
    assert s["runs"] == 6  # 2 sizes x 2 budgets of TRADES + a standard baseline per size
    obs = pd.read_csv(out / "observations.csv")
    assert obs["run"].nunique() == 4 and (obs["samples"] > 0).all() and obs["loss"].between(0, 10).all()
    assert set(obs["params"]) == {77562, 174778}  # WRN-10-1 and WRN-16-1 on 28x28x1
    report = json.loads((out / "report" / "report.json").read_text())
    for name in ("training_curves", "isoflop", "law_fit"):  # drawn from the runs whatever the fit says
        assert (out / "report" / f"{name}.png").stat().st_size > 10_000
    for name in FIGURES:  # a law fitted to runs this short may have no finite optimum to forecast
        assert (out / "report" / f"{name}.png").is_file() or report["failed_figures"][name]
    assert "index.html" in s["report"] and (out / "report" / "index.html").is_file()
    # one law, one story: the summary shows exactly the report's fit, plan and paragraph
    law = json.loads((out / "report" / "law.json").read_text())
    assert s["approach2"]["params"] == report["approach2"]["params"] == law["params"]
    assert s["approach2"]["identified"] == report["approach2"]["identified"]
    assert {k: v for k, v in s["compute_optimal"].items() if k != "largest_flops"} == report["plan"]
    assert s["story"] == report["story"] and str(escape(s["story"])) in (out / "report" / "index.html").read_text()
    assert s["compute_optimal"]["flops"] == pytest.approx(10 * obs["flops"].max())
    assert s["approach1"]["n_star"] > 0
    # the honesty check: TRADES beats standard training on PGD accuracy at every size, even this small
    assert [(h["model"], h["samples"]) for h in s["honesty"]] == [("wrn-10-1", 256), ("wrn-16-1", 256)]
    assert s["honest"], s["honesty"]
    assert all(h["trades_accuracy"] > h["standard_accuracy"] for h in s["honesty"]), s["honesty"]
    assert s["eval_images"] == 128
    assert set(s["phases"]) == {"plan", "train", "collect", "fit+report"}
    assert s["wall_s"] >= sum(s["phases"].values()) - 1
    text = (out / "summary.txt").read_text()
    assert "compute-optimal at 10x the largest budget" in text and "total wall time" in text


def test_every_demo_file_is_readable_by_others(quick_demo):
    out, _ = quick_demo
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 30
    modes = {str(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode) for p in files}
    assert {k: oct(m) for k, m in modes.items() if m != 0o644} == {}


def test_rerun_skips_finished_runs(quick_demo, cli):
    out, _ = quick_demo
    again = cli("demo", "--quick", "--out", out, timeout=600)
    assert again.returncode == 0, again
    assert again.stderr.count("skipped") == 6 and "total wall time" in again.stdout
