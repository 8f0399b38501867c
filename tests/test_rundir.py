"""The run folder: metrics truncated to a resumed run's checkpoint, old key spellings read, states."""

from __future__ import annotations

import json
import os
import time

import pytest

from robustscale.errors import RobustscaleError
from robustscale.rundir import RunDir, find_runs


def _row(step: int, **old) -> dict:
    return {"step": step, "samples": 32 * step, "loss": 2.0 - step / 100, "accuracy": step / 100, **old}


def test_truncate_keeps_each_step_once_up_to_the_checkpoint(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    for step in (2, 4, 6, 4, 8):  # 4 twice: a crash between a metrics write and its checkpoint, replayed
        run.append_metrics(_row(step))
    with open(run.metrics_path, "a") as f:
        f.write('{"step": 10, "sampl')  # torn by a kill mid-write
    run.truncate_metrics(6)
    assert [m["step"] for m in run.read_metrics()] == [2, 4, 6]
    assert run.metrics_path.read_text().endswith("\n")
    run.truncate_metrics(0)
    assert run.read_metrics() == []
    run.clear_metrics()
    run.truncate_metrics(3)  # no file: nothing to do, nothing created
    assert not run.metrics_path.exists()


def test_old_key_spellings_are_read_as_todays(tmp_path):
    run = RunDir(tmp_path)
    old = {"step": 1, "samples": 32, "pgd_acc": 0.25, "clean_acc": 0.5}
    run.metrics_path.write_text(json.dumps(old) + "\n")
    run.result_path.write_text(json.dumps({"final": {"pgd_acc": 0.25, "clean_acc": 0.5},
                                           "best": {"step": 1, "pgd_acc": 0.25}}))
    (m,) = run.read_metrics()
    assert (m["accuracy"], m["clean_accuracy"]) == (0.25, 0.5) and "pgd_acc" not in m
    result = run.read_result()
    assert result["final"] == {"accuracy": 0.25, "clean_accuracy": 0.5} and result["best"]["accuracy"] == 0.25


def test_states_and_errors(tmp_path):
    root = tmp_path / "runs"
    runs = {}
    for name in ("done", "pending", "running", "stopped"):
        runs[name] = RunDir(root / name)
        runs[name].write_config({"model": "wrn-10-1"})
    runs["done"].write_result({"final": {}})
    for name in ("running", "stopped"):
        runs[name].append_metrics(_row(1))
    old = time.time() - 3600
    os.utime(runs["stopped"].metrics_path, (old, old))
    (root / ".submitit" / "1").mkdir(parents=True)
    (root / ".submitit" / "1" / "config.json").write_text("{}")  # not a run
    assert [(r.name, r.state()) for r in find_runs(root)] == [
        ("done", "finished"), ("pending", "pending"), ("running", "running"), ("stopped", "stopped")]
    assert [r.name for r in find_runs(root / "done")] == ["done"]  # a run folder itself
    with pytest.raises(RobustscaleError, match="no such runs directory"):
        find_runs(tmp_path / "nope")
    runs["pending"].config_path.write_text("{")
    with pytest.raises(RobustscaleError, match=r"pending/config.json: not valid JSON"):
        runs["pending"].read_config()
    with pytest.raises(RobustscaleError, match=r"result.json: the run has not finished"):
        runs["running"].read_result()
