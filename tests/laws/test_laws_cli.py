"""CLI of the laws commands: --json outputs with the documented keys, torch-free, warnings on
stderr, one `error:` line (exit 2) for usage errors and missing output folders."""

import json
import re
import subprocess
import sys

import pytest

PLAN_KEYS = {"n_star", "d_star", "loss", "accuracy", "irreducible_loss", "accuracy_limit", "flops", "fid"}
TRADEOFF_KEYS = {"omega_n", "omega_d", "overhead", "n", "d", "plan"}
LAW_COMMANDS = "robustscale.commands.fit, robustscale.commands.plan, robustscale.commands.tradeoff, " \
               "robustscale.commands.plot, robustscale.commands.simulate"


def test_laws_import_without_torch():
    code = ("import sys; sys.modules['torch'] = None; import robustscale.laws, robustscale.laws.plots, "
            f"{LAW_COMMANDS}; "
            "assert sys.modules['torch'] is None; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    r = subprocess.run([sys.executable, "-c", f"import sys, robustscale.laws, {LAW_COMMANDS}; print('torch' "
                                              "in sys.modules)"],
                       capture_output=True, text=True)
    assert r.stdout.strip() == "False"


def test_simulate_fit_plan_tradeoff_without_torch(tmp_path, cli):
    obs, law = tmp_path / "obs.csv", tmp_path / "law.json"
    r = cli("simulate", "--law", "paper-approach2", "--out", obs, "--noise", "0.005", "--json", no_torch=True)
    assert r.json == {"out": str(obs), "rows": 1160, "runs": 232}
    fitted = cli("fit", obs, "--approach", "2", "--out", law, "--json", no_torch=True).json
    assert {"approach", "params", "objective", "n_obs", "diagnostics", "identified", "anchored",
            "excluded_runs", "accuracy_map"} <= set(fitted)
    assert fitted["approach"] == 2 and fitted["quality_sources"] == ["EDM-10", "EDM-20", "EDM-7", "PFGM++"]
    assert json.loads(law.read_text())["params"] == fitted["params"]
    plan = cli("plan", "--law", law, "--flops", "1e25", "--fid", "1.76", "--json", no_torch=True).json
    assert PLAN_KEYS <= set(plan) and plan["flops"] == 1e25 and plan["fid"] == 1.76
    assert plan["n_star"] * plan["d_star"] * 7822 == pytest.approx(1e25)
    trade = cli("tradeoff", "--law", law, "--flops", "1e24", "--fid", "1.65", "--omega-n", "0.5", "--json",
                no_torch=True).json
    assert TRADEOFF_KEYS <= set(trade) and trade["omega_n"] == 0.5
    assert trade["omega_d"] > 1 and 0 < trade["overhead"] < 0.5


def test_fit_options_prior_quality_flops(tmp_path, sim_obs, cli):
    obs, out = tmp_path / "obs.csv", tmp_path / "law.json"
    sim_obs.to_csv(obs, index=False)
    r = cli("fit", obs, "--out", out, "--quality-sources", "EDM-7,EDM-10", "--quality-sources", "EDM-20",
                "--prior", "paper-approach2", "--flops-per-param-sample", "6000", "--json")
    assert r.returncode == 0, r
    law = r.json
    assert law["quality_sources"] == ["EDM-10", "EDM-20", "EDM-7"] and law["flops_per_param_sample"] == 6000
    assert law["anchored"] == {"prior": "paper-approach2", "reason": "requested", "strength": None}
    assert law["params"]["alpha"] == pytest.approx(0.24434519315396275)
    assert "kept from the prior paper-approach2" in r.stderr and r.stderr.startswith("warning: ")


def test_plan_lists_and_presets(cli):
    r = cli("plan", "--law", "paper-approach3", "--flops", "1e22,1e24", "--flops", "1e25", "--fid", "1.76",
            "--json")
    plans = r.json["plans"]
    assert [p["flops"] for p in plans] == [1e22, 1e24, 1e25]
    assert round(plans[-1]["loss"], 2) == 0.63 and all(PLAN_KEYS <= set(p) for p in plans)
    assert len(r.stdout.strip().splitlines()) == 1
    r = cli("plan", "--law", "paper-approach1", "--flops", "1e25", "--fid", "1.76", "--json")
    assert round(r.json["loss"], 2) == 0.50 and r.json["a"] == 0.56


def test_fit_bootstrap_and_plan_intervals(tmp_path, small_obs, cli):
    obs, law = tmp_path / "small.csv", tmp_path / "law.json"
    small_obs.to_csv(obs, index=False)
    r = cli("fit", obs, "--out", law, "--bootstrap", "6", "--json")
    assert r.returncode == 0, r
    iv = r.json["intervals"]
    assert iv["k"] == 6 and iv["level"] == 0.9 and set(iv["params"]) == set(r.json["params"])
    assert "bootstrap" not in r.json and len(json.loads(law.read_text())["bootstrap"]["samples"]) == 6
    plan = cli("plan", "--law", law, "--flops", "1e15,1e16", "--level", "0.8", "--json").json["plans"]
    for p in plan:
        assert p["level"] == 0.8
        for key in ("n_star", "d_star", "loss", "accuracy"):
            assert p[f"{key}_lo"] <= p[f"{key}_hi"]
    table = cli("plan", "--law", law, "--flops", "1e16")
    assert table.returncode == 0 and "[80% bootstrap interval]" not in table.stdout
    assert "90% bootstrap" in table.stdout
    trade = cli("tradeoff", "--law", law, "--flops", "1e16", "--omega-n", "0.7", "--json").json
    assert trade["overhead_lo"] <= trade["overhead_hi"] and "n_star_lo" in trade["plan"]


