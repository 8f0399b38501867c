"""Adaptive sweeps (`design:` in a sweep file), on the local executor: validation, a budget that pays
for no run, and a sweep killed in its second round that resumes in that round without redoing the first."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import yaml

from robustscale.errors import RobustscaleError
from robustscale.runs import observations
from robustscale.sweep import load_sweep
from robustscale.sweep.design import current_round

# Tiny TRADES runs on real Fashion-MNIST (seconds each); an evaluation every 64 samples gives the
# first round's 2 x 2 grid 6 points to fit.
TINY = {"dataset": "fashion-mnist", "out": "runs", "models": ["wrn-10-1", "wrn-16-1"], "samples": [64, 128],
        "sources": ["real"],
        "train": {"batch_size": 32, "lr": 0.05, "attack_steps": 1, "step_size": 0.1, "ema_decay": 0.5},
        "evaluation": {"eval_every": 64, "eval_images": 32, "eval_steps": 2}}
# ~300 samples of wrn-10-1 (5.05e8 FLOPs a sample at 28x28) per round; N* at ~10x the grid's largest run
DESIGN = {"rounds": 2, "budget_per_round": 1.5e11, "target_flops": 1.5e12, "bootstrap": 0}


def write(tmp_path, **over):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({**TINY, "design": DESIGN, **over}))
    return path


@pytest.mark.parametrize("design, field", [
    ({**DESIGN, "rounds": 0}, "design.rounds"),
    ({**DESIGN, "budget_per_round": "lots"}, "design.budget_per_round"),
    ({**DESIGN, "target_flops": -1}, "design.target_flops"),
    ({**DESIGN, "bootstrap": 1}, "design.bootstrap"),
    ({"rounds": 2, "budget_per_round": 1e11}, "design.target_flops: required"),
    ({**DESIGN, "round": 3}, "design.round: unknown design key"),
])
def test_design_validation_names_the_field(tmp_path, design, field):
    path = write(tmp_path, design=design)
    with pytest.raises(RobustscaleError, match=field) as e:
        load_sweep(path)
    assert str(path) in str(e.value)


def test_design_parsed_and_per_model_budgets(tmp_path):
    # YAML: 2e11 is a string
    sweep = load_sweep(write(tmp_path, design={**DESIGN, "budget_per_round": "2e11"}))
    assert sweep.design.rounds == 2 and sweep.design.budget_per_round == 2e11 and sweep.design.bootstrap == 0
    assert current_round(sweep) == 1
    # a design round's file: each model with its own budgets, no shared grid
    path = tmp_path / "round.yaml"
    path.write_text(yaml.safe_dump({**TINY, "samples": None,
                                    "models": [{"name": "wrn-10-1", "samples": [300]},
                                               {"name": "wrn-16-1", "samples": [100, 200]}]}))
    assert [r.name for r in load_sweep(path).runs] == ["wrn-10-1_real_300", "wrn-16-1_real_100",
                                                       "wrn-16-1_real_200"]


def test_budget_below_the_cheapest_run_is_one_error_before_training(tmp_path, cli):
    path = write(tmp_path, design={**DESIGN, "budget_per_round": 1e6})
    r = cli("sweep", path)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: "), r.stderr
    assert "design.budget_per_round" in r.stderr and "cheapest run" in r.stderr
    assert not list((tmp_path / "runs").glob("*/config.json"))


def test_killed_adaptive_sweep_resumes_in_its_second_round(tmp_path, cli):
    """SIGKILL once a run of round 2 has started; the rerun skips round 1 (runs, law, suggestion
    untouched), finishes round 2's runs, and fits round 2's law on all of them."""
    path = write(tmp_path)
    runs, design = tmp_path / "runs", tmp_path / "design"
    proc = subprocess.Popen([sys.executable, "-m", "robustscale", "sweep", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    second = design / "round-2" / "sweep.yaml"
    deadline = time.time() + 1800  # ~20 s on an idle 2-core machine; far longer on a shared one
    started = []
    while time.time() < deadline and not started:
        assert proc.poll() is None, proc.stderr.read()
        if second.is_file():
            started = [r for r in load_sweep(second).runs if (r.out / "config.json").is_file()]
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert started, "round 2 never started"
    assert not (design / "round-2" / "law.json").exists(), "round 2 finished before the kill"
    round_1 = load_sweep(path).runs
    kept = {p: p.stat().st_mtime_ns for p in [*(r.out / "result.json" for r in round_1),
                                              design / "round-1" / "law.json",
                                              design / "round-1" / "suggest.json"]}
    unfinished = [r.name for r in load_sweep(second).runs if not r.finished]
    assert unfinished, "round 2's runs all finished before the kill"

    r = cli("sweep", path, "--json")
    assert r.returncode == 0, r.stderr
    result = r.json
    assert result["resumed_in"] == 2 and result["failed"] == {}
    assert sorted(result["rounds"][0]["skipped"]) == sorted(x.name for x in round_1)
    assert sorted(result["rounds"][1]["finished"]) == sorted(unfinished)
    for p, mtime in kept.items():
        assert p.stat().st_mtime_ns == mtime, p  # round 1 is not redone
    assert all(x.finished for x in load_sweep(second).runs)
    # round 2's law is fitted on both rounds' runs
    names = set(observations(runs)["run"])
    assert {x.name for x in load_sweep(second).runs} <= names
    assert len(names) == len(round_1) + len(load_sweep(second).runs)
    law_1, law_2 = (json.loads((design / f"round-{k}" / "law.json").read_text()) for k in (1, 2))
    assert (result["rounds"][1]["law"] == str(design / "round-2" / "law.json")
            and law_2["params"] != law_1["params"])
    if (design / "round-2" / "suggest.json").is_file():  # what to run next, as a sweep file, not run
        assert load_sweep(design / "next.yaml").runs
        assert not any(r.out.exists() for r in load_sweep(design / "next.yaml").runs)
    again = cli("sweep", path, "--json").json
    assert again["finished"] == [] and again["resumed_in"] == 2
