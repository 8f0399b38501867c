"""Load test on loopback: 50 concurrent raters x 100 answers against a real `study serve`
(uvicorn subprocess), on SQLite and on a real PostgreSQL. Every 10th answer is sent twice at
once (a double click / replay): exactly one copy may be stored. On PostgreSQL, once a quarter
of the answers are in, the server is killed (kill -9) and started again; raters whose requests
were cut reload their page and go on. 0 lost, 0 duplicated."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest
from sqlalchemy import func, select
from studyutil import Server, make_npz

from robustscale.human_study.answers import add_rater
from robustscale.human_study.db import Answer, make_engine, make_sessionmaker
from robustscale.human_study.images import create_study

N_RATERS, N_IMAGES = 50, 50  # 50 adversarial + 50 clean = 100 answers per rater
ITEM_FIELDS = ("image_id", "phase", "issued", "nonce")


async def rate(url: str, token: str, progress: list) -> int:
    """One rater answering everything, reloading the page after a cut connection or a 409 (an
    answer stored although its reply was lost); returns duplicate copies rejected."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        rejected, done, fields = 0, 0, None
        while done < 2 * N_IMAGES:
            try:
                if fields is None:  # (re)load: the page says where this rater is
                    html = (await client.get(f"/r/{token}")).text
                    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', html))
                    done = int(re.search(r"(\d+) / \d+ answered", html).group(1))
                    continue
                data = {**fields, "choice": str(done % 10), "confidence": "high" if done % 3 else "low"}
                copies = 2 if done % 10 == 0 else 1
                replies = await asyncio.gather(*[client.post(f"/r/{token}/answer", data=data)
                                                 for _ in range(copies)])
            except httpx.TransportError:  # the server was killed under this request
                await asyncio.sleep(0.2)
                fields = None
                continue
            ok = [r for r in replies if r.status_code == 200]
            assert all(r.status_code in (200, 409) for r in replies), [r.text for r in replies]
            rejected += copies - len(ok)
            if not ok:  # stored by a request whose reply was lost: resync
                fields = None
                continue
            assert len(ok) == 1
            item = ok[0].json()
            assert item["done"] == done + 1
            done += 1
            progress[0] += 1
            if item["next"] is not None:
                fields.update({f: str(item["next"][f]) for f in ITEM_FIELDS})
        return rejected


def run_load(db_url: str, tmp_path, fmnist_test, kill: bool) -> None:
    x, y = fmnist_test
    adv, clean = make_npz(tmp_path, x[:N_IMAGES], y[:N_IMAGES])
    sessions = make_sessionmaker(make_engine(db_url))
    create_study(sessions, "load", adv, clean, batch_size=N_IMAGES, raters=N_RATERS)
    tokens = [add_rater(sessions, "load", f"r{i}")[1] for i in range(N_RATERS)]
    expected = N_RATERS * 2 * N_IMAGES
    server = Server(db_url, rate_limit=1000)
    progress = [0]

    async def killer():
        if not kill:
            return
        while progress[0] < expected // 4:
            await asyncio.sleep(0.02)
        server.kill()
        await asyncio.sleep(0.3)
        await asyncio.to_thread(server.start)

    try:
        start = time.perf_counter()

        async def main():
            return await asyncio.gather(killer(), *[rate(server.url, t, progress) for t in tokens])

        _, *rejected = asyncio.run(main())
        elapsed = time.perf_counter() - start
    finally:
        server.stop()
    with sessions() as s:
        n = s.scalar(select(func.count()).select_from(Answer))
        distinct = s.scalar(select(func.count()).select_from(
            select(Answer.rater_id, Answer.image_id, Answer.phase).distinct().subquery()))
        per_rater = s.execute(select(Answer.rater_id, func.count()).group_by(Answer.rater_id)).all()
        # every rater's choices are the ones sent, in order (done % 10), across the kill
        choices = s.execute(select(Answer.rater_id, Answer.choice).order_by(Answer.rater_id,
                                                                            Answer.id)).all()
    assert n == expected  # 0 lost
    assert distinct == n  # 0 duplicated
    assert sorted(c for _, c in per_rater) == [2 * N_IMAGES] * N_RATERS
    by_rater: dict[int, list[int]] = {}
    for rid, c in choices:
        by_rater.setdefault(rid, []).append(c)
    assert all(v == [k % 10 for k in range(2 * N_IMAGES)] for v in by_rater.values())
    print(f"\n{db_url.split(':')[0]}: {expected} answers from {N_RATERS} concurrent raters "
          f"({sum(rejected)} duplicate copies rejected{', server killed once' if kill else ''}) "
          f"in {elapsed:.1f} s = "
          f"{expected / elapsed:.0f} answers/s")


@pytest.mark.slow
def test_load_sqlite(tmp_path, fmnist_test):
    run_load(f"sqlite:///{tmp_path / 'load.db'}", tmp_path, fmnist_test, kill=False)


@pytest.mark.slow
def test_load_postgresql(tmp_path, fmnist_test, postgres_url):
    run_load(postgres_url, tmp_path, fmnist_test, kill=True)
