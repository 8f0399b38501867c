"""Each plot function writes a real image, also from a small single-source table."""

from robustscale.laws import Approach1, load_law, plots

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path):
    return path.read_bytes()[:8] == PNG and path.stat().st_size > 5000


def test_all_plots_small_real_table(tmp_path, small_obs, small_law):
    law2 = small_law
    law1 = Approach1().fit(small_obs)
    assert _is_png(plots.plot_isoflop(small_obs, law2, tmp_path / "iso.png"))
    assert _is_png(plots.plot_envelope(small_obs, tmp_path / "env.png", law=law1))
    assert _is_png(plots.plot_forecast(law2, tmp_path / "fc.png", fid=0.0, flops_range=(1e12, 1e18)))
    assert _is_png(plots.plot_tradeoff(law2, tmp_path / "tr.png", flops=1e15))
    assert _is_png(plots.plot_forecast(law1, tmp_path / "fc1.png", metric="loss"))


def test_paper_plots(tmp_path, sim_obs):
    law = load_law("paper-approach2")
    assert _is_png(plots.plot_isoflop(sim_obs, law, tmp_path / "iso.png"))
    assert _is_png(plots.plot_envelope(sim_obs, tmp_path / "env.png", source="PFGM++"))


def test_missing_output_folder_is_an_error(tmp_path):
    import pytest

    from robustscale.errors import RobustscaleError

    with pytest.raises(RobustscaleError, match="does not exist"):
        plots.plot_forecast(load_law("paper-approach2"), tmp_path / "nope" / "fc.png")
    assert not (tmp_path / "nope").exists()


def test_forecast_reaches_1e30_by_default(tmp_path):
    """Fig. 1's horizon: the default forecast draws exactly what one to 1e30 FLOPs draws, not one to 1e25."""
    import matplotlib.image as mpimg
    import numpy as np

    law = load_law("paper-approach2")
    default = mpimg.imread(plots.plot_forecast(law, tmp_path / "default.png"))
    to_1e30 = mpimg.imread(plots.plot_forecast(law, tmp_path / "1e30.png", flops_range=(1e18, 1e30)))
    to_1e25 = mpimg.imread(plots.plot_forecast(law, tmp_path / "1e25.png", flops_range=(1e18, 1e25)))
    assert np.array_equal(default, to_1e30) and not np.array_equal(default, to_1e25)


def test_many_model_sizes_get_a_colour_bar_not_a_legend(tmp_path, monkeypatch, paper2):
    """140 model sizes (an LLM study's) are coloured on a scale with a colour bar: no legend of 140
    entries over the axes, and no library warning (tight_layout's) on the terminal."""
    import warnings

    import numpy as np

    from robustscale.laws import Approach2, simulate

    models = {f"m{i}": n for i, n in enumerate(np.geomspace(1e6, 1e9, 140))}
    obs = simulate(paper2, seed=2, noise=0.005, points_per_run=2, sources={"llm": 0.0}, models=models,
                   sizes=(2e6, 8e6))
    law = Approach2(exclude_small_runs=False).fit(obs)
    drawn, save = [], plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, out: drawn.append(fig) or save(fig, out))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        plots.plot_isoflop(obs, law, tmp_path / "iso.png")
        plots.plot_envelope(obs, tmp_path / "env.png")
        plots.plot_law_fit(obs, law, tmp_path / "fit.png")
    for fig in drawn:
        legends = [len(ax.get_legend().texts) for ax in fig.axes if ax.get_legend() is not None]
        assert all(n <= 3 for n in legends), legends
        assert any(ax.get_ylabel() == "parameters N" for ax in fig.axes)  # the colour bar of model sizes


def test_matplotlib_backend_not_set_at_import():
    import subprocess
    import sys

    code = "import robustscale.laws.plots, sys; print('matplotlib' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "False", r.stderr
