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
    assert (r.stderr.startswith("error: ") and "samples[1]" in r.stderr
            and len(r.stderr.strip().splitlines()) == 1)
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
    path = write_sweep(tmp_path, samples=[64],
                       sources=[{"name": "broken", "path": "broken-store", "fid": 3.0}, "real"])
    r = cli("sweep", path)
    assert r.returncode == 1
    assert "FAILED wrn-10-1_broken_64" in r.stdout
    assert (tmp_path / "runs" / "wrn-10-1_real_64" / "result.json").is_file()


def test_slurm_resources_one_task_per_gpu_and_batch_split(tmp_path):
    assert executor_parameters({"timeout_min": 5, "gpus_per_node": 4}, 1)["tasks_per_node"] == 4
    assert executor_parameters({"timeout_min": 5, "gpus_per_node": 4, "tasks_per_node": 1},
                               1)["tasks_per_node"] == 1
    assert executor_parameters({"timeout_min": 5, "gpus_per_node": 0}, 1)["tasks_per_node"] == 1
    path = write_sweep(tmp_path, models=["wrn-10-1",
                                        {"name": "wrn-16-1", "slurm": {"nodes": 2, "gpus_per_node": 8}}])
    grid = plan(load_sweep(path))
    assert [r["world_size"] for r in grid["runs"]] == [1, 16]
    path = write_sweep(tmp_path, slurm={"tasks_per_node": 3})  # batch 32 does not split over 3 processes
    with pytest.raises(RobustscaleError, match=r"train.batch_size: 32 does not split into 3 Slurm tasks"):
        load_sweep(path)


def test_gpus_read_from_slurm_gres():
    from robustscale.sweep.slurm import _gpus

    gres = ("gpu:8", "gpu:a100:4(S:0-1)", "gpu:2,gpu:v100:2", "(null)", "mps:100")
    assert [_gpus(g) for g in gres] == [8, 4, 4, 0, 0]


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
    # a failed test must not hang
    thread = threading.Thread(target=lambda: box.setdefault("result", fn()), daemon=True)
    thread.start()
    return thread, box


def _slurm_sweep(tmp_path, monkeypatch, slurm_cluster, **over):
    monkeypatch.setenv("SLURM_CONF", slurm_cluster["SLURM_CONF"])
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # each task's threads come from its allocation
    return load_sweep(write_sweep(tmp_path, **over))


def _sacct(job_ids, env, fields="JobID,State,Start,End"):
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-j", ",".join(job_ids), "-o", fields],
                         capture_output=True, text=True, env=env).stdout
    return [line.split("|") for line in out.splitlines()]


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
    sweeper, box = _in_thread(lambda: run_sweep(sweep, executor="slurm",
                                                on_run=lambda r, s: events.append(s)))
    deadline = time.time() + 120
    while time.time() < deadline and not (run_dir / "checkpoint.pt").exists():
        time.sleep(0.2)
    assert (run_dir / "checkpoint.pt").exists(), "the Slurm job never started training"
    job_id = next(e.split()[1] for e in events if e.startswith("submitted"))
    high = subprocess.run(["sbatch", "-p", "high", "-c", "2", "-o", str(tmp_path / "high.out"),
                           "--wrap", "sleep 1"],
                          capture_output=True, text=True, env=slurm_cluster)
    assert high.returncode == 0, high.stderr
    while subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True,
                         env=slurm_cluster).stdout.strip() == "RUNNING":  # preempted ~2 s after the sbatch
        time.sleep(0.2)
    assert not (run_dir / "result.json").exists(), "the run finished before it could be preempted"
    # the reference, while the preempted job waits to be scheduled again
    reference = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29547",
         "-m", "robustscale", "train", "--model", "wrn-10-1", "--data", "fashion-mnist",
         "--samples", str(samples),
         "--batch-size", "32", "--lr", "0.05", "--attack-steps", "1", "--eval-every", str(samples),
         "--eval-images", "32", "--eval-steps", "2", "--no-progress", "--out", str(tmp_path / "torchrun")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert reference.wait(300) == 0, reference.stderr.read()
    sweeper.join(300)
    result = box["result"]
    assert result.finished == [sweep.runs[0].name] and result.failed == {}, result
    history = subprocess.run(["sacct", "-j", job_id, "-D", "-X", "-n", "-o", "State"], capture_output=True,
                             text=True, env=slurm_cluster).stdout
    assert "PREEMPTED" in history or "REQUEUED" in history, history
    assert any(e.startswith("pending: ") for e in events), events  # the requeued job waits (BeginTime): said
    logs = "".join(p.read_text() for p in (sweep.out / ".submitit").rglob("*_log.err"))
    assert f"resuming {run_dir} from its checkpoint" in logs  # the requeued job picked up the checkpoint
    config = json.loads((run_dir / "config.json").read_text())
    assert config["world_size"] == 2 and config["threads"] == 1  # cpus_per_task 1: one thread per task
    ours, theirs = (load_file(run_dir / "model.safetensors"),
                    load_file(tmp_path / "torchrun" / "model.safetensors"))
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours), [
        k for k in ours if not torch.equal(ours[k], theirs[k])]
    rerun = run_sweep(sweep, executor="slurm")
    assert rerun.skipped == [sweep.runs[0].name] and rerun.finished == []


