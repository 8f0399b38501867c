"""CLI: --json outputs parse with the contract's keys; laws work with torch unimportable; plots."""

import json
import subprocess
import sys

import pytest

PLAN_KEYS = {"n_star", "d_star", "loss", "accuracy", "irreducible_loss", "accuracy_limit", "flops", "fid"}
TRADEOFF_KEYS = {"omega_n", "omega_d", "overhead", "n", "d"}

# Run the CLI in a fresh interpreter where `import torch` raises ImportError.
NO_TORCH = "import sys; sys.modules['torch'] = None; sys.argv = ['robustscale'] + sys.argv[1:]; " \
           "from robustscale.cli import main; main()"


def cli(*args, no_torch=False):
    cmd = [sys.executable, "-c", NO_TORCH, *args] if no_torch else [sys.executable, "-m", "robustscale", *args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r


def test_laws_import_without_torch():
    code = ("import sys; sys.modules['torch'] = None; import robustscale.laws, robustscale.laws.plots, "
            "robustscale.commands.laws; assert sys.modules['torch'] is None; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    r = subprocess.run([sys.executable, "-c", "import sys, robustscale.laws, robustscale.commands.laws; print('torch' in sys.modules)"],
                       capture_output=True, text=True)
    assert r.stdout.strip() == "False"


def test_simulate_fit_plan_tradeoff_without_torch(tmp_path):
    obs, law = tmp_path / "obs.csv", tmp_path / "law.json"
    out = json.loads(cli("simulate", "--law", "paper-approach2", "--out", str(obs), "--json", no_torch=True).stdout)
    assert out == {"out": str(obs), "rows": 1160, "runs": 232}
    fitted = json.loads(cli("fit", str(obs), "--approach", "2", "--out", str(law), "--json", no_torch=True).stdout)
    assert {"approach", "params", "objective", "n_obs"} <= set(fitted) and fitted["approach"] == 2
    assert json.loads(law.read_text())["params"] == fitted["params"]
    plan = json.loads(cli("plan", "--law", str(law), "--flops", "1e25", "--fid", "1.76", "--json", no_torch=True).stdout)
    assert PLAN_KEYS <= set(plan) and plan["flops"] == 1e25 and plan["fid"] == 1.76
    assert plan["n_star"] * plan["d_star"] * 7822 == pytest.approx(1e25)
    trade = json.loads(cli("tradeoff", "--law", str(law), "--flops", "1e24", "--fid", "1.65", "--omega-n", "0.5",
                           "--json", no_torch=True).stdout)
    assert TRADEOFF_KEYS <= set(trade) and trade["omega_n"] == 0.5 and trade["omega_d"] > 1 and 0 < trade["overhead"] < 0.5


def test_plan_lists_and_presets():
    r = cli("plan", "--law", "paper-approach3", "--flops", "1e22,1e24", "--flops", "1e25", "--fid", "1.76", "--json")
    plans = json.loads(r.stdout)["plans"]
    assert [p["flops"] for p in plans] == [1e22, 1e24, 1e25]
    assert round(plans[-1]["loss"], 2) == 0.63 and all(PLAN_KEYS <= set(p) for p in plans)
    assert len(r.stdout.strip().splitlines()) == 1


def test_fit_bootstrap_and_plan_intervals(tmp_path, small_obs):
    """CLI plumbing of --bootstrap (Approach 1 refits in milliseconds; test_bootstrap covers Approach 2)."""
    obs, law = tmp_path / "small.csv", tmp_path / "law.json"
    small_obs.to_csv(obs, index=False)
    fitted = json.loads(cli("fit", str(obs), "--approach", "1", "--out", str(law), "--bootstrap", "5", "--json").stdout)
    iv = fitted["intervals"]
    assert iv["k"] == 5 and set(iv["params"]["fashion-mnist"]) >= {"a", "b"}
    lo, hi = iv["params"]["fashion-mnist"]["a"]
    assert lo <= fitted["params"]["fashion-mnist"]["a"] * 1.5 and lo <= hi
    for key in ("n_star", "d_star", "loss", "accuracy"):
        assert iv[key][0] <= iv[key][1]
    assert "bootstrap" in json.loads(law.read_text())  # samples kept for plan's intervals
    plan = json.loads(cli("plan", "--law", str(law), "--flops", "1e16", "--json").stdout)
    assert plan["intervals"]["n_star"][0] <= plan["n_star"] * 1.5 and plan["intervals"]["loss"][0] <= plan["intervals"]["loss"][1]


def test_plot_cli(tmp_path):
    out = tmp_path / "forecast.svg"
    r = cli("plot", "forecast", "--out", str(out), "--law", "paper-approach2", "--fid", "0,1.76,35.54", "--json")
    assert json.loads(r.stdout) == {"out": str(out)} and out.read_text().lstrip().startswith("<?xml")


def test_plot_bad_suffix_writes_nothing(tmp_path):
    r = subprocess.run([sys.executable, "-m", "robustscale", "plot", "forecast", "--law", "paper-approach2",
                        "--out", str(tmp_path / "f.pdf")], capture_output=True, text=True)
    assert r.returncode == 2 and "png or .svg" in r.stderr and list(tmp_path.iterdir()) == []
