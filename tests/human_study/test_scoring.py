"""Scoring (§4.2, Table 4): constructed answers with the paper's counts give the paper's numbers."""

from __future__ import annotations

import numpy as np
import pytest

from robustscale.human_study.scoring import Ratings, fleiss_kappa, kappa_undefined, score, validity

# Paper §4 / Table 4 / App. G.2: 10000 test images, 7371 robust, 2629 attacked, 727 invalid,
# 39% of them deceptive, GPT-4 right on 1160.
N_TOTAL, N_ROBUST, N_ATTACKED, N_INVALID, N_VLM = 10000, 7371, 2629, 727, 1160
N_DECEPTIVE = 284  # round(0.39 * 727)


def paper_ratings() -> Ratings:
    """Three humans + a VLM whose answers have the paper's counts.

    Valid (1902): 1017 images right by all 3 humans, 785 by 2, 100 by 1 with high confidence
    -> 4721 human-correct answers. Invalid (727): 304 right by exactly one human (low
    confidence), 423 by none -> 304. Mean human correct: (4721 + 304) / 3 = 1675, i.e. Table 4's
    (7371 + 1675) / 10000 = 90.46% and (7371 + 4721/3) / 9273 = 96.46%."""
    rng = np.random.default_rng(0)
    n = N_ATTACKED
    labels = rng.integers(0, 10, n)
    preds = (labels + 1) % 10  # every prediction wrong: these are the successful attacks
    other = (labels + 2) % 10  # a wrong class that is not the prediction
    other2 = (labels + 3) % 10
    H = np.tile(other, (3, 1))
    high = np.zeros((3, n), bool)
    k = 0
    for count, n_right in ((1017, 3), (785, 2)):
        H[:n_right, k:k + count] = labels[k:k + count]
        k += count
    H[0, k:k + 100] = labels[k:k + 100]
    high[0, k:k + 100] = True
    k += 100
    assert k == 1902
    # invalid: 200 deceptive with one low-confidence right answer, 104 ambiguous with one;
    # 84 deceptive with none, 339 ambiguous with none.
    for count, right, dec in ((200, True, True), (104, True, False), (84, False, True),
                              (339, False, False)):
        sl = slice(k, k + count)
        H[:, sl] = np.stack([other[sl], other2[sl], other[sl]])
        if dec:
            H[1, sl] = preds[sl]
            H[2, sl] = preds[sl]
        if right:
            H[0, sl] = labels[sl]
        k += count
    assert k == n
    vlm = other.copy()
    vlm[:N_VLM] = labels[:N_VLM]  # VLM right only on valid images (1160 < 1902)
    clean = np.tile(labels, (3, 1))
    clean[0, :263] = other[:263]  # rater 0: 90% clean accuracy
    return Ratings(labels=labels, predictions=preds, human_adversarial=H, human_high=high,
                   human_clean=clean, vlm=vlm, n_total=N_TOTAL, n_robust=N_ROBUST)


def test_table4_arithmetic_from_paper_counts():
    r = score(paper_ratings())
    assert (r["valid"], r["invalid"]) == (1902, 727)
    assert (r["deceptive"], r["ambiguous"]) == (284, 443)
    assert round(100 * r["deceptive_fraction_of_invalid"]) == 39
    t4 = r["table4"]
    assert f"{100 * t4['model_all_data']:.2f}" == "73.71"
    assert f"{100 * t4['model_valid_data']:.2f}" == "79.49"
    assert f"{100 * t4['human_all_data']:.2f}" == "90.46"
    assert f"{100 * t4['human_valid_data']:.2f}" == "96.46"
    assert f"{100 * t4['model_invalid_as_robust']:.2f}" == "80.98"  # (7371 + 727) / 10000
    assert t4["counts"]["valid_total"] == 9273
    assert t4["counts"]["mean_human_correct_all"] == pytest.approx(1675)
    assert f"{100 * r['vlm']['accuracy_all_data']:.2f}" == "85.31"  # §4.1: GPT-4 85.31%
    assert f"{100 * r['vlm']['adversarial_accuracy']:.2f}" == "44.12"  # App. G.2: 1160/2629
    assert r["human_adversarial_accuracy"] == pytest.approx(1675 / 2629)
    assert r["human_clean_accuracy"] == pytest.approx((2629 * 3 - 263) / (3 * 2629))
    # rater 0's 100 high-confidence answers are all right; the rest by confidence "low"
    assert r["humans"][0]["adversarial_accuracy_high"] == 1.0
    assert r["humans"][0]["adversarial_accuracy_low"] == pytest.approx((1017 + 785 + 304) / 2529)


