"""FID of a shard store against a reference store: the laws' data-quality axis (§3.1, Table 1).

FID (Heusel et al., 2017) is the Fréchet distance between Gaussians fitted to Inception-v3 pool
features of two image sets. The pieces come from clean-fid (Parmar et al., 2022):
`cleanfid.inception_torchscript.InceptionV3W` (the TensorFlow-Inception TorchScript port of
StyleGAN2-ADA, weights `inception-2015-12-05.pt`) and `cleanfid.resize.build_resizer("clean")`
(anti-aliased PIL bicubic resize to 299×299).

Why not the libraries' own FID entry points: PyPI torchvision cannot import beside our torch, and
- torch-fidelity's package `__init__` imports its CLIP/VGG16/DINOv2 extractors, which import
  torchvision, so no torch_fidelity module can be imported at all;
- `cleanfid.fid` imports `cleanfid.utils` (torchvision.transforms) and `cleanfid.features`
  (`inception_pytorch`, torchvision), so `cleanfid.fid.frechet_distance` / `compute_fid` cannot be
  imported; the two modules used here import only torch, PIL and requests.
The Fréchet distance is therefore computed here (`frechet_distance`, `fid_from_features`).
"""

from __future__ import annotations

import os
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

from robustscale.data.store import open_store, set_fid
from robustscale.errors import RobustscaleError
from robustscale.progress import progress_bar

INCEPTION_FILE = "inception-2015-12-05.pt"  # the name InceptionV3W loads from its folder
FEATURE_DIM = 2048
# The usual FID sample size (Heusel et al., 2017; clean-fid's default for generated images).
DEFAULT_MAX_IMAGES = 50_000


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (rows = samples) of a feature matrix, in float64."""
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
                     ) -> float:
    """||mu1 - mu2||² + tr(S1 + S2 - 2 (S1 S2)^½).

    tr (S1 S2)^½ is the sum of square roots of the eigenvalues of S1^½ S2 S1^½ (similar to S1 S2,
    but symmetric PSD): two symmetric eigendecompositions instead of clean-fid's general sqrtm,
    faster and free of its spurious imaginary parts.
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise RobustscaleError(f"frechet_distance: statistics of different sizes "
                               f"{mu1.shape}/{sigma1.shape} and {mu2.shape}/{sigma2.shape}")
    w, v = np.linalg.eigh(sigma1)
    sqrt1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = sqrt1 @ sigma2 @ sqrt1
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """FID of two feature sets (rows = samples).

    With fewer samples than feature dimensions the covariances have low rank and
    tr (S1 S2)^½ = ||A1 A2ᵀ||_* / sqrt((n1-1)(n2-1)) (A = centred features), an n1×n2 SVD
    instead of 2048×2048 eigendecompositions.
    """
    f1, f2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    (n1, d), n2 = f1.shape, len(f2)
    if min(n1, n2) < 2 or f2.shape[1] != d:
        raise RobustscaleError(f"FID: expected two feature sets of >= 2 rows and equal width, got "
                               f"{f1.shape} and {f2.shape}")
    if max(n1, n2) >= d:
        return frechet_distance(*feature_statistics(f1), *feature_statistics(f2))
    mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)
    a1, a2 = f1 - mu1, f2 - mu2
    tr_covmean = np.linalg.svd(a1 @ a2.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    diff = mu1 - mu2
    return float(diff @ diff + (a1 ** 2).sum() / (n1 - 1) + (a2 ** 2).sum() / (n2 - 1)
                 - 2 * tr_covmean)


def inception_weights(path: str | os.PathLike | None = None,
                      cache_dir: str | os.PathLike | None = None, url: str | None = None) -> Path:
    """The Inception TorchScript file: `path` if given, else the cached one, else downloaded."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise RobustscaleError(f"{path}: inception weights not found (expected the TorchScript "
                                   f"file {INCEPTION_FILE})")
        return path
    from cleanfid.downloads_helper import inception_url

    url = url or inception_url
    cache = Path(cache_dir or os.path.expanduser("~/.cache/robustscale/inception"))
    target = cache / INCEPTION_FILE
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=f".{INCEPTION_FILE}.", suffix=".part")
    os.close(fd)
    try:
        # Our own download (not cleanfid's check_download_inception): a timeout, and no
        # half-written file left behind under the final name.
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as f:
            while block := response.read(1 << 20):
                f.write(block)
        os.replace(tmp, target)
    except OSError as e:
        raise RobustscaleError(f"inception weights: cannot download {url} ({e}); download it where "
                               f"a network allows and pass its path as inception_weights_path") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def load_inception(weights: str | os.PathLike, device=None):
    """clean-fid's InceptionV3W feature extractor (images in [0, 255], 299×299) from weights."""
    import torch
    from cleanfid.inception_torchscript import InceptionV3W

    weights = Path(weights)
    with tempfile.TemporaryDirectory() as folder:
        if weights.name != INCEPTION_FILE:  # InceptionV3W loads `<folder>/inception-2015-12-05.pt`
            os.symlink(weights.resolve(), Path(folder) / INCEPTION_FILE)
        try:
            model = InceptionV3W(str(weights.parent if weights.name == INCEPTION_FILE else folder),
                                 download=False)
        except (RuntimeError, ValueError, OSError) as e:
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise RobustscaleError(f"{weights}: not a TorchScript Inception model "
                                   f"({first_line})") from None
    return model.to(device or ("cuda" if torch.cuda.is_available() else "cpu")).eval()


def inception_features(source, indices: np.ndarray, model, batch_size: int = 64,
                       progress: bool = False) -> np.ndarray:
    """Pool features (n, 2048) of `source.read(indices)`, resized the clean-fid way."""
    import torch
    from cleanfid.resize import build_resizer

    resize = build_resizer("clean")
    device = next(model.parameters()).device
    features = np.empty((len(indices), FEATURE_DIM), np.float64)
    with progress_bar(len(indices), f"inception features of {source.name}", enabled=progress) as advance:
        for start in range(0, len(indices), batch_size):
            images, _ = source.read(indices[start:start + batch_size])
            if images.shape[-1] == 1:  # grayscale (Fashion-MNIST): Inception wants RGB
                images = np.repeat(images, 3, axis=-1)
            x = np.stack([resize(image) for image in images])  # float32 (n, 299, 299, 3) in [0, 255]
            with torch.no_grad():
                f = model(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous().to(device))
            features[start:start + len(images)] = f.double().cpu().numpy()
            advance(len(images))
    return features


def _sample(n: int, max_images: int, seed: int) -> np.ndarray:
    if n <= max_images:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(n, max_images, replace=False))


