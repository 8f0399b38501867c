"""Run directories in the trainer's layout (config.json, metrics.jsonl, result.json), written by hand.

Imported as `runstore` (tests/ is on sys.path through its conftest), not as `tests.runs...`: a package
installed beside the project (robustbench's wheel) ships a top-level `tests` package that would win."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

C = 7822  # FLOPs = c N D (App. B)


def make_run(root: Path, model: str, params: int, samples: int, *, mode: str = "trades", evals: int = 4,
             finished: bool = True, fid: float = 0.0, synthetic: str | None = None, seed: int = 0) -> Path:
    """A run dir whose held-out loss follows a Chinchilla-shaped law L = E + A/N^a + B/D^b (+ noise)."""
    name = (f"{model}_{'real' if synthetic is None else Path(synthetic).name}_{samples}"
            + ("_standard" if mode == "standard" else ""))
    run = root / name
    run.mkdir(parents=True)
    sources = [{"name": "fashion-mnist", "fid": 0.0, "path": None, "real": True, "images": 59744}]
    if synthetic is not None:
        sources.append({"name": Path(synthetic).name, "fid": fid, "path": synthetic, "real": False,
                        "images": 10**6})
    config = {"model": model, "dataset": "fashion-mnist", "samples": samples, "out": str(run), "mode": mode,
              "synthetic": [synthetic] if synthetic else [], "params": params,
              "forward_flops": C * params // 27,
              "flops_per_sample": C * params, "sources": sources, "fid": fid}
    (run / "config.json").write_text(json.dumps(config))
    rng = np.random.default_rng(seed + params + samples)
    lines = []
    for i in range(1, evals + 1):
        d = samples * i // evals
        loss = 0.5 + 400 / params**0.5 + 30 / d**0.45
        loss *= float(np.exp(rng.normal(0, 0.005)))
        acc = max(0.0, 0.95 - 0.6 * loss) if mode == "trades" else 0.01
        lines.append({"step": i * 10, "samples": d, "flops": C * params * d, "lr": 0.1,
                      "train_loss": loss + 0.1,
                      "clean_accuracy": min(1.0, acc + 0.2), "accuracy": acc, "loss": loss,
                      "time_s": float(i)})
    (run / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))
    if finished:
        (run / "result.json").write_text(json.dumps({"out": str(run), "samples": samples,
                                                     "final": lines[-1]}))
    return run


@pytest.fixture
def study_runs(tmp_path):
    """3 sizes x 3 budgets of TRADES runs on real data plus a standard baseline per size."""
    root = tmp_path / "runs"
    for model, n in (("wrn-10-1", 78_000), ("wrn-16-1", 175_000), ("wrn-22-1", 272_000)):
        for d in (20_000, 40_000, 80_000):
            make_run(root, model, n, d)
        make_run(root, model, n, 80_000, mode="standard")
    return root