def test_slurm_cancelled_job_is_reported_cancelled_and_sweep_goes_on(tmp_path, slurm_cluster, monkeypatch):
    sweep = _slurm_sweep(tmp_path, monkeypatch, slurm_cluster, samples=[64, "100k"],
                         slurm={"cpus_per_task": 1, "mem_gb": 1, "timeout_min": 10})
    short, long = sweep.runs
    events, failed_at = [], {}

    def on_run(run, state):
        events.append((run.name, state))
        if state.startswith("cancelled: "):
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
    assert result.finished == [short.name] and result.failed == {} and list(result.cancelled) == [long.name]
    assert "CANCELLED" in result.cancelled[long.name]
    delay = failed_at[long.name] - cancelled_at
    print(f"cancelled job reported after {delay:.1f} s")
    assert delay < 60
    # the task stopped on the scancel's SIGTERM instead of training on through KillWait
    logs = "".join(p.read_text() for p in (sweep.out / ".submitit").rglob(f"{job_id}_*_log.err"))
    assert "cancelled (scancel) while training; stopped" in logs, logs[-2000:]
    assert not (long.out / "result.json").exists()


def test_slurm_job_nobody_reports_on_fails_after_the_state_timeout(tmp_path, slurm_cluster, monkeypatch):
    """A job neither in the queue nor in accounting (here: an id Slurm never gave) cannot block the sweep."""
    import submitit

    from robustscale.sweep.executors import _SlurmSweep

    sweep = _slurm_sweep(tmp_path, monkeypatch, slurm_cluster)
    runner = _SlurmSweep(sweep, 1, lambda r, s: None, "slurm", state_timeout_s=3)
    runner.active = [(sweep.runs[0], submitit.SlurmJob(tmp_path / "jobs", "987654"))]
    t0 = time.monotonic()
    runner.run([])
    assert runner.finished == []
    assert "neither in the queue nor in Slurm accounting" in runner.failed[sweep.runs[0].name]
    assert time.monotonic() - t0 < 30


def test_run_folder_claim_keeps_a_second_process_out(tmp_path):
    """A live holder (another process, heartbeat running) keeps the folder; once it dies, it is free."""
    from robustscale.sweep.claims import RunClaimed, claim_run, read_claim

    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                               "from robustscale.sweep.claims import claim_run\n"
                               f"claim_run({str(run_dir)!r}, job_id='4242')\n"
                               "print('held', flush=True); time.sleep(600)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunClaimed, match=r"claimed by job 4242 .*\(running\)"):
            claim_run(run_dir, job_id="4243", wait_s=0.5)
        assert read_claim(run_dir)["job_id"] == "4242"
        same = claim_run(run_dir, job_id="4242")  # another rank of the same job, or the job requeued
        same.release(mark=False)
    finally:
        holder.kill()
        holder.wait()
    mine = claim_run(run_dir, job_id="4243")  # the holder's process is gone and Slurm never heard of 4242
    assert read_claim(run_dir)["job_id"] == "4243" and read_claim(run_dir)["previous"] == "4242"
    mine.release()
    assert read_claim(run_dir)["released"] and claim_run(run_dir, job_id="4244").job_id == "4244"


