"""Interval estimates for accuracies (pure functions on numpy arrays).

- `wilson`: the Wilson score interval for k correct out of n (iid questions).
- `cluster_bootstrap`: percentile interval from resampling whole clusters (scenes / cases)
  with replacement; questions that share a scene are correlated, so this is the honest
  interval for benchmark numbers. Vectorised: resamples are drawn in blocks.
- `cluster_robust_se`: the analytic cluster-robust (CR1) standard error of a mean, an
  alternative to the bootstrap.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from cvbench.harness.seeding import derive_seed

DEFAULT_RESAMPLES = 2000
DEFAULT_LEVEL = 0.95
_BLOCK_ELEMENTS = 2_000_000  # resample-matrix cells held in memory at once


def z_for(level: float) -> float:
    """Two-sided normal quantile for a confidence level (0.95 -> 1.95996...)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2.0)


def wilson(correct: int, n: int, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """Wilson score interval; (0, 1) when n is 0."""
    if n < 0 or correct < 0 or correct > n:
        raise ValueError(f"wilson: need 0 <= correct <= n, got correct={correct}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    z = z_for(level)
    p = correct / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _cluster_totals(values: np.ndarray, clusters: Sequence[object]) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster sums of `values` and per-cluster counts (clusters in first-seen order)."""
    if len(values) != len(clusters):
        raise ValueError(f"{len(values)} values but {len(clusters)} cluster labels")
    _, inverse = np.unique(np.asarray([str(c) for c in clusters], dtype=object), return_inverse=True)
    inverse = inverse.reshape(-1)
    sums = np.bincount(inverse, weights=values.astype(float))
    counts = np.bincount(inverse).astype(float)
    return sums, counts


def cluster_bootstrap(values: Sequence[float] | np.ndarray, clusters: Sequence[object], seed: int,
                      n_resamples: int = DEFAULT_RESAMPLES, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """Percentile interval for the mean of `values` resampling whole clusters.

    Each resample draws as many clusters as there are, with replacement, and takes the
    question-weighted mean (sum of picked cluster totals over their question counts).
    Deterministic for a given seed.
    """
    vals = np.asarray(values, dtype=float)
    if vals.size == 0:
        return (0.0, 1.0)
    if n_resamples < 1:
        raise ValueError("n_resamples must be at least 1")
    sums, counts = _cluster_totals(vals, clusters)
    g = sums.size
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples, dtype=float)
    block = max(1, _BLOCK_ELEMENTS // g)
    for start in range(0, n_resamples, block):
        stop = min(n_resamples, start + block)
        picks = rng.integers(0, g, size=(stop - start, g))
        means[start:stop] = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def cluster_robust_se(values: Sequence[float] | np.ndarray, clusters: Sequence[object]) -> float:
    """CR1 cluster-robust standard error of the mean: sqrt(G/(G-1) * sum_g r_g^2) / n,
    with r_g the sum of residuals in cluster g. NaN with fewer than two clusters."""
    vals = np.asarray(values, dtype=float)
    n = vals.size
    if n == 0:
        return float("nan")
    sums, counts = _cluster_totals(vals - vals.mean(), clusters)
    g = sums.size
    if g < 2:
        return float("nan")
    return float(math.sqrt(g / (g - 1) * float(np.sum(sums ** 2))) / n)


def cluster_robust_ci(values: Sequence[float] | np.ndarray, clusters: Sequence[object],
                      level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """Normal interval mean +- z * CR1 SE, clipped to [0, 1]."""
    vals = np.asarray(values, dtype=float)
    se = cluster_robust_se(vals, clusters)
    if vals.size == 0 or math.isnan(se):
        return (0.0, 1.0)
    z = z_for(level)
    m = float(vals.mean())
    return (max(0.0, m - z * se), min(1.0, m + z * se))


def bootstrap_seed(run_seed: int, slice_name: str) -> int:
    """The bootstrap seed of one slice: derived from the run seed and the slice's name."""
    return derive_seed(run_seed, "bootstrap", slice_name)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation; None for no values."""
    if len(values) == 0:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q))
