"""Recruitment at scale: `study recruit` prints one public join link; 20 participants join
through it (one of them twice), agree to the consent page, answer a study with attention checks
(two of them fail the checks), finish and are sent to the completion URL with its code;
`study score` leaves out the two and counts 18."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from studyutil import make_npz

from robustscale.human_study.app import create_app
from robustscale.human_study.config import Settings
from robustscale.human_study.db import Image, Rater, make_engine, make_sessionmaker

COMPLETION = "https://app.prolific.com/submissions/complete?cc=C0DE42"
ITEM = ("image_id", "phase", "issued", "nonce")


def answer_all(client: TestClient, path: str, label_of: dict, careless: bool) -> str:
    """Work through the study as a participant; a careless one gets every attention check wrong.
    Returns where the finished page redirects to."""
    page = client.get(path)
    assert "Consent" in page.text and "How sure" not in page.text
    assert "Say “low” if you think it is unlikely" in page.text  # the written instructions
    assert 'id="image"' not in page.text  # no image before consenting
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = client.post(f"{path}/consent", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', client.get(path).text))
    item = {"next": {k: fields[k] for k in ITEM}}
    while item["next"] is not None:
        n = item["next"]
        label, check = label_of[int(n["image_id"])]
        choice = (label + 1) % 10 if check and careless else label
        r = client.post(f"{path}/answer", headers={"x-csrf-token": csrf},
                        data={**{k: str(n[k]) for k in ITEM}, "choice": str(choice),
                              "confidence": "high"})
        assert r.status_code == 200, r.text
        item = r.json()
    done = client.get(path, follow_redirects=False)
    assert done.status_code == 303
    return done.headers["location"]


def test_twenty_participants_two_careless(tmp_path, fmnist_test, cli):
    x, y = fmnist_test
    adv, clean = make_npz(tmp_path, x[:8], y[:8], n_robust=3)  # 5 attacked, 3 robust
    db = f"sqlite:///{tmp_path / 'crowd.db'}"
    created = cli("study", "create", "--adversarial", adv, "--clean", clean, "--name", "crowd",
                  "--batch-size", "3", "--attention-checks", "0.2", "--db", db, "--json")
    assert created.returncode == 0, created
    assert (created.json["images"], created.json["attention_checks"]) == (5, 1)
    out = cli("study", "recruit", "crowd", "--completion-url", COMPLETION, "--max-raters", "25",
              "--days", "7", "--base-url", "https://study.example.org", "--db", db)
    assert out.returncode == 0, out
    link = out.stdout.strip()
    assert re.fullmatch(r"https://study\.example\.org/join/[A-Za-z0-9_-]+", link), link

    sessions = make_sessionmaker(make_engine(db))
    with sessions() as s:
        rows = s.execute(select(Image.id, Image.label, Image.attention, Image.position)).all()
    label_of = {i: (label, check) for i, label, check, _ in rows}
    checks = sorted(pos for _, _, check, pos in rows if check)
    assert checks and checks[0] > 0 and checks[-1] < len(rows) - 1  # between the attacked images

    client = TestClient(create_app(Settings(db_url=db, rate_limit=1000, rate_burst=1000)))
    join = urlsplit(link).path
    careless = {"pid03", "pid11"}
    for k in range(20):
        pid = f"pid{k:02d}"
        query = (f"PROLIFIC_PID={pid}&STUDY_ID=st1&SESSION_ID=se{k}" if k % 2 else f"pid={pid}")
        r = client.get(f"{join}?{query}", follow_redirects=False)
        assert r.status_code == 303, r.text
        path = r.headers["location"]
        if k == 7:  # joins again (a second tab, a reload of the platform's page): same rater
            again = client.get(f"{join}?PROLIFIC_PID={pid}&STUDY_ID=st1&SESSION_ID=other",
                               follow_redirects=False)
            assert again.headers["location"] == path
        assert answer_all(client, path, label_of, pid in careless) == COMPLETION
        if k == 7:  # and after finishing, joining again sends them to the completion URL again
            back = client.get(f"{join}?pid={pid}", follow_redirects=False).headers["location"]
            assert client.get(back, follow_redirects=False).headers["location"] == COMPLETION
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Rater)) == 20

    for bad in ("", "pid=", "pid=a%20b", "pid=" + "x" * 65):
        assert client.get(f"{join}?{bad}", follow_redirects=False).status_code == 422
    assert client.get("/join/wrong-key?pid=p1", follow_redirects=False).status_code == 404

    score = cli("study", "score", "crowd", "--db", db, "--json")
    assert score.returncode == 0, score
    r = score.json
    assert len(r["humans"]) == 18 and r["images"] == 5
    assert sorted(d["external_id"] for d in r["left_out"]) == sorted(careless)
    assert all("failed 2 of 2 attention checks" in d["reason"] for d in r["left_out"])
    assert "2 raters left out for failing attention checks" in score.stderr
    # the careful majority labelled every attacked image right: all valid, human accuracy 1
    assert (r["valid"], r["human_adversarial_accuracy"]) == (5, 1.0)
    everyone = cli("study", "score", "crowd", "--max-attention-failure", "1", "--db", db, "--json")
    assert len(everyone.json["humans"]) == 20 and everyone.json["left_out"] == []

    exported = cli("study", "export", "crowd", "--out", tmp_path / "a.csv", "--db", db)
    assert exported.returncode == 0, exported
    rows = list(csv.DictReader(io.StringIO((tmp_path / "a.csv").read_text())))
    assert {row["external_id"] for row in rows} == {f"pid{k:02d}" for k in range(20)}
    assert sum(row["attention"] == "1" for row in rows) == 20 * 2
    assert [row["answer"] for row in rows if row["rater"] == "pid-pid00"] == \
        [str(k) for k in range(12)]


def test_join_limits(tmp_path, fmnist_test, cli):
    from robustscale.human_study.images import create_study

    x, y = fmnist_test
    adv, clean = make_npz(tmp_path, x[:4], y[:4])
    db = f"sqlite:///{tmp_path / 'small.db'}"
    create_study(make_sessionmaker(make_engine(db)), "small", adv, clean)
    link = cli("study", "recruit", "small", "--completion-url", COMPLETION, "--max-raters", "2",
               "--db", db).stdout.strip()
    join = urlsplit(link).path
    client = TestClient(create_app(Settings(db_url=db, joins_per_minute=4)))
    assert [client.get(f"{join}?pid=p{k}", follow_redirects=False).status_code
            for k in range(3)] == [303, 303, 403]  # the study is full after two
    assert client.get(f"{join}?pid=p0", follow_redirects=False).status_code == 303  # resumes
    assert client.get(f"{join}?pid=p0", follow_redirects=False).status_code == 429  # per address
    bad = cli("study", "recruit", "small", "--completion-url", "javascript:alert(1)", "--db", db)
    assert bad.returncode == 2 and "--completion-url" in bad.stderr
