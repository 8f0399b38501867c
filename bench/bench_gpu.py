"""One command for a GPU machine: training img/s and MFU, PGD-40 img/s, input-pipeline img/s -> RESULTS.md.

Claim: on a GPU our training step beats the reference-style step (bench_train.py), PGD-40
evaluation runs near 1/41 of a forward+backward pass (bench_pgd.py), a compiled attack step is
cheaper with the weights frozen, and the read-ahead loader (pinned staging, non-blocking copies,
a background thread) delivers batches faster than reading and copying them on the training thread.
Evidence: each figure is mean ± std over timed blocks after warm-up, between two synchronisations;
MFU divides by the --peak-tflops you pass (never assumed). On CUDA (or with --write) the rows are
appended to bench/RESULTS.md with the device, torch version and commit; on the CPU the same
measurements run small and only the ratios are printed.

    .venv/bin/python bench/bench_gpu.py                      # CPU: wrn-10-1, small batches, ratios only
    python bench/bench_gpu.py --peak-tflops 989              # H100 SXM bf16 dense: WRN-28-10 on CIFAR-10
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import bench_pgd  # bench/ is on sys.path when a script here runs
import bench_train
import numpy as np
import torch
from bench_data import make_npz

RESULTS = Path(__file__).with_name("RESULTS.md")
MARKER = "<!-- bench_gpu.py appends rows above this line -->"


def measure_loader(device: torch.device, batch: int, images: int, batches: int) -> dict:
    """images/s from a CIFAR-sized shard store to float batches on `device`: on the training thread
    (read, pageable copy) vs the trainer's BatchLoader (read ahead on a thread, pinned, non-blocking)."""
    from robustscale.data.convert import convert
    from robustscale.data.sampler import ArraySource, MixingSampler
    from robustscale.data.store import open_store
    from robustscale.train.loader import BatchLoader

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with tempfile.TemporaryDirectory() as tmp:
        make_npz(Path(tmp) / "synthetic.npz", images)
        convert(Path(tmp) / "synthetic.npz", Path(tmp) / "store", shard_size=max(1, images // 4))
        store = open_store(Path(tmp) / "store")
        real_x, real_y = store.read(np.arange(min(images, 10_000)))
        sampler = MixingSampler(ArraySource(real_x, real_y, name="real"), [store], batch_size=batch, seed=0)

        def inline(first):
            for step in range(first, first + batches):
                x, y = sampler.local_batch(step)
                torch.from_numpy(x).to(device).permute(0, 3, 1, 2).float().div_(255)
                torch.from_numpy(y).to(device)

        def read_ahead(first):
            with BatchLoader(sampler, device, first, first + batches) as loader:
                for _ in range(batches):
                    loader.next()[1].permute(0, 3, 1, 2).float().div_(255)

        rates = {}
        for name, fn in (("inline", inline), ("loader", read_ahead)):
            fn(0)  # warm-up: page cache, pinned-memory pool
            sync()
            runs = []
            for r in range(1, 4):
                t0 = time.perf_counter()
                fn(r * batches)
                sync()
                runs.append(batch * batches / (time.perf_counter() - t0))
            rates[name] = (statistics.mean(runs), statistics.pstdev(runs))
    return {"inline": rates["inline"], "loader": rates["loader"],
            "ratio": rates["loader"][0] / rates["inline"][0]}


def commit() -> str:
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                       cwd=Path(__file__).parent)
    return r.stdout.strip() or "unknown"


def append_rows(rows: list[tuple[str, str, str, str, str]], device: str) -> None:
    """Rows (benchmark, ours, reference, ratio, notes) into RESULTS.md's bench_gpu table."""
    today = datetime.date.today().isoformat()
    lines = [f"| {today} | {device} | torch {torch.__version__} | {commit()} | " + " | ".join(r) + " |"
             for r in rows]
    text = RESULTS.read_text()
    if MARKER not in text:
        raise SystemExit(f"{RESULTS}: the line {MARKER!r} is missing; put it back under the bench_gpu table")
    RESULTS.write_text(text.replace(MARKER, "\n".join(lines) + "\n" + MARKER))


def main() -> None:
    cuda = torch.cuda.is_available()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="wrn-28-10" if cuda else "wrn-10-1")
    ap.add_argument("--dataset", default="cifar10" if cuda else "fashion-mnist")
    ap.add_argument("--batch", type=int, default=512 if cuda else 32)
    ap.add_argument("--device", default="cuda" if cuda else "cpu")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="device peak for MFU (e.g. 989: H100 SXM bf16)")
    ap.add_argument("--compile", action="store_true",
                    help="also compile (training step, attack frozen vs not)")
    ap.add_argument("--loader-images", type=int, default=200_000 if cuda else 20_000)
    ap.add_argument("--write", action=argparse.BooleanOptionalAction, default=cuda,
                    help="append the figures to bench/RESULTS.md (default: on CUDA)")
    args = ap.parse_args()
    device = torch.device(args.device)

    train = bench_train.measure(args.model, args.dataset, args.batch, steps=10 if cuda else 2,
                                warmup=3 if cuda else 1, device=args.device, compile=args.compile,
                                peak_tflops=args.peak_tflops)
    pgd = bench_pgd.measure(args.model, args.dataset, args.batch, device=args.device, repeats=3)
    loader = measure_loader(device, args.batch, args.loader_images, batches=50 if cuda else 10)
    mfu = f"{100 * train['ours']['mfu']:.1f}%" if train["ours"]["mfu"] is not None else "–"
    rows = [
        ("TRADES step img/s (PGD-10)", f"{train['ours']['img_s']:.0f} ± {train['ours']['std']:.0f}",
         f"{train['reference']['img_s']:.0f} ± {train['reference']['std']:.0f}", f"{train['ratio']:.2f}x",
         f"{args.model}, batch {args.batch}, bf16 {train['bf16']}, compile {args.compile}, MFU {mfu}"),
        ("PGD-40-CW eval img/s", f"{pgd['pgd'][0]:.0f} ± {pgd['pgd'][1]:.0f}",
         f"{pgd['forward_backward'][0]:.0f} (fwd+bwd)", f"{pgd['ratio']:.4f}", "ideal ~1/41 = 0.0244"),
        ("input pipeline img/s", f"{loader['loader'][0]:.0f} ± {loader['loader'][1]:.0f}",
         f"{loader['inline'][0]:.0f} ± {loader['inline'][1]:.0f} (inline)", f"{loader['ratio']:.2f}x",
         f"CIFAR-sized store of {args.loader_images} images, batch {args.batch}"),
    ]
    if args.compile:
        c = bench_pgd.measure_compiled_attack(args.model, args.dataset, args.batch, device=args.device)
        rows.append(("compiled attack step ms", f"{c['compiled_frozen']:.1f} (frozen)",
                     f"{c['compiled']:.1f}", f"{c['compiled_frozen'] / c['compiled']:.2f}",
                     f"eager {c['eager']:.1f} ms"))
    name = bench_train.device_name(device)
    print(f"{name}, torch {torch.__version__}")
    for bench, ours, ref, ratio, notes in rows:
        print(f"  {bench:28s} ours {ours:>16s}  reference {ref:>22s}  ratio {ratio:>8s}  ({notes})")
    if args.write:
        append_rows(rows, name)
        print(f"appended {len(rows)} rows to {RESULTS}")


if __name__ == "__main__":
    main()
