"""A rater's answers are numbered 0, 1, 2, ... with no hole and no double whatever arrives at
once: web answers, undos from a second tab, an import. Before the fix (a) an import of a later
item left the web rater skipping one image and then answering 409 forever, and (b) on PostgreSQL
an answer and an undo at the same moment left positions [0, 1, 3]: 409 on the next answer and on
undo, stuck for good."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from studyutil import Server, make_npz

from robustscale.human_study.answers import add_rater
from robustscale.human_study.app import create_app
from robustscale.human_study.config import Settings
from robustscale.human_study.db import Answer, Image, make_engine, make_sessionmaker
from robustscale.human_study.images import create_study
from robustscale.human_study.results import import_answers

ITEM = ("image_id", "phase", "issued", "nonce")


def positions(sessions, rater_id) -> list[int]:
    with sessions() as s:
        return list(s.scalars(select(Answer.position).where(Answer.rater_id == rater_id)
                              .order_by(Answer.position)))


def test_import_then_answer_lets_the_rater_finish(tmp_path, sessions, fmnist_test):
    x, y = fmnist_test
    adv, clean = make_npz(tmp_path, x[:6], y[:6])
    create_study(sessions, "s", adv, clean, batch_size=3)
    rater, token = add_rater(sessions, "s", "alice")
    client = TestClient(create_app(Settings(db_url=f"sqlite:///{tmp_path / 'study.db'}",
                                            rate_limit=1000, rate_burst=1000)))
    html = client.get(f"/r/{token}").text
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', html))
    csrf = {"x-csrf-token": fields["csrf_token"]}
    first = client.post(f"/r/{token}/answer", headers=csrf,
                        data={**{k: fields[k] for k in ITEM}, "choice": "1", "confidence": "high"})
    assert first.status_code == 200
    # an answer collected elsewhere for the 6th item (image 3's clean version, test index 5)
    (tmp_path / "more.csv").write_text("rater,index,phase,choice,confidence\n"
                                       "alice,5,clean,2,low\n")
    assert import_answers(sessions, "s", tmp_path / "more.csv")["answers"] == 1
    item, seen = first.json(), []
    while item["next"] is not None:
        n = item["next"]
        seen.append((n["image_id"], n["phase"]))
        r = client.post(f"/r/{token}/answer", headers=csrf,
                        data={**{k: str(n[k]) for k in ITEM}, "choice": "0", "confidence": "low"})
        assert r.status_code == 200, r.text  # never a 409
        item = r.json()
    assert item["done"] == 12 and len(seen) == 10  # the imported item was skipped, nothing else
    with sessions() as s:
        imported = s.scalar(select(Image.id).where(Image.index == 5))
    assert (imported, "clean") not in seen
    assert positions(sessions, rater.id) == list(range(12))
    assert "All 12 images are classified" in client.get(f"/r/{token}").text


def test_import_appends_after_the_web_answers(tmp_path, sessions, fmnist_test):
    x, y = fmnist_test
    adv, clean = make_npz(tmp_path, x[:4], y[:4])
    create_study(sessions, "s", adv, clean, batch_size=2)
    rater, _ = add_rater(sessions, "s", "bob")
    (tmp_path / "a.csv").write_text("rater,index,phase,choice,confidence\nbob,1,adversarial,0,low\n"
                                    "bob,0,adversarial,3,high\n")
    import_answers(sessions, "s", tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text("rater,index,phase,choice,confidence\nbob,2,clean,1,low\n")
    import_answers(sessions, "s", tmp_path / "b.csv")
    assert positions(sessions, rater.id) == [0, 1, 2]
    with sessions() as s:
        order = s.execute(select(Image.index, Answer.phase).join(Image)
                          .where(Answer.rater_id == rater.id).order_by(Answer.position)).all()
    assert order == [(1, "adversarial"), (0, "adversarial"), (2, "clean")]  # the files' order


def test_a_database_without_positions_is_upgraded(tmp_path, fmnist_test):
    """A database made before answers had positions: they are numbered by id at start-up."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    sessions = make_sessionmaker(make_engine(url))
    x, y = fmnist_test
    adv, clean = make_npz(tmp_path, x[:3], y[:3])
    create_study(sessions, "s", adv, clean, batch_size=3)
    rater, _ = add_rater(sessions, "s", "old")
    with sessions() as s:
        ids = list(s.scalars(select(Image.id).order_by(Image.position)))
        for k, i in enumerate(ids):
            s.add(Answer(rater_id=rater.id, image_id=i, phase="adversarial", position=k, choice=0,
                         high_confidence=True))
        s.commit()
        # the old layout: no position column (SQLite >= 3.35 drops a column without an index)
        s.execute(text("DROP INDEX IF EXISTS one_position"))
        s.commit()
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE answers_old AS SELECT id, rater_id, image_id, phase, choice, "
                          "high_confidence, seconds, created FROM answers"))
        conn.execute(text("DROP TABLE answers"))
        conn.execute(text("ALTER TABLE answers_old RENAME TO answers"))
    again = make_sessionmaker(make_engine(url))
    assert positions(again, rater.id) == [0, 1, 2]
    with again() as s, pytest.raises(Exception, match="UNIQUE"):
        s.add(Answer(rater_id=rater.id, image_id=ids[0], phase="clean", position=2, choice=0,
                     high_confidence=True))
        s.commit()


async def answer_undo_races(url: str, token: str, rounds: int) -> int:
    """Answer and undo sent at the same moment from two 'tabs', `rounds` times; then answer
    everything left. Returns the answers stored at the end."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as tab1, \
            httpx.AsyncClient(base_url=url, timeout=60) as tab2:
        async def item():
            html = (await tab1.get(f"/r/{token}")).text
            if "All " in html and "classified" in html:
                return None
            return dict(re.findall(r'name="(\w+)" value="([^"]*)"', html))

        for _ in range(rounds):
            fields = await item()
            data = {**{k: fields[k] for k in ITEM}, "choice": "1", "confidence": "high"}
            csrf = {"x-csrf-token": fields["csrf_token"]}
            tab2.cookies.update(tab1.cookies)
            replies = await asyncio.gather(tab1.post(f"/r/{token}/answer", data=data, headers=csrf),
                                           tab2.post(f"/r/{token}/undo", headers=csrf))
            assert all(r.status_code in (200, 409) for r in replies), [r.text for r in replies]
        while (fields := await item()) is not None:  # every rater can go on to the end
            r = await tab1.post(f"/r/{token}/answer", headers={"x-csrf-token": fields["csrf_token"]},
                                data={**{k: fields[k] for k in ITEM}, "choice": "2",
                                      "confidence": "low"})
            assert r.status_code == 200, r.text
        return int(re.search(r"All (\d+) images", (await tab1.get(f"/r/{token}")).text).group(1))


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_answer_and_undo_races_leave_no_hole(backend, tmp_path, fmnist_test, request):
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else \
        f"sqlite:///{tmp_path / 'race.db'}"
    sessions = make_sessionmaker(make_engine(url))
    x, y = fmnist_test
    adv, clean = make_npz(tmp_path, x[:8], y[:8])
    name = f"race-{backend}"
    create_study(sessions, name, adv, clean, batch_size=8)
    raters = [add_rater(sessions, name, f"{name}-{i}") for i in range(6)]
    server = Server(url, rate_limit=1000)
    try:
        async def main():
            return await asyncio.gather(*[answer_undo_races(server.url, t, 12) for _, t in raters])

        finished = asyncio.run(main())
    finally:
        server.stop()
    assert finished == [16] * len(raters)
    for rater, _ in raters:
        assert positions(sessions, rater.id) == list(range(16))
