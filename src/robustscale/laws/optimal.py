"""Compute-optimal allocation: Eq 4 (closed form N*, D*) and Eq 6 (smaller model, more data)."""

from __future__ import annotations

import numpy as np

# FLOPs ≈ 7822·N·D for adversarial training on CIFAR-10 (§3.2.2, replacing the LLM rule 6·N·D):
# 7822/27 ≈ 290 FLOPs per parameter per forward pass, times the 27 forward-equivalents of one
# TRADES/PGD-10 training sample (App. B). The paper finds < 1% relative error over > 9000 observations.
# Fits take the constant from their observations when those report FLOPs; this is the fallback.
FLOPS_PER_PARAM_SAMPLE = 7822.0


def optimal_exponents(alpha: float, beta: float) -> tuple[float, float]:
    """Eq 4's exponents: a = β/(α+β) for N*, b = α/(α+β) for D*."""
    return beta / (alpha + beta), alpha / (alpha + beta)


def optimal_allocation(flops, A: float, B: float, alpha: float, beta: float,
                       flops_per_param_sample: float = FLOPS_PER_PARAM_SAMPLE):
    """Eq 4: N*, D* minimising A/N^α + B/D^β subject to FLOPs = c·N·D (c = 7822 in the paper).

    Parameters: flops (scalar or array), A, B (B' at the FID of interest), alpha, beta,
    flops_per_param_sample (c).
    Returns: (n_star, d_star) with n_star·d_star·c = flops.
    """
    a, b = optimal_exponents(alpha, beta)
    G = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    c = np.asarray(flops, dtype=float) / flops_per_param_sample
    return G * c**a, c**b / G


def omega_d(omega_n, A: float, alpha: float, B: float, beta: float, n_star: float, d_star: float):
    """Eq 6: the data multiple ω_D that keeps the loss of (ω_N·N*, ω_D·D*) equal to that of (N*, D*).

    B is B' at the FID of interest. Returns inf where no amount of data compensates (ω_N too small).
    """
    omega_n = np.asarray(omega_n, dtype=float)
    ratio = (A * n_star**-alpha) / (B * d_star**-beta)
    inner = 1.0 - (omega_n**-alpha - 1.0) * ratio
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(inner > 0, np.abs(inner) ** (-1.0 / beta), np.inf)
