"""The dataset readers on small files in each owner's format: pixels, labels and class names as
written, archive and extracted folder alike, radii per norm, and one `error:` line for a missing or
truncated file."""

from __future__ import annotations

import json
import shutil
import tarfile
import zipfile

import numpy as np
import pytest
from archives import ARCHIVES, MAKERS, _images, run

from robustscale.data.datasets import (
    CIFAR100_CLASSES,
    DATASETS,
    class_names,
    default_eps,
    eps_note,
    load_dataset,
)
from robustscale.errors import RobustscaleError


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """{name: folder holding the dataset's archive / files}, made once."""
    root = tmp_path_factory.mktemp("datasets")
    for name, make in MAKERS.items():
        make(root / name)
    return {name: root / name for name in MAKERS}


def test_cifar100_pixels_labels_and_names(folders):
    for split, n, seed in (("train", 300, 0), ("test", 100, 1)):
        images, labels = load_dataset("cifar100", split, folders["cifar100"])
        fine = np.arange(n) % 100
        assert images.dtype == np.uint8 and images.shape == (n, 32, 32, 3)
        assert np.array_equal(labels, fine) and np.array_equal(images, _images(fine, 32, 100, seed))
    assert class_names("cifar100", folders["cifar100"]) == CIFAR100_CLASSES and len(CIFAR100_CLASSES) == 100


def test_svhn_pixels_and_digit_zero(folders):
    images, labels = load_dataset("svhn", "test", folders["svhn"])
    digits = np.arange(100) % 10
    assert np.array_equal(labels, digits)  # the file's 10 is the digit 0
    assert np.array_equal(images, _images(digits, 32, 10, 1))
    assert class_names("svhn") == tuple("0123456789")


def colour(images: np.ndarray) -> np.ndarray:
    """Mean RGB per image."""
    return images.reshape(len(images), -1, 3).mean(1)


def test_tiny_imagenet_labels_from_wnids_and_val_annotations(folders):
    images, labels = load_dataset("tiny-imagenet", "train", folders["tiny-imagenet"])
    assert images.shape == (400, 64, 64, 3) and np.array_equal(labels, np.repeat(np.arange(200), 2))
    # JPEG blurs the noise but keeps each image's colour (its class's); the greyscale JPEG comes back as RGB
    colour_error = np.abs(colour(images) - colour(_images(labels, 64, 200, 0))).max(1)
    assert np.delete(colour_error, 3).max() < 2 and colour_error[3] > 2
    assert (images[3, ..., 0] == images[3, ..., 1]).all()
    val_images, val_labels = load_dataset("tiny-imagenet", "test", folders["tiny-imagenet"])
    assert np.array_equal(val_labels, (np.arange(100) * 7) % 200)
    assert np.abs(colour(val_images) - colour(_images(val_labels, 64, 200, 1))).max() < 2
    names = class_names("tiny-imagenet", folders["tiny-imagenet"])
    # label i is line i of wnids.txt (written in reverse order), named by words.txt
    assert len(names) == 200 and names[0] == "thing 0, object 0" and names[199] == "thing 199, object 199"


@pytest.mark.parametrize("name", ["cifar100", "tiny-imagenet"])
def test_extracted_folder_reads_as_the_archive(folders, tmp_path, name):
    archive = folders[name] / ARCHIVES[name]
    if archive.suffix == ".zip":
        zipfile.ZipFile(archive).extractall(tmp_path)
    else:
        tarfile.open(archive).extractall(tmp_path, filter="data")
    for split in ("train", "test"):
        a, b = load_dataset(name, split, folders[name]), load_dataset(name, split, tmp_path)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_default_radii_per_norm():
    for name in ("cifar10", "cifar100", "svhn", "tiny-imagenet"):
        assert default_eps(name, "linf") == 8 / 255  # DM-Improves-AT's L-inf radius on all four
    for name in ("cifar10", "cifar100", "svhn"):
        assert default_eps(name) == 8 / 255 and default_eps(name, "l2") == 128 / 255
        assert eps_note(name, "l2") is None
    # no anchor publishes TinyImageNet under L2: 128/255 scaled by sqrt(64x64 / 32x32) = 2, and said so
    assert default_eps("tiny-imagenet", "l2") == pytest.approx(256 / 255)
    assert "no published l2 radius" in eps_note("tiny-imagenet", "l2")
    assert DATASETS["tiny-imagenet"].shape == (3, 64, 64) and DATASETS["tiny-imagenet"].num_classes == 200
    with pytest.raises(RobustscaleError, match="norm: expected one of linf, l2"):
        default_eps("cifar100", "l1")


@pytest.mark.parametrize("name", list(MAKERS))
@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_missing_or_truncated_file_is_one_error_line(folders, tmp_path, name, damage):
    data = tmp_path / "data"
    data.mkdir()
    expected = ARCHIVES[name]
    if damage == "truncated":
        raw = (folders[name] / expected).read_bytes()
        (data / expected).write_bytes(raw[:len(raw) // 2])
        if name == "svhn":
            shutil.copy(folders[name] / "test_32x32.mat", data)
    code, out, err = run("data", "convert", name, "--data-dir", data, "--out", tmp_path / "store")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert expected in lines[0] and (damage == "missing" or "truncated" in lines[0]), lines[0]
    assert not (tmp_path / "store").exists() and out == ""


def test_synthetic_store_must_match_the_dataset(folders, tmp_path):
    """A DeepMind-format store of 32x32 images cannot train a TinyImageNet (64x64, 200 classes) model."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "synth.npz", image=rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8),
             label=rng.integers(0, 10, 16))
    code, out, err = run("data", "convert", tmp_path / "synth.npz", "--out", tmp_path / "synth", "--json")
    assert code == 0 and json.loads(out)["shape"] == [32, 32, 3]
    code, _, err = run("train", "--model", "wrn-10-1", "--data", "tiny-imagenet", "--data-dir",
                       folders["tiny-imagenet"], "--samples", "32", "--eval-images", "8", "--synthetic",
                       tmp_path / "synth", "--out", tmp_path / "run", "--no-progress")
    assert code == 2 and "needs (64, 64, 3) and 200" in err, err