def test_slurm_sweep_killed_and_rerun_reattaches_one_job_per_run(tmp_path, slurm_cluster, monkeypatch, cli):
    """kill -9 the sweep while its first job trains and rerun it at once with --max-parallel 1 over two
    resource groups: the rerun reattaches to the running job (no second job for any run folder), submits
    the other run only after it, says every state on its own line, and the data has no repeated step."""
    from robustscale.runs import observations
    from robustscale.sweep.claims import read_claim

    monkeypatch.setenv("SLURM_CONF", slurm_cluster["SLURM_CONF"])
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    path = write_sweep(tmp_path, models=["wrn-10-1", {"name": "wrn-16-1", "slurm": {"mem_gb": 2}}],
                       samples=[1024],
                       slurm={"cpus_per_task": 1, "mem_gb": 1, "timeout_min": 10},
                       evaluation={"eval_every": 256, "eval_images": 32, "eval_steps": 2})
    sweep = load_sweep(path)
    first, second = sweep.runs
    proc = subprocess.Popen([sys.executable, "-m", "robustscale", "sweep", str(path), "--executor", "slurm",
                             "--max-parallel", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 180
    while time.time() < deadline and not (first.out / "metrics.jsonl").exists():
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (first.out / "result.json").exists(), "the first run finished before the sweep was killed"
    r = cli("sweep", path, "--executor", "slurm", "--max-parallel", "1", "--json")
    assert r.returncode == 0, r.stderr
    outcome = r.json
    assert sorted(outcome["finished"]) == [first.name, second.name] and outcome["failed"] == {}, outcome
    jobs = outcome["jobs"]
    lines = r.stderr.splitlines()
    assert f"{first.name}: reattached {jobs[first.name]}" in lines, r.stderr
    assert f"{second.name}: submitted {jobs[second.name]}" in lines
    assert f"{first.name}: finished" in lines and f"{second.name}: finished" in lines
    # exactly one job per run folder: the two the outcome names, each the holder of its folder's claim
    assert sorted(p.name for p in (sweep.out / ".submitit").iterdir() if p.is_dir()) == sorted(jobs.values())
    for run in sweep.runs:
        claim = read_claim(run.out)
        assert claim["job_id"] == jobs[run.name] and claim["previous"] is None and claim["released"]
        steps = [json.loads(ln)["step"] for ln in (run.out / "metrics.jsonl").read_text().splitlines()]
        assert steps == [8, 16, 24, 32], steps  # every 256 samples of 1024, batch 32: no step twice
    assert len(observations(sweep.out)) == 2 * 4
    # --max-parallel 1 across resource groups: the second job started after the first had ended
    (_, state1, _, end1), (_, state2, start2, _) = sorted(_sacct(list(jobs.values()), slurm_cluster),
                                                          key=lambda row: row[2])
    assert state1 == state2 == "COMPLETED" and start2 >= end1, (end1, start2)


def test_slurm_unschedulable_requests_fail_with_one_error(tmp_path, slurm_cluster, monkeypatch, cli):
    """A request no node fits is refused before submitting; one that Slurm accepts but can never start
    (a time limit over the partition's: PartitionConfig) is cancelled within a minute: one `error:` line,
    exit 2."""
    cpus = os.cpu_count() or 2
    monkeypatch.setenv("SLURM_CONF", slurm_cluster["SLURM_CONF"])
    path = write_sweep(tmp_path, slurm={"tasks_per_node": 2, "cpus_per_task": cpus, "mem_gb": 1,
                                        "timeout_min": 5})
    r = cli("sweep", path, "--executor", "slurm")
    assert r.returncode == 2 and r.stderr.count("error: ") == 1, r.stderr
    assert f"{2 * cpus} CPUs" in r.stderr and "partition debug" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "runs" / "sweep-jobs.json").exists()  # nothing submitted

    path = write_sweep(tmp_path, "never.yaml", slurm={"partition": "short", "cpus_per_task": 1, "mem_gb": 1,
                                                       "timeout_min": 5})
    t0 = time.monotonic()
    r = cli("sweep", path, "--executor", "slurm")
    elapsed = time.monotonic() - t0
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert r.returncode == 2 and len(errors) == 1, r.stderr
    assert "wrn-10-1_real_128" in errors[0] and "pending: PartitionConfig" in errors[0], r.stderr
    assert elapsed < 60, elapsed
    job_id = json.loads((tmp_path / "runs" / "sweep-jobs.json").read_text())["wrn-10-1_real_128"]["job_id"]
    deadline = time.time() + 30
    while time.time() < deadline and not _sacct([job_id], slurm_cluster)[0][1].startswith("CANCELLED"):
        time.sleep(0.5)
    assert _sacct([job_id], slurm_cluster)[0][1].startswith("CANCELLED")  # what the sweep submitted


def test_no_reachable_slurm_is_one_error(tmp_path, cli, monkeypatch):
    monkeypatch.delenv("SLURM_CONF", raising=False)
    if Path("/etc/slurm/slurm.conf").exists():
        pytest.skip("this machine has a system-wide slurm.conf")
    r = cli("sweep", write_sweep(tmp_path), "--executor", "slurm", timeout=120)
    assert r.returncode == 2 and r.stderr.count("error: ") == 1 and "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert errors[0].startswith("error: --executor: slurm: no Slurm controller answers"), r.stderr