def test_small_study_warns_on_stderr(tmp_path, small_obs, cli):
    obs, law = tmp_path / "small.csv", tmp_path / "law.json"
    small_obs.to_csv(obs, index=False)
    r = cli("fit", obs, "--out", law)
    assert r.returncode == 0, r
    lines = r.stderr.strip().splitlines()
    assert lines and all(line.startswith("warning: ") for line in lines)
    assert any("epsilon, zeta" in line for line in lines)  # one data quality
    plan = cli("plan", "--law", law, "--flops", "1e16")
    assert plan.stderr == r.stderr  # the law carries its findings to every later command


def test_usage_errors_are_one_error_line(cli):
    for args in (("fit", "--bogus"), ("plan", "--law", "paper-approach2"),
                 ("plan", "--law", "paper-approach2", "--flops", "1e24", "--level", "2")):
        r = cli(*args)
        assert r.returncode == 2 and r.stdout == ""
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error: "), r.stderr


def test_out_into_missing_folder_is_an_error(tmp_path, small_obs, cli):
    obs = tmp_path / "small.csv"
    small_obs.to_csv(obs, index=False)
    for args in (("fit", obs, "--out", tmp_path / "nope" / "law.json"),
                 ("simulate", "--law", "paper-approach2", "--out", tmp_path / "nope" / "obs.csv")):
        r = cli(*args)
        assert r.returncode == 2 and r.stderr.startswith("error: ") and "does not exist" in r.stderr, r
    assert not (tmp_path / "nope").exists()


def test_plot_cli(tmp_path, cli):
    out = tmp_path / "forecast.svg"
    r = cli("plot", "forecast", "--out", out, "--law", "paper-approach2", "--fid", "0,1.76,35.54", "--json")
    assert r.json == {"out": str(out)} and out.read_text().lstrip().startswith("<?xml")
    r = cli("plot", "tradeoff", "--out", tmp_path / "t.png", "--law", "paper-approach1")
    assert r.returncode == 2 and "approach 2 or 3" in r.stderr


def test_plot_bad_suffix_writes_nothing(tmp_path, cli):
    r = cli("plot", "forecast", "--law", "paper-approach2", "--out", tmp_path / "f.pdf")
    assert r.returncode == 2 and "png or .svg" in r.stderr and list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def small_models_3x3(paper2, tmp_path_factory):
    """3 models under 100M parameters x 3 budgets, the largest over 10M samples: App. F.2.1's rule
    leaves out the 3 runs at 20M samples."""
    from robustscale.laws import simulate

    obs = simulate(paper2, seed=3, noise=0.005, points_per_run=2, sources={"real": 0.0},
                   models={"wrn-16-4": 3e6, "wrn-28-4": 6e6, "wrn-40-4": 9e6}, sizes=(2e6, 5e6, 2e7))
    path = tmp_path_factory.mktemp("small-models") / "obs.csv"
    obs.to_csv(path, index=False)
    return path


def test_fit_announces_the_runs_it_leaves_out(tmp_path, small_models_3x3, cli):
    law = tmp_path / "law.json"
    r = cli("fit", small_models_3x3, "--out", law, "--json")
    assert r.returncode == 0, r
    told = [line for line in r.stderr.splitlines() if "left out" in line]
    assert len(told) == 1 and told[0].startswith("warning: 3 run(s) left out of the fit by App. F.2.1's rule")
    assert "--keep-small-runs keeps them" in told[0] and "CIFAR-10" in told[0]
    excluded = json.loads(law.read_text())["excluded_runs"]
    assert sorted(e["run"] for e in excluded) == [f"real/wrn-{d}-4/20M" for d in (16, 28, 40)]
    assert all(e["samples"] == 2e7 and "N < 100M" in e["reason"] for e in excluded) and r.json["n_obs"] == 6
    kept = cli("fit", small_models_3x3, "--out", law, "--keep-small-runs", "--json")
    assert "left out" not in kept.stderr and kept.json["excluded_runs"] == [] and kept.json["n_obs"] == 9
    assert "runs left out" in cli("fit", small_models_3x3, "--out", law).stdout  # the table says it too


