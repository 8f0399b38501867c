"""Approach 2 base fit: the paper's 3125-start L-BFGS procedure, naive reference vs robustscale.

Claim: robustscale's fit (analytic gradients, all 3125 starts advanced together as arrays,
pruning to the best 64 after 10 iterations, scipy polish of the best 2) reaches the same or a
lower Huber objective than the naive procedure at least 50x faster.

Reference (as the paper's code would run it, after Hoffmann et al. 2022): for each of the
3125 starts of App. F.2.1's grid, scipy.optimize.minimize(method="L-BFGS-B") on the Huber(δ=1e-3)
objective of log residuals with finite-difference gradients; keep the best. One start takes
~0.1-0.3 s, so the full reference would take minutes to tens of minutes: by default it runs a
seeded random subset of REF_STARTS starts and extrapolates its time linearly to 3125 (printed
as such; its objective is the best of that subset). `--full` runs all 3125.

Where the reference's time goes (scipy 1.17, measured here): a start takes 14-40 L-BFGS-B
iterations and 240-390 objective evaluations (6 per numeric gradient); the evaluations are about
a fifth of its time, scipy's per-iteration overhead the rest. So even a reference with free
function evaluations stays > 50x slower than ours.

Data: `simulate(paper-approach2, seed=0)` — the paper's grid of runs, base source DG (28 runs
left after App. F.2.1's exclusion), 1% noise. CPU only; numbers vary with machine load.
Measured 2026-11-25 on the 2-core dev machine under heavy shared load (load average ~11):
reference 1562 s (40 starts, extrapolated), ours 0.98 s, RATIO 1594x, objective ours − reference
= −3.6e-6 (the 40-start subset misses the best basin that ours finds).
"""

from __future__ import annotations

import sys
import time

import numpy as np
from scipy.optimize import minimize

from robustscale.laws import load_law, simulate
from robustscale.laws.approach2 import BASE_GRID, _arrays, huber_objective
from robustscale.laws.huber import grid, multistart
from robustscale.laws.observations import final_points, small_run_mask

REF_STARTS = 40  # reference subset size (extrapolated to 3125); --full for all
DELTA = 1e-3  # App. F.2.1


def reference_objective(theta, log_n, log_d, log_loss):
    """One start's objective, written plainly: Huber of logsumexp(a−α log N, b−β log D, e) − log L."""
    a, b, e, alpha, beta = theta
    pred = np.logaddexp(np.logaddexp(a - alpha * log_n, b - beta * log_d), e)
    r = np.abs(pred - log_loss)
    return float(np.sum(np.where(r <= DELTA, 0.5 * r * r, DELTA * (r - 0.5 * DELTA))))


def main(full: bool = False) -> None:
    obs = simulate(load_law("paper-approach2"), seed=0)
    runs = final_points(obs)
    runs = runs[~small_run_mask(runs) & (runs["source"] == "DG")]
    ln, ld, q, ll = _arrays(runs)
    starts = grid(*BASE_GRID)
    print(f"observations: {len(runs)} DG runs; starts: {len(starts)} (App. F.2.1 grid)")

    # ours: warm-up once (imports, allocations), then time the median of 3
    fg = lambda t, g: huber_objective(t, ln, ld, q, ll, DELTA, g)  # noqa: E731
    multistart(fg, starts)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        _, ours = multistart(fg, starts)
        times.append(time.perf_counter() - t0)
    ours_t = float(np.median(times))

    rng = np.random.default_rng(0)
    idx = np.arange(len(starts)) if full else rng.choice(len(starts), REF_STARTS, replace=False)
    t0 = time.perf_counter()
    ref = min(minimize(reference_objective, starts[i], args=(ln, ld, ll), method="L-BFGS-B").fun for i in idx)
    ref_t = (time.perf_counter() - t0) * len(starts) / len(idx)

    label = "all 3125 starts" if full else f"{len(idx)} random starts (seed 0), time x{len(starts) / len(idx):.1f} to 3125"
    print(f"reference  (scipy L-BFGS-B per start, numeric gradients; {label}): "
          f"{ref_t:8.2f} s   objective {ref:.12e}")
    print(f"robustscale (batched L-BFGS, analytic gradients, pruning; median of 3): "
          f"{ours_t:8.2f} s   objective {ours:.12e}")
    print(f"RATIO: {ref_t / ours_t:.0f}x faster (goal >= 50x); objective ours - reference = {ours - ref:+.3e} "
          f"({'OK' if ours <= ref + 1e-9 else 'WORSE'}, goal <= +1e-9)")


if __name__ == "__main__":
    main(full="--full" in sys.argv)
