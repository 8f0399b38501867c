"""collect -> fit -> report: every figure written and showing data, index.html with parameters and
intervals; a report on a study that is not the paper's."""

from __future__ import annotations

import json

import numpy as np
import pytest
from markupsafe import escape

from robustscale.errors import RobustscaleError
from robustscale.laws import Approach2, load_law, save_law
from robustscale.report import FIGURES, write_report
from robustscale.runs import collect


def ink_fraction(png) -> tuple[float, float]:
    """(share of pixels that are not the background colour, pixel std) of an image file."""
    import matplotlib.image as mpimg

    img = mpimg.imread(png)[..., :3]
    background = np.median(img.reshape(-1, 3), axis=0)
    ink = np.abs(img - background).sum(axis=-1) > 0.1
    return float(ink.mean()), float(img.std())


def plot_area_ink(png) -> float:
    """Ink inside the plot areas only: the middle of the image, away from titles and tick labels."""
    import matplotlib.image as mpimg

    img = mpimg.imread(png)[..., :3]
    h, w = img.shape[:2]
    mid = img[int(0.2 * h):int(0.8 * h), int(0.15 * w):int(0.95 * w)]
    # coloured (non-grey) pixels: data markers, lines and contours, never axes or text
    return float(((mid.max(axis=-1) - mid.min(axis=-1)) > 0.15).mean())


def test_collect_fit_report_every_figure(study_runs, tmp_path, cli):
    obs_path = tmp_path / "obs.csv"
    collect(study_runs, obs_path)
    save_law(Approach2().fit(obs_path), tmp_path / "law.json")
    out = tmp_path / "report"
    r = cli("report", study_runs, "--law", tmp_path / "law.json", "--out", out, "--json")
    assert r.returncode == 0, r
    result = r.json
    assert sorted(result["figures"]) == sorted(FIGURES)
    for name in FIGURES:
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        ink, std = ink_fraction(png)
        assert ink > 0.03 and std > 0.05, (name, ink, std)
        assert plot_area_ink(png) > 0.002, name  # coloured data inside the axes, not empty axes
    html = (out / "index.html").read_text()
    for name in FIGURES:
        assert f'src="{name}.png"' in html
    for p in ("alpha", "beta", "E"):
        assert f"<td>{p}</td>" in html
    assert result["runs"] == 9 and result["observations"] == 36
    law = json.loads((out / "law.json").read_text())
    assert law["params"]["alpha"] == pytest.approx(result["approach2"]["params"]["alpha"])


def test_report_from_table_fits_with_bootstrap_intervals(study_runs, tmp_path):
    obs_path = tmp_path / "obs.parquet"
    collect(study_runs, obs_path)
    result = write_report(obs_path, tmp_path / "rep", bootstrap=3)
    law = result["approach2"]
    assert law["k"] == 3 and law["level"] == 0.9
    lo, hi = law["intervals"]["alpha"]
    assert lo <= hi
    assert result["approach1"]["params"]["real"]["a"] > 0  # bigger models at bigger budgets: N* grows
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "90% bootstrap interval" in html and f"[{lo:.4g}, {hi:.4g}]" in html
    # the synthetic law is L = 0.5 + 400/N^0.5 + 30/D^0.45, but over 4x in D the guard finds beta
    # flat: the report anchors the exponents to the paper's law and says so, on the page and in words
    assert law["anchored"]["prior"] == "paper-approach2" and "beta" in law["anchored"]["reason"]
    paper = load_law("paper-approach2").params_
    assert (law["params"]["alpha"], law["params"]["beta"]) == (paper["alpha"], paper["beta"])
    assert "Anchored fit" in html and "anchored fit" in result["story"]
    # one law, one story: the plan at 10x the largest budget, its intervals, and the opening paragraph
    plan = result["plan"]
    assert plan["flops"] == pytest.approx(10 * result["trained"]["flops"][1])
    assert plan["n_star_lo"] <= plan["n_star_hi"] and 0 <= plan["accuracy_lo"] <= plan["accuracy_hi"] <= 1
    assert law["plans"][0] == plan
    story = result["story"]
    assert story.startswith("9 runs (3 model sizes from 78k to 272k parameters")
    assert f"N^-{law['params']['alpha']:.2f}" in story and "90% interval" in story
    shown = str(escape(story))  # as the template writes it (apostrophes escaped)
    assert shown in html and html.index(shown) < html.index("<h2>")  # the page opens with it
    saved = json.loads((tmp_path / "rep" / "law.json").read_text())
    assert saved["params"] == law["params"] and saved["bootstrap"]["k"] == 3


def test_report_bad_inputs(tmp_path):
    with pytest.raises(RobustscaleError, match="no such runs directory or observations table"):
        write_report(tmp_path / "missing.csv", tmp_path / "out")


def test_report_on_a_study_that_is_not_the_papers(chinchilla_csv, tmp_path, cli):
    """Chinchilla-shaped runs (140 model sizes, FID 0, no accuracy): the report claims nothing the
    table does not hold, announces the CIFAR-10 thresholds it applied, and only our own warnings
    reach the terminal (none of matplotlib's)."""
    out = tmp_path / "llm"
    r = cli("report", chinchilla_csv, "--out", out, "--bootstrap", "0", "--json")
    assert r.returncode == 0, r
    assert all(line.startswith("warning: ") for line in r.stderr.splitlines()), r.stderr
    left_out = [line for line in r.stderr.splitlines() if "left out" in line]
    assert len(left_out) == 1 and "CIFAR-10" in left_out[0] and "--keep-small-runs" in left_out[0]
    result = r.json
    law = result["approach2"]
    assert law["excluded_runs"] and all(e["params"] < 1e8 for e in law["excluded_runs"])
    story = result["story"]
    assert story.startswith("240 runs (140 model sizes from 44M to 16B parameters"), story
    assert "adversarial" not in story and "accuracy" not in story and "CIFAR-10" in story
    assert law["accuracy_map"] is None and all(p["accuracy"] is None for p in law["plans"])
    html = (out / "index.html").read_text()
    assert "predicted robust accuracy" not in html and "Robust accuracy: not predicted" in html
    assert {"isoflop", "law_fit", "forecast", "tradeoff"} <= set(result["figures"])
    # one evaluation per run: no training curves to take an envelope of, and the page says why
    assert "training curve" in result["failed_figures"]["training_curves"]
