"""`tensorboard: true`: TensorBoard event files beside metrics.jsonl holding the same scalars."""

from __future__ import annotations

import pytest

from robustscale.rundir import RunDir
from robustscale.train import train_run
from robustscale.train.trainer import TENSORBOARD_SCALARS


def test_tensorboard_scalars_equal_metrics(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    train_run(out, model="wrn-10-1", dataset="fashion-mnist", samples=64, batch_size=16, lr=0.05,
              attack_steps=1, eval_every=32, eval_images=32, eval_steps=2, epoch_samples=16, tensorboard=True,
              progress=False)
    run = RunDir(out)
    metrics = run.read_metrics()
    assert [m["step"] for m in metrics] == [2, 4] and run.read_config()["tensorboard"] is True
    events = EventAccumulator(str(run.tensorboard_dir))
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == sorted(TENSORBOARD_SCALARS)
    for tag in TENSORBOARD_SCALARS:
        logged = [(e.step, e.value) for e in events.Scalars(tag)]
        # TensorBoard stores float32
        assert logged == [(m["step"], pytest.approx(m[tag], rel=1e-6)) for m in metrics], tag
    assert metrics[1]["images_per_s"] > 0
