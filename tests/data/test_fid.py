"""FID: the Fréchet distance against independent formulas, the weights error paths, and the whole
pipeline (store reads, clean-fid resize, InceptionV3W wrapper, manifest recording) run with a
small TorchScript network in place of the Inception weights, which this machine cannot download.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import linalg
from torch import nn

from robustscale.data.convert import convert
from robustscale.data.fid import (
    compute_fid,
    feature_statistics,
    fid_from_features,
    frechet_distance,
    inception_features,
    inception_weights,
    load_inception,
)
from robustscale.data.store import open_store
from robustscale.errors import RobustscaleError


def test_frechet_distance_matches_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    a, b = rng.uniform(0.1, 2, 16), rng.uniform(0.1, 2, 16)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def _scipy_fid(f1, f2):
    """The textbook computation (Heusel et al., 2017; clean-fid): scipy.linalg.sqrtm of S1 S2."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


@pytest.mark.parametrize("n1,n2", [(400, 300), (20, 13)])  # covariance route and low-rank route
def test_fid_from_features_matches_scipy_sqrtm(n1, n2):
    rng = np.random.default_rng(1)
    mix = rng.normal(size=(32, 32))
    f1 = rng.normal(size=(n1, 32)) @ mix
    f2 = rng.normal(0.5, 1.0, size=(n2, 32)) @ rng.normal(size=(32, 32))
    fid = fid_from_features(f1, f2)
    assert fid > 1.0
    assert fid == pytest.approx(_scipy_fid(f1, f2), rel=1e-6)
    assert abs(fid_from_features(f1, f1)) < 1e-6 * fid
    (mu1, s1), (mu2, s2) = feature_statistics(f1), feature_statistics(f2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(fid, rel=1e-6)


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(RobustscaleError, match="inception weights not found"):
        inception_weights(tmp_path / "nope.pt")


def test_failed_download_is_a_clear_error(tmp_path):
    with pytest.raises(RobustscaleError, match="cannot download .*inception_weights_path"):
        inception_weights(cache_dir=tmp_path, url="http://127.0.0.1:9/inception-2015-12-05.pt")
    assert list(tmp_path.iterdir()) == []  # no partial file left behind


def test_not_torchscript_is_a_clear_error(tmp_path):
    bad = tmp_path / "weights.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(RobustscaleError, match="not a TorchScript Inception model"):
        load_inception(bad, "cpu")


class _Features(nn.Module):
    """Stand-in for the Inception graph: its interface (`layers`, 299x299 in, 2048 out)."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(3, 8, 8, 8), nn.Tanh(), nn.AdaptiveAvgPool2d(16),
                                    nn.Flatten())

    def forward(self, x, return_features: bool = False):
        return self.layers(x)


@pytest.fixture(scope="module")
def stand_in_weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "stand-in.pt"
    torch.jit.script(_Features()).save(str(path))
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory, fashion_mnist):
    root = tmp_path_factory.mktemp("stores")
    _, _, xte, yte = fashion_mnist
    np.savez(root / "a.npz", image=xte[:40], label=yte[:40])
    np.savez(root / "b.npz", image=255 - xte[40:80], label=yte[40:80])  # inverted: far away
    for name in ("a", "b", "a2"):
        convert(root / f"{name[0]}.npz", root / name)
    return root


def test_compute_fid_pipeline_records_fid(stores, stand_in_weights):
    a = open_store(stores / "a")
    model = load_inception(stand_in_weights, "cpu")
    idx = np.arange(len(a))
    direct = fid_from_features(inception_features(a, idx, model),
                               inception_features(open_store(stores / "b"), idx, model))
    result = compute_fid(stores / "a", stores / "b", stand_in_weights, batch_size=16, device="cpu")
    assert result["fid"] == pytest.approx(direct, rel=1e-6)
    assert result["fid"] > 1e-3 and result["images"] == result["reference_images"] == 40
    assert json.loads((stores / "a" / "manifest.json").read_text())["fid"] == result["fid"]
    assert open_store(stores / "a").fid == result["fid"]
    same = compute_fid(stores / "a2", stores / "a", stand_in_weights, device="cpu")
    assert abs(same["fid"]) < 1e-3 * result["fid"]


def test_fid_cli_json_and_error(stores, stand_in_weights, tmp_path, cli):
    args = ["data", "fid", stores / "b", "--reference", stores / "a", "--device", "cpu", "--max-images", "24",
            "--json"]
    ok = cli(*args, "--inception-weights", stand_in_weights, timeout=120)
    assert ok.returncode == 0, ok.stderr
    out = ok.json
    assert out["fid"] > 0 and out["recorded"] is True
    assert open_store(stores / "b").fid == pytest.approx(out["fid"])
    bad = cli(*args, "--inception-weights", tmp_path / "missing.pt", timeout=120)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "inception weights not found" in bad.stderr
