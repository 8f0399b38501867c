"""Sweeps: sweep-file validation, dry run, kill + resume without redoing runs, failures, real Slurm
(DDP across tasks, preemption, cancellation, jobs nobody can report on)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from robustscale.errors import RobustscaleError
from robustscale.sweep import load_sweep, plan, run_sweep
from robustscale.sweep.executors import executor_parameters

# Tiny TRADES runs on real Fashion-MNIST: seconds each on 2 cores.
TINY_TRAIN = {"batch_size": 32, "lr": 0.05, "attack_steps": 1, "step_size": 0.1, "ema_decay": 0.5}
TINY_EVAL = {"eval_every": 128, "eval_images": 32, "eval_steps": 2}


def write_sweep(tmp_path: Path, name: str = "sweep.yaml", **over) -> Path:
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
    path = write_sweep(tmp_path, **over)
    with pytest.raises(RobustscaleError, match=field.replace("[", r"\[").replace("]", r"\]")) as e:
        load_sweep(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_cli_invalid_sweep_exits_2_before_launching(tmp_path, cli):
    path = write_sweep(tmp_path, models=["wrn-10-1"], samples=[128, -5])
    r = cli("sweep", path)
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and "samples[1]" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_missing_dataset_is_one_error_before_any_run(tmp_path, cli):
    """A sweep whose data folder is empty stops at once with one line, not one failed run per grid point."""
    (tmp_path / "empty").mkdir()
    path = write_sweep(tmp_path, samples=[128, 256], data_dir=str(tmp_path / "empty"))
    r = cli("sweep", path)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert r.returncode == 2 and len(errors) == 1, r.stderr
    assert "dataset-fashion-mnist" in errors[0] and "Traceback" not in r.stderr and "[failed]" not in r.stderr
    assert not any((tmp_path / "runs").glob("*/config.json"))


def test_bad_executor_names_the_parameter_and_the_flag(tmp_path, cli):
    sweep = load_sweep(write_sweep(tmp_path))
    with pytest.raises(RobustscaleError, match=r"^executor: expected local or slurm, got 'pbs'"):
        run_sweep(sweep, executor="pbs")
    with pytest.raises(RobustscaleError, match=r"^max_parallel: expected an integer >= 1"):
        run_sweep(sweep, max_parallel=0)
    r = cli("sweep", tmp_path / "sweep.yaml", "--executor", "pbs")
    assert r.returncode == 2 and r.stderr.startswith("error: --executor: expected local or slurm"), r.stderr


def test_grid_and_dry_run_flops(tmp_path, cli):
    path = write_sweep(tmp_path, "sweep.toml", models=["wrn-10-1", "wrn-16-1"], samples=["1k", 2000],
                       baselines=[2000])
    sweep = load_sweep(path)
    assert [r.name for r in sweep.runs] == [
        "wrn-10-1_real_1k", "wrn-10-1_real_2k", "wrn-10-1_real_2k_standard",
        "wrn-16-1_real_1k", "wrn-16-1_real_2k", "wrn-16-1_real_2k_standard"]
    assert sweep.runs[0].config.batch_size == 32 and sweep.runs[0].config.eval_steps == 2
    assert sweep.runs[2].config.mode == "standard"
    r = cli("sweep", path, "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    grid = r.json
    flops = {x["run"]: x["flops"] for x in grid["runs"]}
    # TRADES costs 27 forward passes per sample (App. B), standard training 3; bigger model, more FLOPs.
    # whole steps of 32: 1000 -> 1024 and 2000 -> 2016 samples trained
    assert flops["wrn-10-1_real_2k"] == pytest.approx(2016 / 1024 * flops["wrn-10-1_real_1k"])
    assert flops["wrn-10-1_real_2k"] == pytest.approx(9 * flops["wrn-10-1_real_2k_standard"])
    assert flops["wrn-16-1_real_1k"] > 2 * flops["wrn-10-1_real_1k"]
    assert grid["total_flops"] == pytest.approx(sum(flops.values()))
    assert not (tmp_path / "runs").exists()
    text = cli("sweep", path, "--dry-run")
    assert "wrn-16-1_real_2k_standard" in text.stdout and "total FLOPs" in text.stdout


def test_sweep_killed_then_resumed_without_redoing_runs(tmp_path, cli):
    """3 runs: SIGKILL the sweep once the first run finished, rerun, nothing finished is redone."""
    path = write_sweep(tmp_path, samples=[64, 128], baselines=[64])
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
    assert 1 <= len(finished) < 3
    r = cli("sweep", path, "--json")
    assert r.returncode == 0, r.stderr
    result = r.json
    assert sorted(result["skipped"]) == sorted(finished)
    assert len(result["finished"]) == 3 - len(finished) and result["failed"] == {}
    for name, mtime in finished.items():
        assert (runs / name / "result.json").stat().st_mtime_ns == mtime  # not rewritten
    assert len(list(runs.glob("*/result.json"))) == 3
    for run in runs.iterdir():
        if run.name.startswith("."):
            continue
        steps = [json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines()]
        assert steps == sorted(set(steps))  # a resumed run has no duplicated evaluations
    planned = {r["run"]: r["flops"] for r in plan(load_sweep(path))["runs"]}
    for name, flops in planned.items():  # the dry run counts what the trainer records, TRADES and standard
        assert json.loads((runs / name / "result.json").read_text())["flops"] == flops
    again = cli("sweep", path, "--json").json
    assert len(again["skipped"]) == 3 and again["finished"] == []


def test_failed_run_does_not_stop_others(tmp_path, cli):
    from robustscale.data.convert import convert

    # a valid store (the sweep loads) of 2x2 images: training on Fashion-MNIST's 28x28 fails
    np.savez(tmp_path / "tiny.npz", image=np.zeros((8, 2, 2, 1), np.uint8), label=np.arange(8) % 10)
    convert(tmp_path / "tiny.npz", tmp_path / "broken-store", fid=3.0)
    path = write_sweep(tmp_path, samples=[64], sources=[{"name": "broken", "path": "broken-store", "fid": 3.0}, "real"])
    r = cli("sweep", path)
    assert r.returncode == 1
    assert "FAILED wrn-10-1_broken_64" in r.stdout
    assert (tmp_path / "runs" / "wrn-10-1_real_64" / "result.json").is_file()


def test_slurm_resources_one_task_per_gpu_and_batch_split(tmp_path):
    assert executor_parameters({"timeout_min": 5, "gpus_per_node": 4}, 1)["tasks_per_node"] == 4
    assert executor_parameters({"timeout_min": 5, "gpus_per_node": 4, "tasks_per_node": 1}, 1)["tasks_per_node"] == 1
    assert executor_parameters({"timeout_min": 5, "gpus_per_node": 0}, 1)["tasks_per_node"] == 1
    path = write_sweep(tmp_path, models=["wrn-10-1", {"name": "wrn-16-1", "slurm": {"nodes": 2, "gpus_per_node": 8}}])
    grid = plan(load_sweep(path))
    assert [r["world_size"] for r in grid["runs"]] == [1, 16]
    path = write_sweep(tmp_path, slurm={"tasks_per_node": 3})  # batch 32 does not split over 3 processes
    with pytest.raises(RobustscaleError, match=r"train.batch_size: 32 does not split into 3 Slurm tasks"):
        load_sweep(path)


def test_dry_run_over_a_million_image_store_is_fast(tmp_path, cli):
    """Loading a sweep opens its stores without hashing them: 1M (tiny) images plan in well under 2 s."""
    from robustscale.data.convert import convert

    n = 1_000_000
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "million.npz", image=rng.integers(0, 256, (n, 1, 1, 1), dtype=np.uint8),
             label=rng.integers(0, 10, n))
    convert(tmp_path / "million.npz", tmp_path / "store", fid=3.5, shard_size=100_000)
    (tmp_path / "million.npz").unlink()
    path = write_sweep(tmp_path, sources=["real", {"name": "million", "path": "store"}])
    plan(load_sweep(path))  # warm: torch and the models' FLOPs counter imported once
    t0 = time.perf_counter()
    grid = plan(load_sweep(path))
    elapsed = time.perf_counter() - t0
    assert elapsed < 2.0, elapsed
    assert [r["fid"] for r in grid["runs"]] == [0.0, 3.5]  # the store's FID, read from its manifest
    r = cli("sweep", path, "--dry-run", "--json")
    assert r.returncode == 0 and len(r.json["runs"]) == 2, r.stderr
    shard = tmp_path / "store" / "images-00003.npy"
    raw = bytearray(shard.read_bytes())
    raw[-1] ^= 0xFF  # same size: only hashing on request can tell
    shard.write_bytes(bytes(raw))
    assert cli("sweep", path, "--dry-run", "--json").returncode == 0
    r = cli("sweep", path, "--dry-run", "--verify")
    assert r.returncode == 2 and "images-00003.npy: checksum mismatch" in r.stderr, r.stderr


def _in_thread(fn):
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", fn()), daemon=True)  # a failed test must not hang
    thread.start()
    return thread, box


def _slurm_sweep(tmp_path, monkeypatch, slurm_cluster, **over):
    monkeypatch.setenv("SLURM_CONF", slurm_cluster["SLURM_CONF"])
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # sbatch passes the environment on: one thread per task
    return load_sweep(write_sweep(tmp_path, **over))


def test_slurm_ddp_two_tasks_equal_torchrun_bitwise_after_preemption(tmp_path, slurm_cluster, monkeypatch):
    """tasks_per_node 2 is one DDP job of world size 2; preempted by the `high` partition mid-run, it is
    requeued, resumes both ranks from the checkpoint and ends with torchrun's weights, bit for bit."""
    samples = 6400  # 200 steps: long enough that the preemption (~2 s after the sbatch) lands mid-run
    train = {"batch_size": 32, "lr": 0.05, "attack_steps": 1, "checkpoint_every": 2}
    evaluation = {"eval_every": samples, "eval_images": 32, "eval_steps": 2}
    sweep = _slurm_sweep(tmp_path, monkeypatch, slurm_cluster, samples=[samples], train=train,
                         evaluation=evaluation,
                         slurm={"tasks_per_node": 2, "cpus_per_task": 1, "mem_gb": 1, "timeout_min": 10})
    run_dir = sweep.runs[0].out
    events = []
    sweeper, box = _in_thread(lambda: run_sweep(sweep, executor="slurm", on_run=lambda r, s: events.append(s)))
    deadline = time.time() + 120
    while time.time() < deadline and not (run_dir / "checkpoint.pt").exists():
        time.sleep(0.2)
    assert (run_dir / "checkpoint.pt").exists(), "the Slurm job never started training"
    job_id = next(e.split()[1] for e in events if e.startswith("submitted"))
    high = subprocess.run(["sbatch", "-p", "high", "-c", "2", "-o", str(tmp_path / "high.out"), "--wrap", "sleep 1"],
                          capture_output=True, text=True, env=slurm_cluster)
    assert high.returncode == 0, high.stderr
    while subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True,
                         env=slurm_cluster).stdout.strip() == "RUNNING":  # preempted ~2 s after the sbatch
        time.sleep(0.2)
    assert not (run_dir / "result.json").exists(), "the run finished before it could be preempted"
    # the reference, while the preempted job waits to be scheduled again
    reference = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29547",
         "-m", "robustscale", "train", "--model", "wrn-10-1", "--data", "fashion-mnist", "--samples", str(samples),
         "--batch-size", "32", "--lr", "0.05", "--attack-steps", "1", "--eval-every", str(samples),
         "--eval-images", "32", "--eval-steps", "2", "--no-progress", "--out", str(tmp_path / "torchrun")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert reference.wait(300) == 0, reference.stderr.read()
    sweeper.join(300)
    result = box["result"]
    assert result.finished == [sweep.runs[0].name] and result.failed == {}, result
    history = subprocess.run(["sacct", "-j", job_id, "-D", "-X", "-n", "-o", "State"], capture_output=True,
                             text=True, env=slurm_cluster).stdout
    assert "PREEMPTED" in history or "REQUEUED" in history, history
    logs = "".join(p.read_text() for p in (sweep.out / ".submitit").rglob("*_log.err"))
    assert f"resuming {run_dir} from its checkpoint" in logs  # the requeued job picked up the checkpoint
    assert json.loads((run_dir / "config.json").read_text())["world_size"] == 2
    ours, theirs = load_file(run_dir / "model.safetensors"), load_file(tmp_path / "torchrun" / "model.safetensors")
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours), [k for k in ours if not torch.equal(ours[k], theirs[k])]
    rerun = run_sweep(sweep, executor="slurm")
    assert rerun.skipped == [sweep.runs[0].name] and rerun.finished == []


