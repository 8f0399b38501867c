"""The run folder: the one module that knows its file names and formats (no torch needed to read one).

A run folder, written by `robustscale.train` and read by `runs`, `sweep` and the demo, holds

    config.json      the resolved TrainConfig plus what the trainer measured before step 0 (params,
                     FLOPs per sample, the data sources with their FIDs, the pool's `fid`, `source`)
    metrics.jsonl    one JSON object per held-out evaluation, in step order, never a step twice
    result.json      written last: the run is finished once it exists
    checkpoint.pt    the full training state (train/checkpoint.py), nonfinite.pt after a bad loss
    model.*, best.*  the EMA weights at the end and at the best evaluation (models/weights.py)
    tensorboard/     TensorBoard event files when the run was trained with `tensorboard: true`

Metric keys, one spelling per concept everywhere (metrics.jsonl, result.json, eval.json, the
observations table, JSON outputs). The observations table's names win, because users' CSVs and the
laws already use them (laws/observations.py; the loss->accuracy regression reads `accuracy`):
`accuracy` is robust accuracy (held-out PGD-40-CW in training; keyed by attack in eval.json),
`clean_accuracy` is clean accuracy, `loss` the held-out adversarial loss (the paper's L). A
metrics.jsonl line also holds step, samples, flops, lr, train_loss, time_s and images_per_s.
Run folders written before this spelling (`pgd_acc`, `clean_acc`) are read through `METRIC_ALIASES`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from robustscale.errors import RobustscaleError
from robustscale.fileio import dumps, write_json, write_text

# Older run folders' keys -> today's (read only; nothing writes the old names).
METRIC_ALIASES = {"pgd_acc": "accuracy", "clean_acc": "clean_accuracy"}
# A run whose files changed this recently, without result.json, is taken to be training now.
RUNNING_WINDOW_S = 600


def metric_keys(row: dict) -> dict:
    """A metrics row (or result.json's `final`/`best`) with old key spellings renamed."""
    return {METRIC_ALIASES.get(k, k): v for k, v in row.items()}


class RunDir:
    """One run folder: its file paths, and reading and writing each of its files."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.config_path = self.path / "config.json"
        self.metrics_path = self.path / "metrics.jsonl"
        self.result_path = self.path / "result.json"
        self.checkpoint_path = self.path / "checkpoint.pt"
        self.nonfinite_path = self.path / "nonfinite.pt"  # the state at a non-finite loss
        self.model_stem = self.path / "model"  # final EMA weights: model.safetensors + model.json
        self.best_stem = self.path / "best"  # EMA weights at the best held-out robust accuracy
        self.tensorboard_dir = self.path / "tensorboard"

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    # --- state -----------------------------------------------------------------------------------

    def is_run(self) -> bool:
        return self.config_path.is_file()

    def is_finished(self) -> bool:
        return self.result_path.is_file()

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.is_file()

    def is_empty(self) -> bool:
        return not self.path.exists() or not any(self.path.iterdir())

    def state(self, metrics: list[dict] | None = None) -> str:
        """finished | running | stopped | pending (running: files changed in the last RUNNING_WINDOW_S)."""
        if self.is_finished():
            return "finished"
        metrics = self.read_metrics() if metrics is None else metrics
        if not metrics and not self.checkpoint_path.exists():
            return "pending"
        files = [p for p in (self.metrics_path, self.checkpoint_path) if p.exists()]
        newest = max(p.stat().st_mtime for p in files)
        return "running" if time.time() - newest < RUNNING_WINDOW_S else "stopped"

    # --- config.json -----------------------------------------------------------------------------

    def read_config(self) -> dict:
        try:
            return json.loads(self.config_path.read_text())
        except FileNotFoundError:
            raise RobustscaleError(f"{self.config_path}: no run config (not a run folder)") from None
        except json.JSONDecodeError as e:
            raise RobustscaleError(f"{self.config_path}: not valid JSON ({e})") from None

    def write_config(self, record: dict) -> None:
        write_json(self.config_path, record)

    # --- metrics.jsonl ---------------------------------------------------------------------------

    def read_metrics(self) -> list[dict]:
        """The evaluations, old key spellings renamed; a torn last line (run killed mid-write) is ignored."""
        if not self.metrics_path.is_file():
            return []
        rows = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                rows.append(metric_keys(json.loads(line)))
            except json.JSONDecodeError:
                continue
        return rows

    def append_metrics(self, row: dict) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(dumps(row) + "\n")  # non-finite values as null, like every JSON we write
            f.flush()

    def truncate_metrics(self, step: int) -> None:
        """Keep the evaluations up to `step` (a resumed run's checkpoint), so that the steps it repeats
        are not recorded twice; torn lines go too. The file is rewritten atomically."""
        if not self.metrics_path.is_file():
            return
        lines = self.metrics_path.read_text().splitlines()
        keep = []
        for line in lines:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if row["step"] <= step and (not keep or row["step"] > keep[-1][0]):
                keep.append((row["step"], line))
        if len(keep) != len(lines):
            write_text(self.metrics_path, "".join(line + "\n" for _, line in keep))

    def clear_metrics(self) -> None:
        """A fresh start: no evaluations recorded (metrics.jsonl and TensorBoard events of an earlier try)."""
        self.metrics_path.unlink(missing_ok=True)
        shutil.rmtree(self.tensorboard_dir, ignore_errors=True)

    # --- result.json -----------------------------------------------------------------------------

    def read_result(self) -> dict:
        try:
            result = json.loads(self.result_path.read_text())
        except FileNotFoundError:
            raise RobustscaleError(f"{self.result_path}: the run has not finished") from None
        except json.JSONDecodeError as e:
            raise RobustscaleError(f"{self.result_path}: not valid JSON ({e})") from None
        for key in ("final", "best"):
            if isinstance(result.get(key), dict):
                result[key] = metric_keys(result[key])
        return result

    def write_result(self, result: dict[str, Any]) -> None:
        write_json(self.result_path, result)


def find_runs(runs_dir: str | os.PathLike) -> list[RunDir]:
    """Run folders (those with a config.json) under runs_dir (or runs_dir itself), sorted by path."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise RobustscaleError(f"{root}: no such runs directory")
    if RunDir(root).is_run():
        return [RunDir(root)]
    folders = sorted(c.parent for c in root.rglob("config.json") if ".submitit" not in c.parts)
    return [RunDir(p) for p in folders]
