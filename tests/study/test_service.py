"""Import, raters, export and bad input: clear one-line errors, nothing written."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
from sqlalchemy import func, select

from robustscale.errors import RobustscaleError
from robustscale.study.db import Image, Study
from robustscale.study.service import (add_rater, create_study, export_answers, rater_for_token,
                                       rater_sequence)
from studyutil import make_npz


def _count(sessions, model) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_create_from_evaluate_folder(tmp_path, sessions, fmnist_test):
    x, y = fmnist_test
    make_npz(tmp_path / "eval", x[:40], y[:40], n_robust=8)
    info = create_study(sessions, "s", tmp_path / "eval", tmp_path / "eval", batch_size=10)
    # robust images (prediction == label) are not attack successes: not shown to raters
    assert (info["images"], info["robust"], info["total"], info["batches"]) == (32, 8, 40, 4)
    assert info["classes"][0] == "T-shirt/top"
    with sessions() as s:
        first = s.scalar(select(Image).where(Image.position == 0))
        assert (first.index, first.label, first.prediction) == (8, int(y[8]), int(y[8] + 1) % 10)
        assert first.adversarial_png[:8] == b"\x89PNG\r\n\x1a\n"


def test_float_images_and_separate_predictions(tmp_path, sessions, fmnist_test):
    x, y = fmnist_test
    np.savez(tmp_path / "a.npz", images=x[:12] / 255.0, labels=y[:12])
    np.savez(tmp_path / "c.npz", images=x[:12], labels=y[:12])
    np.save(tmp_path / "p.npy", (y[:12] + 3) % 10)
    info = create_study(sessions, "f", tmp_path / "a.npz", tmp_path / "c.npz", tmp_path / "p.npy",
                        total=10000)
    assert (info["images"], info["robust"], info["classes"][0]) == (12, 9988, "airplane")


@pytest.mark.parametrize("case, message", [
    ("corrupt", "not a readable .npz"),
    ("count", "expected 20 clean images"),
    ("labels", "'labels' differ"),
    ("range", "labels must lie in 0..9"),
    ("predictions", "expected 20 predictions"),
    ("missing", "no such file"),
])
def test_bad_input_writes_nothing(tmp_path, sessions, fmnist_test, case, message):
    x, y = fmnist_test
    adv, clean = make_npz(tmp_path, x[:20], y[:20])
    pred = None
    if case == "corrupt":
        adv.write_bytes(adv.read_bytes()[:300])
    elif case == "count":
        np.savez(clean, images=x[:19], labels=y[:19])
    elif case == "labels":
        np.savez(clean, images=x[:20], labels=(y[:20] + 1) % 10)
    elif case == "range":
        np.savez(adv, images=x[:20], labels=y[:20] + 10)
        np.savez(clean, images=x[:20], labels=y[:20] + 10)
    elif case == "predictions":
        pred = tmp_path / "p.npy"
        np.save(pred, y[:7])
    else:
        adv = tmp_path / "nope.npz"
    with pytest.raises(RobustscaleError, match=message):
        create_study(sessions, "bad", adv, clean, pred)
    assert _count(sessions, Study) == 0 and _count(sessions, Image) == 0


def test_cli_errors_are_one_line_exit_2(tmp_path, fmnist_test):
    x, y = fmnist_test
    adv, clean = make_npz(tmp_path, x[:20], y[:20])
    adv.write_bytes(b"garbage")
    db = f"sqlite:///{tmp_path / 'cli.db'}"

    def run(*args):
        return subprocess.run([sys.executable, "-m", "robustscale", "study", *args, "--db", db],
                              capture_output=True, text=True)

    for args in (["create", "--adversarial", str(adv), "--clean", str(clean), "--name", "s"],
                 ["add-rater", "nostudy", "alice"], ["score", "nostudy"],
                 ["export", "nostudy", "--out", str(tmp_path / "a.csv")]):
        p = run(*args)
        assert p.returncode == 2, p.stderr
        assert p.stderr.startswith("error: ") and p.stderr.count("\n") == 1, p.stderr
        assert p.stdout == ""
    assert not (tmp_path / "a.csv").exists()
    p = subprocess.run([sys.executable, "-m", "robustscale", "study", "score", "s", "--db",
                        "nosuchdb://x"], capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.startswith("error: --db nosuchdb://x: expected")


def test_tokens_sequence_and_export(tmp_path, sessions, fmnist_test):
    x, y = fmnist_test
    adv, clean = make_npz(tmp_path, x[:5], y[:5])
    create_study(sessions, "s", adv, clean, batch_size=2)
    rater, token = add_rater(sessions, "s", "alice")
    rid, secret = token.split(".")
    assert int(rid) == rater.id and len(secret) >= 32  # 192 random bits
    with pytest.raises(RobustscaleError, match="already in study"):
        add_rater(sessions, "s", "alice")
    _, expired = add_rater(sessions, "s", "bob", days=-1)
    with sessions() as s:
        assert rater_for_token(s, token).name == "alice"
        assert rater_for_token(s, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert rater_for_token(s, f"999.{secret}") is None
        assert rater_for_token(s, "garbage") is None
        assert rater_for_token(s, expired) is None
    # per batch: adversarial images, then the same images clean
    assert rater_sequence([1, 2, 3, 4, 5], 2) == [
        (1, "adversarial"), (2, "adversarial"), (1, "clean"), (2, "clean"),
        (3, "adversarial"), (4, "adversarial"), (3, "clean"), (4, "clean"),
        (5, "adversarial"), (5, "clean")]
    assert export_answers(sessions, "s", tmp_path / "a.csv") == 0
    assert next(csv.reader(open(tmp_path / "a.csv")))[:3] == ["study", "rater", "kind"]
