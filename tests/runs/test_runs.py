"""The run store: `runs list` states and numbers, `runs collect` -> the observations table."""

from __future__ import annotations

import json
import os
import time

import pandas as pd
import pytest

from robustscale.errors import RobustscaleError
from robustscale.laws import load_observations
from robustscale.runs import collect, list_runs, observations
from runstore import make_run


def test_list_states_and_numbers(tmp_path, cli):
    root = tmp_path / "runs"
    make_run(root, "wrn-10-1", 78_000, 4000)
    running = make_run(root, "wrn-16-1", 175_000, 4000, finished=False)
    stopped = make_run(root, "wrn-22-1", 272_000, 4000, finished=False)
    old = time.time() - 3600
    os.utime(stopped / "metrics.jsonl", (old, old))
    pending = make_run(root, "wrn-10-2", 300_000, 4000, finished=False)
    (pending / "metrics.jsonl").unlink()
    make_run(root, "wrn-10-1", 78_000, 8000, synthetic="/data/edm-20", fid=1.82)
    runs = {r.run: r for r in list_runs(root)}
    assert runs["wrn-10-1_real_4000"].state == "finished"
    assert runs[running.name].state == "running"
    assert runs[stopped.name].state == "stopped"
    assert runs[pending.name].state == "pending" and runs[pending.name].best_accuracy is None
    r = runs["wrn-10-1_real_4000"]
    metrics = [json.loads(x) for x in (root / r.run / "metrics.jsonl").read_text().splitlines()]
    assert (r.samples_done, r.samples_target, r.params) == (4000, 4000, 78_000)
    assert r.best_accuracy == max(m["accuracy"] for m in metrics)
    assert runs["wrn-10-1_edm-20_8000"].source == "edm-20" and runs["wrn-10-1_edm-20_8000"].fid == 1.82
    out = cli("runs", "list", root, "--json")
    assert out.returncode == 0, out
    listed = {x["run"]: x for x in json.loads(out.stdout)["runs"]}
    assert listed[stopped.name]["state"] == "stopped" and listed["wrn-10-1_real_4000"]["samples_done"] == 4000
    table = cli("runs", "list", root)
    assert ("wrn-22-1_real_4000" in table.stdout and "4,000/4,000" in table.stdout
            and "stopped" in table.stdout)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_collect_one_row_per_evaluation(study_runs, tmp_path, suffix):
    # a run killed mid-write leaves a torn last line: it is ignored, not fatal
    torn = study_runs / "wrn-10-1_real_20000" / "metrics.jsonl"
    torn.write_text(torn.read_text() + '{"step": 50, "sampl')
    out = tmp_path / f"obs{suffix}"
    obs = collect(study_runs, out)
    assert len(obs) == 9 * 4  # 9 TRADES runs x 4 evaluations; standard baselines left out
    back = load_observations(out)
    assert list(back.columns) == ["run", "source", "fid", "params", "samples", "flops", "loss", "accuracy",
                                  "clean_accuracy", "train_fraction", "eval_split", "dataset", "norm", "eps"]
    assert set(back["norm"]) == {"linf"} and set(back["dataset"]) == {"fashion-mnist"}
    row = back[back["run"] == "wrn-16-1_real_40000"].sort_values("samples").iloc[1]
    assert (row["params"], row["samples"], row["flops"]) == (175_000, 20_000, 7822 * 175_000 * 20_000)
    assert row["train_fraction"] == 0.5 and row["source"] == "real" and row["fid"] == 0.0
    assert set(back["eval_split"]) == {"heldout"}  # config.json without eval_split: the earlier trainer's
    with_std = collect(study_runs, tmp_path / "all.csv", include_standard=True)
    assert len(with_std) == 12 * 4


def test_collect_cli_and_errors(study_runs, tmp_path, cli):
    r = cli("runs", "collect", study_runs, "--out", tmp_path / "obs.parquet", "--json", no_torch=True)
    assert r.returncode == 0, r  # run folders are read without torch (robustscale.rundir)
    assert r.json == {"out": str(tmp_path / "obs.parquet"), "rows": 36, "runs": 9, "sources": ["real"]}
    assert len(pd.read_parquet(tmp_path / "obs.parquet")) == 36
    bad = cli("runs", "collect", study_runs, "--out", tmp_path / "obs.xlsx")
    assert bad.returncode == 2 and "--out" in bad.stderr and not (tmp_path / "obs.xlsx").exists()
    with pytest.raises(RobustscaleError, match="no such runs directory"):
        list_runs(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RobustscaleError, match="nothing to collect"):
        collect(tmp_path / "empty", tmp_path / "x.csv")


def test_collect_refuses_a_synthetic_run_of_unknown_fid(study_runs, tmp_path, cli):
    """A synthetic run whose config.json has fid null is not real data: no row with fid 0 is written."""
    make_run(study_runs, "wrn-10-1", 78_000, 8000, synthetic="/data/edm-20", fid=None)
    assert {r.run: r.fid for r in list_runs(study_runs)}["wrn-10-1_edm-20_8000"] is None
    r = cli("runs", "collect", study_runs, "--out", tmp_path / "obs.csv")
    assert r.returncode == 2 and not (tmp_path / "obs.csv").exists()
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: ") and "wrn-10-1_edm-20_8000/config.json: fid: unknown" in line, line


def test_runs_of_different_threat_models_are_not_mixed(study_runs):
    """An L2 run's loss is another quantity than an L-inf run's: one table (and law) per threat model."""
    config_file = study_runs / "wrn-10-1_real_20000" / "config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "norm": "l2", "eps": 0.5}))
    with pytest.raises(RobustscaleError, match="2 different datasets / threat models .*mnist l2 eps=0.5"):
        observations(study_runs)
