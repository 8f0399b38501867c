"""The public quiz at scale: requests/s of a real `robustscale study serve` on a study of
10,000 images.

Claim: the quiz serves >= 200 requests/s on a 2-core machine at 10,000 study images. Its 25
images are drawn once per study from image ids alone and kept by the app, so no request reads
more than one PNG, whatever the study's size (reading every image row with both PNGs per request
gave ~13 requests/s at 2,629 images).

Evidence: this script writes a study of `--images` random 32x32 CIFAR-sized images to a temp
SQLite file, starts the server (uvicorn subprocess, loopback), warms it up, then sends
`--requests` requests of each kind from `--clients` concurrent keep-alive clients: the quiz page,
its images, and the scored form. Prints requests/s and mean latency per kind, and the mix (one
page, 25 images, one form per visitor). The client runs on the same cores: the server alone is
faster than printed.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET = 200  # requests/s


def make_study(folder: Path, n: int) -> str:
    from robustscale.human_study.db import make_engine, make_sessionmaker
    from robustscale.human_study.images import create_study

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 32, 32, 3), np.uint8)
    labels = rng.integers(0, 10, n)
    np.savez(folder / "adversarial.npz", images=images, labels=labels, predictions=(labels + 1) % 10)
    np.savez(folder / "clean.npz", images=images, labels=labels)
    db = f"sqlite:///{folder / 'quiz.db'}"
    create_study(make_sessionmaker(make_engine(db)), "bench", folder, folder, total=n)
    return db


async def hammer(url: str, kind: str, n: int, clients: int) -> tuple[float, float]:
    """(requests/s, mean seconds per request) of n requests of `kind` from `clients` clients."""
    import httpx

    async def client_loop(count: int, latencies: list) -> None:
        async with httpx.AsyncClient(base_url=url) as c:
            page = await c.get("/quiz/bench")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            form = {"csrf_token": csrf, **{f"answer_{k}": str(k % 10) for k in range(25)}}
            for i in range(count):
                start = time.perf_counter()
                if kind == "page":
                    r = await c.get("/quiz/bench")
                elif kind == "image":
                    r = await c.get(f"/quiz/bench/image/{i % 25}")
                else:
                    r = await c.post("/quiz/bench", data=form)
                r.raise_for_status()
                latencies.append(time.perf_counter() - start)

    latencies: list[float] = []
    start = time.perf_counter()
    await asyncio.gather(*[client_loop(n // clients, latencies) for _ in range(clients)])
    elapsed = time.perf_counter() - start
    return len(latencies) / elapsed, float(np.mean(latencies))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=1000, help="per kind")
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "human_study"))
    from studyutil import Server  # the test suite's `study serve` subprocess helper

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        db = make_study(Path(tmp), args.images)
        print(f"study of {args.images} images written in {time.perf_counter() - t0:.1f} s")
        server = Server(db)
        try:
            asyncio.run(hammer(server.url, "page", 50, 2))  # warm-up: builds the cached quiz
            rates = {}
            for kind in ("page", "image", "submit"):
                rate, latency = asyncio.run(hammer(server.url, kind, args.requests, args.clients))
                rates[kind] = rate
                print(f"{kind:>6}: {rate:7.0f} requests/s, {1000 * latency:6.1f} ms mean latency "
                      f"({args.clients} clients)")
        finally:
            server.stop()
    # one visitor: 1 page + 25 images + 1 form
    mix = 27 / (1 / rates["page"] + 25 / rates["image"] + 1 / rates["submit"])
    print(f"   mix: {mix:7.0f} requests/s at {args.images} study images "
          f"(target >= {TARGET}: {'OK' if mix >= TARGET else 'MISSED'})")


if __name__ == "__main__":
    main()
