"""`robustscale demo --quick`: a real (reduced) study end to end -> summary, observations, laws, report."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd

from robustscale.report import FIGURES


def test_quick_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    r = subprocess.run([sys.executable, "-m", "robustscale", "demo", "--quick", "--out", out, "--json"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads(r.stdout)
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
    # runs this short may give Approach 2 no finite optimum; Approach 1's regressions always exist
    assert {"alpha", "beta", "a", "b"} <= set(s["approach2"]) and s["compute_optimal"]["approach1_n_star"] > 0
    assert s["compute_optimal"]["flops"] == 10 * obs["flops"].max()
    assert [(h["model"], h["samples"]) for h in s["honesty"]] == [("wrn-10-1", 256), ("wrn-16-1", 256)]
    assert set(s["phases"]) == {"plan", "train", "collect", "fit", "report"}
    assert s["wall_s"] >= sum(s["phases"].values()) - 1
    text = (out / "summary.txt").read_text()
    assert "compute-optimal at 10x the largest budget" in text and "total wall time" in text
    # a rerun skips every finished run: it only refits and redraws
    again = subprocess.run([sys.executable, "-m", "robustscale", "demo", "--quick", "--out", out],
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stderr.count("skipped") == 6 and "total wall time" in again.stdout
