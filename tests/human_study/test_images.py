"""Image import and bad input: clear one-line errors, nothing written."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select
from studyutil import FASHION_CLASSES, Server, make_npz

from robustscale.errors import RobustscaleError
from robustscale.human_study.db import Image, Study
from robustscale.human_study.images import create_study


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
    ("no-predictions", "expected an array named 'predictions'"),
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
        np.savez(adv, images=x[:20], labels=y[:20] + 10, predictions=y[:20])
        np.savez(clean, images=x[:20], labels=y[:20] + 10)
    elif case == "no-predictions":
        np.savez(adv, images=x[:20], labels=y[:20])
    elif case == "predictions":
        pred = tmp_path / "p.npy"
        np.save(pred, y[:7])
    else:
        adv = tmp_path / "nope.npz"
    with pytest.raises(RobustscaleError, match=message):
        create_study(sessions, "bad", adv, clean, pred)
    assert _count(sessions, Study) == 0 and _count(sessions, Image) == 0


def test_no_predictions_only_when_asked(tmp_path, sessions, fmnist_test):
    """Without predictions every image is shown and deceptive/ambiguous are unknown."""
    from robustscale.human_study.results import score_study

    x, y = fmnist_test
    np.savez(tmp_path / "a.npz", images=x[:8], labels=y[:8], classes=np.array(FASHION_CLASSES))
    info = create_study(sessions, "np", tmp_path / "a.npz", tmp_path / "a.npz",
                        require_predictions=False)
    assert (info["images"], info["robust"]) == (8, 0)
    result = score_study(sessions, "np")
    # nobody answered: 8 unrated images, not "0 valid, 8 invalid"
    assert (result["unrated"], result["valid"], result["invalid"]) == (8, 0, 0)
    assert result["deceptive"] is None and result["ambiguous"] is None


def test_attention_checks_are_robust_clean_images_spread_through_the_study(tmp_path, sessions,
                                                                          fmnist_test):
    x, y = fmnist_test
    make_npz(tmp_path / "eval", x[:40], y[:40], n_robust=8)
    info = create_study(sessions, "s", tmp_path / "eval", tmp_path / "eval", batch_size=10,
                        attention_checks=0.2)
    # 8 checks make a fifth of the 40 images a rater sees; the 32 attacked images are unchanged
    assert (info["images"], info["attention_checks"], info["robust"], info["total"]) == (32, 8, 8, 40)
    with sessions() as s:
        rows = s.scalars(select(Image).order_by(Image.position)).all()
    checks = [im for im in rows if im.attention]
    assert sorted(im.index for im in checks) == list(range(8))  # the robust images
    assert all(im.adversarial_png == im.clean_png and im.prediction == im.label for im in checks)
    gaps = np.diff([im.position for im in checks])
    assert checks[0].position > 0 and gaps.min() >= 3  # spread, never in a clump
    with pytest.raises(RobustscaleError, match="need as many robust images"):
        create_study(sessions, "t", tmp_path / "eval", tmp_path / "eval", attention_checks=0.5)


def test_serve_refuses_a_missing_database_and_says_where_it_serves(tmp_path, fmnist_test, cli):
    """Started from another folder, serve silently made an empty database before the fix."""
    missing = tmp_path / "elsewhere" / "robustscale-study.db"
    p = cli("study", "serve", "--db", f"sqlite:///{missing}", "--port", "1")
    assert p.returncode == 2 and "--create" in p.stderr and str(missing) in p.stderr
    assert not missing.exists()
    server = Server(f"sqlite:///{tmp_path / 'new.db'}", extra=("--create",))
    server.stop()
    line = server.proc.stderr.read().decode()
    assert f"serving {server.url} (database sqlite:///{tmp_path / 'new.db'}, 0 studies)" in line


def test_cli_errors_are_one_line_exit_2(tmp_path, fmnist_test, cli):
    x, y = fmnist_test
    adv, clean = make_npz(tmp_path, x[:20], y[:20])
    make_npz(tmp_path / "ev", x[:20], y[:20], n_robust=2)
    np.savez(tmp_path / "nopred.npz", images=x[:20], labels=y[:20])
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    for args, message in (
            (["create", "--adversarial", bad, "--clean", clean, "--name", "s"], "not a readable"),
            (["create", "--adversarial", tmp_path / "nopred.npz", "--clean", clean, "--name", "s"],
             "'predictions'"),
            (["add-rater", "nostudy", "alice", "--days", "-1"], "positive number of days"),
            (["add-rater", "nostudy", "alice"], "no such study"),
            (["score", "nostudy"], "no such study"),
            (["export", "nostudy", "--out", tmp_path / "a.csv"], "no such study"),
            # files with robust images hold every attacked image: "9701 of 10000" before the fix
            (["create", "--adversarial", tmp_path / "ev", "--clean", tmp_path / "ev", "--name", "s",
              "--total", "10000"], "--total 10000: "),
            (["create", "--adversarial", tmp_path / "ev", "--clean", tmp_path / "ev", "--name", "s",
              "--attention-checks", "1.5"], "--attention-checks 1.5: expected a share")):
        p = cli("study", *args, "--db", db)
        assert p.returncode == 2, p
        assert p.stderr.startswith("error: ") and p.stderr.count("\n") == 1, p.stderr
        assert message in p.stderr and p.stdout == ""
    assert not (tmp_path / "a.csv").exists()
    p = cli("study", "create", "--adversarial", tmp_path / "nopred.npz", "--clean", clean,
            "--name", "s", "--no-predictions", "--db", db, "--json")
    assert p.returncode == 0 and p.json["images"] == 20
    p = cli("study", "score", "s", "--db", "nosuchdb://x")
    assert p.returncode == 2 and p.stderr.startswith("error: database URL nosuchdb://x: expected")
