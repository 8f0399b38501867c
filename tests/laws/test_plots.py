"""Each plot function writes a real image, also from a small single-source table."""

from robustscale.laws import Approach1, load_law
from robustscale.laws import plots

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


def test_forecast_reaches_1e30_by_default():
    import inspect

    assert inspect.signature(plots.plot_forecast).parameters["flops_range"].default[1] == 1e30  # Fig. 1


def test_matplotlib_backend_not_set_at_import():
    import subprocess
    import sys

    code = "import robustscale.laws.plots, sys; print('matplotlib' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "False", r.stderr
