"""Sweeps: study-file validation, dry run, kill + resume without redoing runs, failures, real Slurm."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from robustscale.errors import RobustscaleError
from robustscale.sweep import load_study, plan, run_sweep

# Tiny TRADES runs on real Fashion-MNIST: seconds each on 2 cores.
TINY_TRAIN = {"batch_size": 32, "lr": 0.05, "attack_steps": 1, "step_size": 0.1, "ema_decay": 0.5}
TINY_EVAL = {"eval_every": 128, "eval_images": 32, "eval_steps": 2}


def write_study(tmp_path: Path, name: str = "study.yaml", **over) -> Path:
    spec = {"dataset": "fashion-mnist", "out": "runs", "models": ["wrn-10-1"], "samples": [128],
            "sources": ["real"], "train": TINY_TRAIN, "evaluation": TINY_EVAL, **over}
    path = tmp_path / name
    if path.suffix == ".toml":
        lines = []
        for k, v in spec.items():
            if isinstance(v, dict):
                continue
            lines.append(f"{k} = {json.dumps(v)}")
        for k, v in spec.items():
            if isinstance(v, dict):
                lines.append(f"[{k}]")
                lines += [f"{kk} = {json.dumps(vv)}" for kk, vv in v.items()]
        path.write_text("\n".join(lines) + "\n")
    else:
        path.write_text(yaml.safe_dump(spec))
    return path


def cli(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "robustscale", *map(str, args)], capture_output=True, text=True,
                          env=env, **kw)


@pytest.mark.parametrize("over, field", [
    ({"models": ["wrn-10-1", "resnet-50"]}, "models[1]"),
    ({"models": ["wrn-11-1"]}, "models[0]"),
    ({"samples": [128, -5]}, "samples[1]"),
    ({"samples": [0]}, "samples[0]"),
    ({"sources": ["real", {"name": "edm", "path": "no/such/store", "fid": 2.5}]}, "sources[1].path"),
    ({"sources": [{"name": "edm", "fid": 2.5}]}, "sources[0].path"),
    ({"train": {"lr": -1}}, "lr"),
    ({"train": {"model": "wrn-16-1"}}, "train.model"),
    ({"evaluation": {"attack_steps": 3}}, "evaluation.attack_steps"),
    ({"slurm": {"gpus": 1}}, "slurm.gpus"),
    ({"modelz": ["wrn-10-1"]}, "modelz"),
])
def test_validation_names_field(tmp_path, over, field):
    path = write_study(tmp_path, **over)
    with pytest.raises(RobustscaleError, match=field.replace("[", r"\[").replace("]", r"\]")) as e:
        load_study(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_cli_invalid_study_exits_2_before_launching(tmp_path):
    path = write_study(tmp_path, models=["wrn-10-1"], samples=[128, -5])
    r = cli("sweep", path)
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and "samples[1]" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_grid_and_dry_run_flops(tmp_path):
    path = write_study(tmp_path, "study.toml", models=["wrn-10-1", "wrn-16-1"], samples=["1k", 2000],
                       baselines=[2000])
    study = load_study(path)
    assert [r.name for r in study.runs] == [
        "wrn-10-1_real_1k", "wrn-10-1_real_2k", "wrn-10-1_real_2k_standard",
        "wrn-16-1_real_1k", "wrn-16-1_real_2k", "wrn-16-1_real_2k_standard"]
    assert study.runs[0].config["batch_size"] == 32 and study.runs[0].config["eval_steps"] == 2
    assert study.runs[2].config["mode"] == "standard"
    r = cli("sweep", path, "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    grid = json.loads(r.stdout)
    flops = {x["run"]: x["flops"] for x in grid["runs"]}
    # TRADES costs 27 forward passes per sample (App. B), standard training 3; bigger model, more FLOPs.
    assert flops["wrn-10-1_real_2k"] == pytest.approx(2 * flops["wrn-10-1_real_1k"])
    assert flops["wrn-10-1_real_2k"] == pytest.approx(9 * flops["wrn-10-1_real_2k_standard"])
    assert flops["wrn-16-1_real_1k"] > 2 * flops["wrn-10-1_real_1k"]
    assert grid["total_flops"] == pytest.approx(sum(flops.values()))
    assert not (tmp_path / "runs").exists()
    text = cli("sweep", path, "--dry-run")
    assert "wrn-16-1_real_2k_standard" in text.stdout and "total FLOPs" in text.stdout


def test_sweep_killed_then_resumed_without_redoing_runs(tmp_path):
    """2x2 grid: SIGKILL the sweep once the first run finished, rerun, nothing finished is redone."""
    path = write_study(tmp_path, models=["wrn-10-1", "wrn-16-1"], samples=[128, 256])
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "robustscale", "sweep", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not list(runs.glob("*/result.json")):
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in runs.glob("*/result.json")}
    assert 1 <= len(finished) < 4
    r = cli("sweep", path, "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert sorted(result["skipped"]) == sorted(finished)
    assert len(result["finished"]) == 4 - len(finished) and result["failed"] == {}
    for name, mtime in finished.items():
        assert (runs / name / "result.json").stat().st_mtime_ns == mtime  # not rewritten
    assert len(list(runs.glob("*/result.json"))) == 4
    for run in runs.iterdir():
        if run.name.startswith("."):
            continue
        steps = [json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines()]
        assert steps == sorted(set(steps))  # a resumed run has no duplicated evaluations
    again = json.loads(cli("sweep", path, "--json").stdout)
    assert len(again["skipped"]) == 4 and again["finished"] == []


def test_failed_run_does_not_stop_others(tmp_path):
    broken = tmp_path / "broken-store"
    broken.mkdir()  # exists, so validation passes, but holds no shards: training it fails
    path = write_study(tmp_path, sources=[{"name": "broken", "path": "broken-store", "fid": 3.0}, "real"])
    r = cli("sweep", path)
    assert r.returncode == 1
    assert "FAILED wrn-10-1_broken_128" in r.stdout
    assert (tmp_path / "runs" / "wrn-10-1_real_128" / "result.json").is_file()


def test_slurm_runs_a_job_and_resumes_after_requeue(tmp_path, slurm_cluster, monkeypatch):
    """One run through real Slurm (sbatch via submitit); requeued mid-run, it resumes from its checkpoint."""
    monkeypatch.setenv("SLURM_CONF", slurm_cluster["SLURM_CONF"])
    path = write_study(tmp_path, samples=[1024], slurm={"cpus_per_task": 1, "mem_gb": 1, "timeout_min": 10},
                       train={**TINY_TRAIN, "checkpoint_every": 2}, evaluation={**TINY_EVAL, "eval_every": 512})
    study = load_study(path)
    run_dir = study.runs[0].out
    assert plan(study)["runs"][0]["finished"] is False
    events = []
    box = {}
    sweeper = threading.Thread(target=lambda: box.setdefault("result", run_sweep(
        study, executor="slurm", on_run=lambda run, state: events.append(state))))
    sweeper.start()
    deadline = time.time() + 240
    while time.time() < deadline and not (run_dir / "checkpoint.pt").exists():
        time.sleep(0.2)
    assert (run_dir / "checkpoint.pt").exists(), "the Slurm job never started training"
    job_id = next(e.split()[1] for e in events if e.startswith("submitted"))
    requeue = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True, env=slurm_cluster)
    # Slurm holds a requeued job back (BeginTime ~2 min ahead); let it start now once it is pending again
    for _ in range(100):
        state = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True,
                               env=slurm_cluster).stdout.strip()
        if state == "PENDING":
            subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], env=slurm_cluster,
                           capture_output=True)
            break
        time.sleep(0.2)
    sweeper.join(300)
    result = box["result"]
    assert result.finished == [study.runs[0].name] and result.failed == {}
    assert (run_dir / "result.json").is_file()
    steps = [json.loads(ln)["step"] for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and json.loads((run_dir / "result.json").read_text())["samples"] == 1024
    assert requeue.returncode == 0, requeue.stderr
    logs = "".join(p.read_text() for p in (study.out / ".submitit").rglob("*_log.err"))
    assert f"resuming {run_dir} from its checkpoint" in logs  # the requeued job picked up the checkpoint
    rerun = run_sweep(study, executor="slurm")
    assert rerun.skipped == [study.runs[0].name] and rerun.finished == []
