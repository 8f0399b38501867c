"""Raters, tokens, the rating order, answers and their undo, revoking."""

from __future__ import annotations

import pytest
from studyutil import make_npz

from robustscale.errors import RobustscaleError
from robustscale.human_study.answers import (
    AnswerRejected,
    add_rater,
    answered_count,
    rater_for_token,
    rater_sequence,
    record_answer,
    revoke_rater,
    undo_answer,
)
from robustscale.human_study.images import create_study


@pytest.fixture
def study(tmp_path, sessions, fmnist_test):
    x, y = fmnist_test
    adv, clean = make_npz(tmp_path, x[:5], y[:5])
    create_study(sessions, "s", adv, clean, batch_size=2)
    return sessions


def test_tokens(study):
    sessions = study
    rater, token = add_rater(sessions, "s", "alice")
    rid, secret = token.split(".")
    assert int(rid) == rater.id and len(secret) >= 32  # 192 random bits
    with pytest.raises(RobustscaleError, match="already in study"):
        add_rater(sessions, "s", "alice")
    for days in (-1, 0):
        with pytest.raises(RobustscaleError, match="positive number of days"):
            add_rater(sessions, "s", "bob", days=days)
    with sessions() as s:
        assert rater_for_token(s, token).name == "alice"
        assert rater_for_token(s, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        for bad in (f"999.{secret}", "garbage", f"{2 ** 70}.{secret}", f"\u00b2.{secret}",
                    f"{rid}.{secret}\u00b2", f"{rid}.{secret * 10}", f" {token}"):
            assert rater_for_token(s, bad) is None, bad
    assert revoke_rater(sessions, "s", "alice")["rater"] == "alice"
    with sessions() as s:
        assert rater_for_token(s, token) is None
    with pytest.raises(RobustscaleError, match="no such rater"):
        revoke_rater(sessions, "s", "nobody")


def test_sequence():
    # per batch: adversarial images, then the same images clean
    assert rater_sequence([1, 2, 3, 4, 5], 2) == [
        (1, "adversarial"), (2, "adversarial"), (1, "clean"), (2, "clean"),
        (3, "adversarial"), (4, "adversarial"), (3, "clean"), (4, "clean"),
        (5, "adversarial"), (5, "clean")]


def test_undo_only_within_the_current_phase(study):
    sessions = study
    rater, _ = add_rater(sessions, "s", "alice")
    with sessions() as s:
        from robustscale.human_study.answers import study_image_ids

        seq = rater_sequence(study_image_ids(s, rater.study_id), 2)

        def answer(k, choice=1):
            return record_answer(s, rater, seq, *seq[k], choice, "high", 10, 1.0).done

        with pytest.raises(AnswerRejected, match="nothing to undo"):
            undo_answer(s, rater, seq, 2)  # no answer yet
        assert answer(0, choice=7) == 1
        assert undo_answer(s, rater, seq, 2).done == 0  # same phase: taken back
        assert answered_count(s, rater.id) == 0
        assert answer(0, choice=3) == 1  # answered again, differently
        assert answer(1) == 2
        # the 3rd item is the first clean one: the adversarial phase is over, nothing to undo
        with pytest.raises(AnswerRejected, match="nothing to undo"):
            undo_answer(s, rater, seq, 2)
        assert answer(2) == 3
        assert undo_answer(s, rater, seq, 2).done == 2
        with pytest.raises(AnswerRejected):
            answer(3)  # out of order after the undo: item 2 comes first