def test_validity_rules():
    labels = np.array([0, 0, 0, 0])
    H = np.array([[0, 0, 1, 1], [1, 2, 1, 1], [2, 1, 2, 1]])
    high = np.array([[False, True, False, False]] + [[False] * 4] * 2)
    vlm = np.array([0, 3, 0, 3])
    r = Ratings(labels, np.array([1, 1, 1, 1]), H, high, H, vlm, 100, 96)
    # 1 human (low) + VLM = 2 -> valid; 1 human high -> valid; VLM only -> invalid; none -> invalid
    assert validity(r).tolist() == [True, True, False, False]
    s = score(r)
    assert (s["deceptive"], s["ambiguous"]) == (2, 0)  # images 2, 3: 2+ humans say prediction 1


def test_fleiss_kappa_wikipedia_example():
    # Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories -> 0.210
    table = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
                      [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
                      [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    choices = np.array([np.repeat(np.arange(5), row) for row in table]).T  # (14 raters, 10 items)
    assert fleiss_kappa(choices, 5) == pytest.approx(0.210, abs=5e-4)
    # every answer the same class: 0/0, undefined (it was shown as 1.000), with the reason
    assert fleiss_kappa(np.zeros((3, 5), int), 5) is None
    assert "0/0" in kappa_undefined(np.zeros((3, 5), int), 5)
    assert fleiss_kappa(np.full((3, 5), -1), 5) is None
    assert kappa_undefined(np.full((3, 5), -1), 5) == "no image has 2 answers"
    assert kappa_undefined(choices, 5) is None


def test_score_says_why_kappa_is_undefined():
    """One image, three agreeing answers: kappa is null in the score, with the reason."""
    one = np.zeros((3, 1), int)
    r = score(Ratings(np.array([0]), np.array([1]), one, one > 0, one, None, 10, 9))
    assert r["fleiss_kappa_adversarial"] is None and r["fleiss_kappa_clean"] is None
    assert "0/0" in r["fleiss_kappa_undefined"]["adversarial"]


def test_score_cli_reproduces_table4_through_the_database(tmp_path, cli):
    """The paper's counts through the real pipeline: npz -> study create -> answers in SQLite ->
    `study score --json`."""
    from robustscale.human_study.answers import add_rater
    from robustscale.human_study.db import Answer, Image, make_engine, make_sessionmaker
    from robustscale.human_study.images import create_study

    r = paper_ratings()
    n = N_ATTACKED
    images = np.random.default_rng(1).integers(0, 256, (n, 8, 8, 1), dtype=np.uint8)
    np.savez(tmp_path / "adv.npz", images=images, labels=r.labels, predictions=r.predictions)
    np.savez(tmp_path / "clean.npz", images=images, labels=r.labels)
    db = f"sqlite:///{tmp_path / 's.db'}"
    sessions = make_sessionmaker(make_engine(db))
    create_study(sessions, "paper", tmp_path / "adv.npz", tmp_path / "clean.npz", total=N_TOTAL)
    raters = [add_rater(sessions, "paper", f"human{i}")[0] for i in range(3)]
    vlm = add_rater(sessions, "paper", "gpt-4", kind="vlm")[0]
    with sessions() as s:
        ids = [im.id for im in s.query(Image).order_by(Image.position)]
        rows = []
        for i, rater in enumerate(raters):
            for j in range(n):
                rows.append(dict(rater_id=rater.id, image_id=ids[j], phase="adversarial",
                                 position=2 * j, choice=int(r.human_adversarial[i, j]),
                                 high_confidence=bool(r.human_high[i, j])))
                rows.append(dict(rater_id=rater.id, image_id=ids[j], phase="clean",
                                 position=2 * j + 1, choice=int(r.human_clean[i, j]),
                                 high_confidence=True))
        rows += [dict(rater_id=vlm.id, image_id=ids[j], phase="adversarial", position=j,
                      choice=int(r.vlm[j]), high_confidence=True) for j in range(n)]
        s.bulk_insert_mappings(Answer, rows)
        s.commit()
    out = cli("study", "score", "paper", "--db", db, "--json")
    assert out.returncode == 0, out
    result = out.json
    assert (result["valid"], result["invalid"], result["deceptive"]) == (1902, 727, 284)
    t4 = result["table4"]
    assert [f"{100 * t4[k]:.2f}" for k in ("model_all_data", "model_valid_data", "human_all_data",
                                           "human_valid_data")] == ["73.71", "79.49", "90.46", "96.46"]
    assert result["vlm"]["correct"] == 1160
    assert 0 < result["fleiss_kappa_adversarial"] < 1
    text = cli("study", "score", "paper", "--db", db).stdout
    assert "96.46%" in text and "1902 valid" in text and "VLM gpt-4: adversarial 44.12%" in text