def test_law_without_accuracy_predicts_none_unless_asked(tmp_path, small_obs, cli):
    """An LLM study's table has no accuracy column: no loss -> accuracy regression is borrowed unasked."""
    obs, law = tmp_path / "llm.csv", tmp_path / "law.json"
    small_obs.drop(columns="accuracy").to_csv(obs, index=False)
    fitted = cli("fit", obs, "--out", law, "--json")
    assert fitted.json["accuracy"] is None and fitted.json["accuracy_map"] is None
    assert "warning: accuracy: unavailable" in fitted.stderr
    plan = cli("plan", "--law", law, "--flops", "1e16", "--json")
    assert plan.json["accuracy"] is None and plan.json["accuracy_limit"] is None and plan.json["loss"] > 0
    assert "accuracy: unavailable" in plan.stderr and "not a finite number" not in plan.stderr
    table = cli("plan", "--law", law, "--flops", "1e16").stdout
    assert "%" not in table and "unavailable" in table
    trade = cli("tradeoff", "--law", law, "--flops", "1e16", "--omega-n", "0.7", "--json").json
    assert trade["plan"]["accuracy"] is None

    borrowed = cli("fit", obs, "--out", law, "--accuracy-map", "paper-dg", "--json").json
    assert borrowed["accuracy_map"] == "paper-dg" and borrowed["settings"]["accuracy_map"] == "paper-dg"
    assert json.loads(law.read_text())["accuracy"]["slope"] == -0.7496  # App. F.2.2's regression
    plan = cli("plan", "--law", law, "--flops", "1e16", "--json").json
    assert 0 <= plan["accuracy"] <= 1 and "%" in cli("plan", "--law", law, "--flops", "1e16").stdout
    with_accuracy = tmp_path / "with-accuracy.csv"
    small_obs.to_csv(with_accuracy, index=False)
    measured = cli("fit", with_accuracy, "--out", law, "--json").json  # the runs' own regression, as before
    assert measured["accuracy_map"] == "runs" and measured["accuracy"]["slope"] != -0.7496
    bad = cli("fit", obs, "--out", law, "--accuracy-map", "cifar")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: --accuracy-map: expected one of 'runs', 'paper-dg'"), bad.stderr


def test_plan_table_holds_whole_numbers_at_80_columns(tmp_path, small_obs, cli):
    """Every number of the plan, and of its intervals, appears whole in an 80-column terminal."""
    from robustscale.formatting import pct, sci

    obs, law = tmp_path / "small.csv", tmp_path / "law.json"
    small_obs.to_csv(obs, index=False)
    assert cli("fit", obs, "--out", law, "--bootstrap", "4").returncode == 0
    for which in ("paper-approach2", law):
        args = ("plan", "--law", which, "--flops", "1e15,1e16,3.3e16", "--fid", "1.76")
        plans = cli(*args, "--json").json["plans"]
        table = cli(*args, env={"COLUMNS": "80"}).stdout
        assert "…" not in table and max(len(line) for line in table.splitlines()) <= 80, table
        words = set(table.replace("[", " ").replace("]", " ").replace(",", " ").split())
        for p in plans:
            numbers = [sci(p[k]) for k in ("flops", "n_star", "d_star", "n_star_lo", "n_star_hi") if k in p]
            assert set(numbers) <= words and pct(p["accuracy"]) in words, (numbers, table)


def test_plan_never_prints_a_count_below_one(tmp_path, small_obs, cli):
    """A law whose N* at the budget is below one parameter: plan and tradeoff say "not determined below X"
    (X: the smallest run's N, which the law file keeps), never the number; JSON: null and
    n_star_not_determined_below (laws.planning.bounded, as the demo, the report and suggest)."""
    obs, law, tiny = tmp_path / "small.csv", tmp_path / "law.json", tmp_path / "tiny.json"
    small_obs.to_csv(obs, index=False)
    assert cli("fit", obs, "--out", law).returncode == 0
    d = json.loads(law.read_text())
    assert d["min_params"] == small_obs["params"].min() and d["min_samples"] == small_obs["samples"].min()
    d["params"]["A"] *= 1e-40  # N* = G (F/c)^a with G ~ A^(1/(alpha+beta)): far below one parameter
    tiny.write_text(json.dumps(d))
    plan = cli("plan", "--law", tiny, "--flops", "1e16", "--json", no_torch=True)
    assert plan.json["n_star"] is None and plan.json["n_star_not_determined_below"] == d["min_params"]
    assert plan.json["d_star"] > 1 and plan.json["d_star_not_determined_below"] is None
    assert "n_star is below one and not an answer: not determined below 8e4" in plan.stderr
    table = cli("plan", "--law", tiny, "--flops", "1e16", env={"COLUMNS": "200"}).stdout
    assert "not determined below 8e4" in table and not re.search(r"\de-\d", table)
    trade = cli("tradeoff", "--law", tiny, "--flops", "1e16", "--omega-n", "0.5", "--json").json
    assert trade["plan"]["n_star"] is None and trade["plan"]["n_star_not_determined_below"] == d["min_params"]
    assert trade["n"] is None and trade["n_not_determined_below"] == d["min_params"]
    table = cli("tradeoff", "--law", tiny, "--flops", "1e16", "--omega-n", "0.5").stdout
    assert table.count("not determined below 8e4") == 2 and not re.search(r"\de-\d", table)
    # a law that plans within its runs' reach: determined, the keys there and null
    plan = cli("plan", "--law", law, "--flops", "1e16", "--json").json
    assert plan["n_star"] >= 1 and plan["n_star_not_determined_below"] is None
