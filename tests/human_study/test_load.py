"""Load test on loopback: 50 concurrent raters x 100 answers against a real `study serve`
(uvicorn subprocess), on SQLite and on a real PostgreSQL. Every 10th answer is sent twice at
once (a double click / replay): exactly one copy may be stored. 0 lost, 0 duplicated."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest
from sqlalchemy import func, select
from studyutil import Server, make_npz

from robustscale.human_study.db import Answer, make_engine, make_sessionmaker
from robustscale.human_study.answers import add_rater
from robustscale.human_study.images import create_study

N_RATERS, N_IMAGES = 50, 50  # 50 adversarial + 50 clean = 100 answers per rater


async def rate(url: str, token: str) -> tuple[int, int]:
    """One rater answering everything; returns (stored, rejected duplicates)."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        html = (await client.get(f"/r/{token}")).text
        fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', html))
        stored = rejected = 0
        for k in range(2 * N_IMAGES):
            data = {**fields, "choice": str(k % 10), "confidence": "high" if k % 3 else "low"}
            copies = 2 if k % 10 == 0 else 1
            replies = await asyncio.gather(*[client.post(f"/r/{token}/answer", data=data)
                                             for _ in range(copies)])
            ok = [r for r in replies if r.status_code == 200]
            assert len(ok) == 1, [(r.status_code, r.text) for r in replies]
            assert all(r.status_code == 409 for r in replies if r.status_code != 200)
            stored += 1
            rejected += copies - 1
            item = ok[0].json()
            assert item["done"] == k + 1
            if item["next"] is not None:
                fields.update({f: str(item["next"][f]) for f in ("image_id", "phase", "issued",
                                                                  "nonce")})
        return stored, rejected


def run_load(db_url: str, tmp_path, fmnist_test) -> None:
    x, y = fmnist_test
    adv, clean = make_npz(tmp_path, x[:N_IMAGES], y[:N_IMAGES])
    sessions = make_sessionmaker(make_engine(db_url))
    create_study(sessions, "load", adv, clean, batch_size=N_IMAGES, raters=N_RATERS)
    tokens = [add_rater(sessions, "load", f"r{i}")[1] for i in range(N_RATERS)]
    server = Server(db_url, rate_limit=1000)
    try:
        start, cpu_start = time.perf_counter(), server.cpu_seconds()

        async def main():
            return await asyncio.gather(*[rate(server.url, t) for t in tokens])

        results = asyncio.run(main())
        elapsed = time.perf_counter() - start
        server_cpu = server.cpu_seconds() - cpu_start
    finally:
        server.stop()
    stored = sum(r[0] for r in results)
    with sessions() as s:
        n = s.scalar(select(func.count()).select_from(Answer))
        distinct = s.scalar(select(func.count()).select_from(
            select(Answer.rater_id, Answer.image_id, Answer.phase).distinct().subquery()))
        per_rater = s.execute(select(Answer.rater_id, func.count()).group_by(Answer.rater_id)).all()
    expected = N_RATERS * 2 * N_IMAGES
    assert stored == expected and n == expected  # 0 lost
    assert distinct == n  # 0 duplicated
    assert sorted(c for _, c in per_rater) == [2 * N_IMAGES] * N_RATERS
    print(f"\n{db_url.split(':')[0]}: {expected} answers from {N_RATERS} concurrent raters "
          f"({sum(r[1] for r in results)} duplicate copies rejected) in {elapsed:.1f} s = "
          f"{expected / elapsed:.0f} answers/s; server CPU {1000 * server_cpu / expected:.1f} ms "
          f"per answer")


@pytest.mark.slow
def test_load_sqlite(tmp_path, fmnist_test):
    run_load(f"sqlite:///{tmp_path / 'load.db'}", tmp_path, fmnist_test)


@pytest.mark.slow
def test_load_postgresql(tmp_path, fmnist_test, postgres_url):
    run_load(postgres_url, tmp_path, fmnist_test)
