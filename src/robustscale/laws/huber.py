"""Huber objective on log residuals and a batched L-BFGS that runs every start of a grid at once.

The paper (App. F.2, after Hoffmann et al. 2022) runs scipy L-BFGS from each point of a Cartesian
grid of initial parameters (3125 for Approach 2) and keeps the best. Running them one by one with
numeric gradients is slow; here all starts advance together as (S, P) arrays with analytic
gradients; after a few iterations only the best 64 starts go on (the grid's starts fall into a
handful of basins, and the bad ones show it early), and the best 2 distinct minima are polished
with scipy's L-BFGS-B to full precision. bench/bench_laws.py compares with the naive procedure.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Callable

import numpy as np
from scipy.optimize import minimize

# (theta (S, P), grad) -> (objective (S,), gradient (S, P) or None when grad is False);
# a non-finite objective marks an invalid point.
ObjectiveGrad = Callable[[np.ndarray, bool], tuple[np.ndarray, np.ndarray | None]]


def huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss of residuals r and its derivative dh/dr (elementwise)."""
    a = np.abs(r)
    value = np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))
    return value, np.clip(r, -delta, delta)


def grid(*axes) -> np.ndarray:
    """Cartesian product of initial values, one row per start."""
    return np.array(list(itertools.product(*axes)), dtype=float)


def batched_lbfgs(fg: ObjectiveGrad, x0: np.ndarray, max_iter: int = 200, memory: int = 10,
                  ftol: float = 1e-10, bounds: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Minimise every row of x0 with L-BFGS (two-loop recursion, Armijo backtracking), in lockstep.

    bounds (P, 2) box: trial points are projected onto it (a projected search; the scipy polish
    in `multistart` makes the end point exact). Returns: (x (S, P), f (S,)) at the end; rows stop
    moving once their decrease is below ftol.
    """
    lo, hi = (None, None) if bounds is None else (bounds[:, 0], bounds[:, 1])
    x = x0.astype(float).copy() if bounds is None else np.clip(x0.astype(float), lo, hi)
    f, g = fg(x, True)
    s_hist: list[np.ndarray] = []
    y_hist: list[np.ndarray] = []
    rho_hist: list[np.ndarray] = []
    active = np.isfinite(f)
    first = True
    for _ in range(max_iter):
        if not active.any():
            break
        q = g.copy()
        alphas = []
        for s, y, rho in zip(reversed(s_hist), reversed(y_hist), reversed(rho_hist)):
            a = rho * np.einsum("ij,ij->i", s, q)
            q -= a[:, None] * y
            alphas.append(a)
        if s_hist:
            s, y = s_hist[-1], y_hist[-1]
            yy = np.einsum("ij,ij->i", y, y)
            gamma = np.where(yy > 0, np.einsum("ij,ij->i", s, y) / np.where(yy > 0, yy, 1), 1.0)
            q *= np.where(gamma > 0, gamma, 1.0)[:, None]
        for (s, y, rho), a in zip(zip(s_hist, y_hist, rho_hist), reversed(alphas)):
            b = rho * np.einsum("ij,ij->i", y, q)
            q += (a - b)[:, None] * s
        d = -q
        slope = np.einsum("ij,ij->i", g, d)
        not_descent = ~(slope < 0)
        d[not_descent] = -g[not_descent]
        slope = np.einsum("ij,ij->i", g, d)
        gnorm = np.linalg.norm(g, axis=1)
        step = np.where(first | not_descent, 1.0 / np.maximum(gnorm, 1.0), 1.0)
        first = False
        # Armijo backtracking, vectorised: rows that have not yet found a step halve theirs.
        x_new, f_new = x.copy(), f.copy()
        pending = active & (slope < 0)
        for _ in range(40):
            if not pending.any():
                break
            xt = x[pending] + step[pending, None] * d[pending]
            if bounds is not None:
                xt = np.clip(xt, lo, hi)
            ft, _ = fg(xt, False)
            decrease_wanted = 1e-4 * np.einsum("ij,ij->i", g[pending], xt - x[pending])
            ok = np.isfinite(ft) & (ft <= f[pending] + np.minimum(decrease_wanted, 0.0)) & (ft < f[pending])
            idx = np.flatnonzero(pending)
            x_new[idx[ok]] = xt[ok]
            f_new[idx[ok]] = ft[ok]
            pending[idx[ok]] = False
            step[pending] *= 0.5
        moved = active & ~pending & (slope < 0)
        g_new = g.copy()
        if moved.any():
            g_new[moved] = fg(x_new[moved], True)[1]
        s = x_new - x
        y = g_new - g
        sy = np.einsum("ij,ij->i", s, y)
        good = moved & (sy > 1e-16)
        rho = np.where(good, 1.0 / np.where(good, sy, 1.0), 0.0)
        s_hist.append(np.where(good[:, None], s, 0.0))
        y_hist.append(np.where(good[:, None], y, 0.0))
        rho_hist.append(rho)
        if len(s_hist) > memory:
            s_hist.pop(0), y_hist.pop(0), rho_hist.pop(0)
        decrease = f - f_new
        x, f = np.where(moved[:, None], x_new, x), np.where(moved, f_new, f)
        g = np.where(moved[:, None], g_new, g)
        active &= moved & (decrease > ftol * np.abs(f))
    return x, f


def multistart(fg: ObjectiveGrad, starts: np.ndarray, prune_after: int = 5, keep: int = 64,
               max_iter: int = 120, polish: int = 2,
               bounds: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Best minimum over a grid of starts: batched L-BFGS, pruning, then scipy polish of the best.

    Parameters: fg (vectorised objective and gradient), starts (S, P), prune_after (iterations all
    starts get), keep (starts kept after pruning), max_iter (further iterations for those),
    polish (best distinct minima refined with scipy L-BFGS-B and analytic gradients), bounds
    ((P, 2) box for every parameter, or None).
    Returns: (theta (P,), objective). Overflow on the way (a start far from the data) is expected
    and silenced: it marks that start invalid, it is not the user's concern.
    """
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _multistart(fg, starts, prune_after, keep, max_iter, polish, bounds)


def _multistart(fg, starts, prune_after, keep, max_iter, polish, bounds):
    x, f = batched_lbfgs(fg, starts, max_iter=prune_after, bounds=bounds)
    order = np.argsort(np.where(np.isfinite(f), f, np.inf))[:keep]
    x, f = batched_lbfgs(fg, x[order], max_iter=max_iter, bounds=bounds)
    order = np.argsort(np.where(np.isfinite(f), f, np.inf))
    best_x, best_f = x[order[0]], float(f[order[0]])

    def single(theta):
        v, gr = fg(theta[None, :], True)
        return (float(v[0]), gr[0]) if np.isfinite(v[0]) else (1e300, np.zeros_like(theta))

    seen: list[np.ndarray] = []
    for i in order:
        if len(seen) >= polish or not np.isfinite(f[i]):
            break
        if any(np.allclose(x[i], s, atol=1e-4) for s in seen):
            continue
        seen.append(x[i])
        res = minimize(single, x[i], jac=True, method="L-BFGS-B",
                       bounds=None if bounds is None else bounds.tolist(),
                       options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12, "maxcor": 20})
        if res.fun < best_f:
            best_x, best_f = res.x, float(res.fun)
    return np.asarray(best_x, dtype=float), best_f
