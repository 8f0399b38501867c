"""Exact resume: SIGKILL at a random step after a checkpoint, resume, same weights bit for bit."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file


def test_kill_and_resume_is_bitwise_identical(tmp_path, tiny, run_cli, synthetic_store):
    """With a synthetic store mixed in (4 real + 28 synthetic per batch): same batches after resume."""
    args = [*tiny, "--samples", "384", "--eval-every", "192", "--checkpoint-every", "2",
            "--synthetic", synthetic_store]
    run_cli("train", *args, "--out", tmp_path / "straight")

    killed = tmp_path / "killed"
    # TensorBoard events too: the resumed run drops those past its checkpoint, as it does metrics.jsonl's
    proc = subprocess.Popen([sys.executable, "-m", "robustscale", "train", *args, "--out", str(killed),
                             "--tensorboard"],
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (killed / "checkpoint.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(random.uniform(0, 1.0))  # an arbitrary point, mid-step or mid-write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "result.json").exists(), "the run finished before the kill: make it longer"

    refused = run_cli("train", *args, "--out", killed, check=False)
    assert refused.returncode == 2 and "resume the run" in refused.stderr

    run_cli("train", "--out", killed, "--resume", "--no-progress")  # settings come from config.json
    a, b = load_file(tmp_path / "straight" / "model.safetensors"), load_file(killed / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].equal(b[k]), k
    m1 = [json.loads(x) for x in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    m2 = [json.loads(x) for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in m2] == [m["step"] for m in m1] == [6, 12]
    config = json.loads((killed / "config.json").read_text())
    # scored on test images (eval_split test): every training image trains; the momentum cycled step by step
    assert config["fid"] == 12.5 and [s["images"] for s in config["sources"]] == [60000, 10000]
    assert (config["eval_split"], config["momentum_schedule"]) == ("test", "cycle")
    for x, y in zip(m1, m2):
        assert (x["accuracy"], x["loss"], x["train_loss"]) == (y["accuracy"], y["loss"], y["train_loss"])
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(killed / "tensorboard"))
    events.Reload()
    logged = [(e.step, e.value) for e in events.Scalars("loss")]
    assert logged == [(m["step"], pytest.approx(m["loss"])) for m in m2]