def compute_fid(store: str | os.PathLike, reference: str | os.PathLike,
                inception_weights_path: str | os.PathLike | None = None,
                max_images: int = DEFAULT_MAX_IMAGES, batch_size: int = 64, device=None,
                seed: int = 0, record: bool = True, progress: bool = False) -> dict:
    """FID of `store` against `reference` (both shard stores); recorded in store's manifest.

    Parameters
    ----------
    store, reference: shard-store folders (convert the real data with `robustscale data convert
        cifar10 --split train --out REAL`).
    inception_weights_path: `inception-2015-12-05.pt`; default: cached, else downloaded.
    max_images: images per side (a seeded random subset of larger stores).
    record: write the FID into `store/manifest.json` (atomically).

    Returns
    -------
    {"store", "reference", "fid", "images", "reference_images", "recorded"}
    """
    source, ref = open_store(store), open_store(reference)
    if max_images < 2:
        raise RobustscaleError(f"max_images: expected >= 2, got {max_images}")
    model = load_inception(inception_weights(inception_weights_path), device)
    features = [inception_features(s, _sample(len(s), max_images, seed), model, batch_size,
                                   progress) for s in (source, ref)]
    fid = fid_from_features(*features)
    if record:
        set_fid(store, fid)
    return {"store": str(store), "reference": str(reference), "fid": fid,
            "images": min(len(source), max_images), "reference_images": min(len(ref), max_images),
            "recorded": record}