def test_slurm_cancelled_job_is_reported_failed_and_sweep_goes_on(tmp_path, slurm_cluster, monkeypatch):
    sweep = _slurm_sweep(tmp_path, monkeypatch, slurm_cluster, samples=[64, "100k"],
                         slurm={"cpus_per_task": 1, "mem_gb": 1, "timeout_min": 10})
    short, long = sweep.runs
    events, failed_at = [], {}

    def on_run(run, state):
        events.append((run.name, state))
        if state == "failed":
            failed_at[run.name] = time.monotonic()

    sweeper, box = _in_thread(lambda: run_sweep(sweep, executor="slurm", on_run=on_run))
    deadline = time.time() + 120
    while time.time() < deadline and not (long.out / "config.json").exists():
        time.sleep(0.2)
    job_id = next(s.split()[1] for name, s in events if name == long.name and s.startswith("submitted"))
    cancelled_at = time.monotonic()
    subprocess.run(["scancel", job_id], check=True, env=slurm_cluster)
    sweeper.join(240)
    assert not sweeper.is_alive(), "the sweep hangs on a cancelled job"
    result = box["result"]
    assert result.finished == [short.name] and list(result.failed) == [long.name]
    assert "CANCELLED" in result.failed[long.name]
    delay = failed_at[long.name] - cancelled_at
    print(f"cancelled job reported failed after {delay:.1f} s")
    assert delay < 60


def test_slurm_job_nobody_reports_on_fails_after_the_state_timeout(tmp_path, slurm_cluster, monkeypatch):
    """A job neither in the queue nor in accounting (here: an id Slurm never gave) cannot block the sweep."""
    import submitit

    from robustscale.sweep.executors import _wait

    sweep = _slurm_sweep(tmp_path, monkeypatch, slurm_cluster)
    job = submitit.SlurmJob(tmp_path / "jobs", "987654")
    t0 = time.monotonic()
    finished, failed = _wait([(sweep.runs[0], job)], lambda r, s: None, "slurm", state_timeout_s=3)
    assert finished == [] and "neither in the queue nor in Slurm accounting" in failed[sweep.runs[0].name]
    assert time.monotonic() - t0 < 30
