"""A messy real-world study scored end to end: 3 complete raters, 1 who stopped after two images,
3 who never answered, a VLM run that failed and one that succeeded (real loopback endpoint).
Every Table 4 figure and both kappas are checked against values worked out by hand below; the
CSV export re-imports to the same score and keeps spreadsheet formulas inert."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select
from studyutil import FASHION_CLASSES, make_npz

from robustscale.errors import RobustscaleError
from robustscale.human_study.answers import add_rater
from robustscale.human_study.db import Answer, Image, Rater, Reply, Study
from robustscale.human_study.images import create_study
from robustscale.human_study.results import import_answers, score_study
from robustscale.human_study.vlm import vlm_rate

# 20 test images of class 0 (T-shirt/top); the model gets the first 14 right (robust) and is
# fooled on 6, predicting class 1 (make_npz). So per attacked image: L = 0 the true class,
# P = 1 the model's wrong prediction, W = 2 another wrong class.
L, P, W = 0, 1, 2
# adversarial answers (choice, high confidence) per attacked image, None = not answered
HUMANS = {
    "h1": [(L, True), (L, False), (W, False), (W, True), (L, True), (L, False)],
    "h2": [(L, False), (P, False), (W, False), (P, False), (W, False), (L, False)],
    '=HYPERLINK("http://evil","h3")': [(L, False), (P, False), (L, False), (W, False),
                                       (W, False), (W, False)],
    "h4-partial": [(L, False), (P, True), None, None, None, None],
}
SILENT = ("s1", "s2", "s3")
VLM = [L, W, L, W, W, L]
# clean answers: the three complete raters are right except h2 on image 3
CLEAN_WRONG = {("h2", 3)}
COMPLETE = ("h1", "h2", '=HYPERLINK("http://evil","h3")')

# By hand. Correct (adversarial) per image, among the humans who answered it (+ VLM):
#   img0: h1 h2 h3 h4 all L -> 4/4 humans; VLM L -> 5 correct: valid
#   img1: h1 L (low), h2 h3 h4 P -> 1/4 humans; VLM W -> 1 correct, no high-confidence L:
#         invalid; 3 of 4 humans say the prediction P -> deceptive
#   img2: h3 L -> 1/3; VLM L -> 2 correct: valid
#   img3: none -> 0/3; VLM W: invalid; 1 of 3 humans says P -> ambiguous
#   img4: h1 L with high confidence -> 1/3: valid
#   img5: h1 h2 L -> 2/3; VLM L: valid
# Average human's correct count C = 1 + 1/4 + 1/3 + 0 + 1/3 + 2/3 = 31/12; on valid images
# Cv = 1 + 1/3 + 1/3 + 2/3 = 7/3. Robust R = 14, total T = 20, invalid I = 2.
EXPECTED_TABLE4 = {
    "model_all_data": 14 / 20,  # 70.00%
    "model_valid_data": 14 / 18,  # 77.78%
    "human_all_data": (14 + 31 / 12) / 20,  # 82.92%
    "human_valid_data": (14 + 7 / 3) / 18,  # 90.74%
    "model_invalid_as_robust": 16 / 20,  # 80.00%
}
# Fleiss' kappa, adversarial (humans + VLM, each image with its own raters): answers per image
# (n_i) 5, 5, 4, 4, 4, 4; agreement P_i = 1, 6/20, 4/12, 6/12, 6/12, 6/12 -> mean 47/90;
# class totals L 12, P 4, W 10 of 26 -> P_e = 260/676 = 5/13; kappa = (47/90 - 5/13) / (8/13).
KAPPA_ADV = (47 / 90 - 5 / 13) / (8 / 13)  # 0.2236
# clean (3 raters): P_i = 1 on five images, 1/3 on img3 -> 8/9; L 17, W 1 of 18 -> P_e = 145/162
KAPPA_CLEAN = (8 / 9 - 145 / 162) / (1 - 145 / 162)  # -1/17


@pytest.fixture
def messy(tmp_path, fmnist_test, chat_server):
    x, y = fmnist_test
    shirts = np.flatnonzero(y == 0)[:20]
    adv, clean = make_npz(tmp_path, x[shirts], y[shirts], n_robust=14)
    db = f"sqlite:///{tmp_path / 'messy.db'}"
    from robustscale.human_study.db import make_engine, make_sessionmaker

    sessions = make_sessionmaker(make_engine(db))
    create_study(sessions, "messy", adv, clean, batch_size=3)
    for name in list(HUMANS) + list(SILENT):
        add_rater(sessions, "messy", name)
    with sessions() as s:
        images = list(s.scalars(select(Image).order_by(Image.position)))
        raters = {r.name: r.id for r in s.scalars(select(Rater))}
        for name, answers in HUMANS.items():
            n = 0  # the rater's answers so far
            for j, a in enumerate(answers):
                if a is None:
                    continue
                s.add(Answer(rater_id=raters[name], image_id=images[j].id, phase="adversarial",
                             position=n, choice=a[0], high_confidence=a[1]))
                n += 1
                if name in COMPLETE:
                    s.add(Answer(rater_id=raters[name], image_id=images[j].id, phase="clean",
                                 position=n, choice=W if (name, j) in CLEAN_WRONG else L,
                                 high_confidence=True))
                    n += 1
        s.commit()
        vlm_of_png = {im.adversarial_png: VLM[j] for j, im in enumerate(images)}
    srv = chat_server(FASHION_CLASSES, fail=(), reply=lambda classes, png: (
        f"=HYPERLINK(\"http://evil\") looks like a {classes[P]} at first, but it is a "
        f"{classes[vlm_of_png[png]]}, high"))
    with pytest.raises(RobustscaleError, match="HTTP 401"):  # the failed run: a wrong key
        vlm_rate(sessions, "messy", srv.base_url, "gpt-test", "sk-wrong", retries=0)
    vlm_rate(sessions, "messy", srv.base_url, "gpt-test", "sk-test", retries=0)
    return db, sessions


def check_messy_score(r: dict) -> None:
    assert (r["images"], r["total"], r["robust"]) == (6, 20, 14)
    assert (r["rated"], r["unrated"], r["valid"], r["invalid"]) == (6, 0, 4, 2)
    assert (r["deceptive"], r["ambiguous"]) == (1, 1)
    t4 = r["table4"]
    for key, value in EXPECTED_TABLE4.items():
        assert t4[key] == pytest.approx(value, abs=1e-12), key
        assert t4["bounds"][key] == pytest.approx([value, value], abs=1e-12), key
    assert [f"{100 * t4[k]:.2f}" for k in EXPECTED_TABLE4] == ["70.00", "77.78", "82.92",
                                                               "90.74", "80.00"]
    assert t4["counts"]["mean_human_correct_all"] == pytest.approx(31 / 12)
    assert r["fleiss_kappa_adversarial"] == pytest.approx(KAPPA_ADV, abs=1e-12)
    assert r["fleiss_kappa_clean"] == pytest.approx(KAPPA_CLEAN, abs=1e-12)
    assert r["human_adversarial_accuracy"] == pytest.approx(31 / 12 / 6)
    assert r["human_clean_accuracy"] == pytest.approx((5 + 2 / 3) / 6)
    # silent raters are left out; the partial rater counts on her two images only
    assert [h["rater"] for h in r["humans"]] == list(HUMANS)
    assert r["humans"][3]["answered_adversarial"] == 2
    assert r["humans"][3]["adversarial_accuracy"] == 0.5
    assert r["vlm"]["rater"] == "gpt-test"
    assert (r["vlm"]["answered"], r["vlm"]["correct"]) == (6, 3)
    assert r["vlm"]["accuracy_all_data"] == pytest.approx(17 / 20)
    assert "raters who answered it" in r["rule"]


def test_messy_study_scores_by_hand(messy, cli, tmp_path):
    db, sessions = messy
    with sessions() as s:  # the failed run created no VLM rater
        assert [r.name for r in s.scalars(select(Rater).where(Rater.kind == "vlm"))] == ["gpt-test"]
    check_messy_score(score_study(sessions, "messy"))
    out = cli("study", "score", "messy", "--db", db)
    assert out.returncode == 0, out
    for text in ("4 valid, 2 invalid (1 deceptive, 1 ambiguous), 0 unrated", "82.92%", "90.74%",
                 "77.78%", "kappa (adversarial) 0.224", "VLM gpt-test: adversarial 50.00%"):
        assert text in out.stdout, text


def test_vlm_choice(messy, tmp_path, cli):
    """A second, smaller VLM run does not displace the first; `--vlm` picks it explicitly."""
    db, sessions = messy
    (tmp_path / "other.csv").write_text("rater,kind,index,phase,choice,confidence\n"
                                        "other-vlm,vlm,14,adversarial,0,high\n")
    assert import_answers(sessions, "messy", tmp_path / "other.csv")["raters_created"] == ["other-vlm"]
    assert cli("study", "score", "messy", "--db", db, "--json").json["vlm"]["rater"] == "gpt-test"
    other = cli("study", "score", "messy", "--vlm", "other-vlm", "--db", db, "--json").json
    assert (other["vlm"]["rater"], other["vlm"]["answered"], other["vlm"]["correct"]) == (
        "other-vlm", 1, 1)
    bad = cli("study", "score", "messy", "--vlm", "nope", "--db", db)
    assert bad.returncode == 2 and "no VLM rater of that name" in bad.stderr


def test_export_reimports_to_the_same_score(messy, tmp_path, cli):
    db, sessions = messy
    out = tmp_path / "answers.csv"
    assert cli("study", "export", "messy", "--out", out, "--db", db).returncode == 0
    text = out.read_text()
    # the formula-named rater is inert in a spreadsheet: a quote in front
    assert "\"'=HYPERLINK(\"\"http://evil\"\",\"\"h3\"\")\"" in text
    assert not any(cell.startswith("=") for line in text.splitlines() for cell in line.split(","))
    # a new study of the same images, answers imported from the export
    folder = tmp_path
    created = cli("study", "create", "--adversarial", folder, "--clean", folder, "--name", "copy",
                  "--batch-size", "3", "--db", db)
    assert created.returncode == 0, created
    imported = cli("study", "import-answers", "copy", out, "--db", db, "--json")
    assert imported.returncode == 0, imported
    assert imported.json["answers"] == 4 * 6 - 4 + 3 * 6 + 6  # adversarial, clean, VLM
    assert sorted(imported.json["raters_created"]) == sorted(list(HUMANS) + ["gpt-test"])
    again = score_study(sessions, "copy")
    check_messy_score(again)
    assert {k: v for k, v in again.items() if k != "study"} == \
        {k: v for k, v in score_study(sessions, "messy").items() if k != "study"}
    # every text comes back exactly: the spreadsheet guard lived only in the CSV cells (a VLM
    # reply was stored as "'=HYPERLINK..." before the fix)
    with sessions() as s:
        def texts(study):
            return sorted(s.execute(select(Rater.name, Rater.external_id, Reply.text)
                                    .join(Answer, Answer.rater_id == Rater.id)
                                    .outerjoin(Reply, Reply.answer_id == Answer.id)
                                    .join(Study, Study.id == Rater.study_id)
                                    .where(Study.name == study)).all(), key=str)
        assert texts("copy") == texts("messy")
    # all or nothing: importing the same answers twice fails and adds nothing
    dup = cli("study", "import-answers", "copy", out, "--db", db)
    assert dup.returncode == 2 and "already answered image" in dup.stderr
    assert score_study(sessions, "copy") == again


@pytest.mark.parametrize("csv_text, message", [
    ("rater,index,phase\nx,14,adversarial\n", "missing: choice, confidence"),
    ("rater,index,phase,choice,confidence\nx,999,adversarial,0,high\n", "index 999 is not an image"),
    ("rater,index,phase,choice,confidence\nx,14,sideways,0,high\n", "phase must be"),
    ("rater,index,phase,choice,confidence\nx,14,clean,10,high\n", "choice must be a class index"),
    ("rater,index,phase,choice,confidence\nx,14,clean,two,high\n", "must be integers"),
    ("rater,kind,index,phase,choice,confidence\nx,robot,14,clean,0,high\n", "kind must be"),
    ("rater,kind,index,phase,choice,confidence\nh1,vlm,14,clean,0,high\n", "is a human rater"),
    # seconds took nan, -5 and inf before the fix
    ("rater,index,phase,choice,confidence,seconds\nx,14,clean,0,high,nan\n", "finite number >= 0"),
    ("rater,index,phase,choice,confidence,seconds\nx,14,clean,0,high,-5\n", "finite number >= 0"),
    ("rater,index,phase,choice,confidence,seconds\nx,14,clean,0,high,inf\n", "finite number >= 0"),
])
def test_import_rejects_bad_rows(messy, tmp_path, csv_text, message):
    _, sessions = messy
    before = score_study(sessions, "messy")
    (tmp_path / "bad.csv").write_text(csv_text)
    with pytest.raises(RobustscaleError, match=message):
        import_answers(sessions, "messy", tmp_path / "bad.csv")
    assert score_study(sessions, "messy") == before
