"""Interval estimates for accuracies (pure functions on numpy arrays).

- `wilson`: the Wilson score interval for k correct out of n (iid questions).
- `cluster_bootstrap`: percentile interval from resampling whole clusters (scenes / cases)
  with replacement; questions that share a scene are correlated, so this is the honest
  interval for benchmark numbers. Vectorised: resamples are drawn in blocks.
- `cluster_robust_se`: the analytic cluster-robust (CR1) standard error of a mean, an
  alternative to the bootstrap.
- `wilson_design_effect`: the default. The continuity-corrected Wilson interval, with Student's t
  on the effective number of clusters (`effective_df`) for z, on the effective sample size
  n / deff, where the design effect deff is the CR1 variance over the binomial variance,
  clipped to [1, n / G]. When the accuracy is 0 or 1 (no spread to estimate deff from) or there
  is one cluster, deff = n / G (every cluster counted as one observation). Its interval is never
  zero-width for a finite sample; bench/statistics_sim.py measures its coverage.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from cvbench.core.seeding import derive_seed

DEFAULT_RESAMPLES = 2000
DEFAULT_LEVEL = 0.95
_BLOCK_ELEMENTS = 2_000_000  # resample-matrix cells held in memory at once


def z_for(level: float) -> float:
    """Two-sided normal quantile for a confidence level (0.95 -> 1.95996...)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2.0)


def _t_central(t: float, df: int) -> float:
    """P(|T| < t) for Student's t with integer df >= 1 (closed-form finite series in
    theta = atan(t / sqrt(df)), Abramowitz & Stegun 26.7.3-26.7.4)."""
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2 == 1:
        total, term = 0.0, math.cos(theta)
        for k in range(1, (df - 1) // 2 + 1):  # cos θ · (1, 2/3 cos²θ, 2·4/(3·5) cos⁴θ, ...)
            total += term
            term *= c2 * (2 * k) / (2 * k + 1)
        return 2.0 / math.pi * (theta + math.sin(theta) * total) if df > 1 else 2.0 * theta / math.pi
    total, term = 0.0, 1.0
    for k in range(1, df // 2 + 1):  # 1, 1/2 cos²θ, 1·3/(2·4) cos⁴θ, ...
        total += term
        term *= c2 * (2 * k - 1) / (2 * k)
    return math.sin(theta) * total


@functools.lru_cache(maxsize=4096)
def t_for(level: float, df: int) -> float:
    """Two-sided Student-t quantile for a confidence level and integer df (bisection on the exact CDF);
    the normal quantile above 100,000 df."""
    z = z_for(level)
    if df < 1:
        raise ValueError(f"t quantile needs df >= 1, got {df}")
    if df > 100_000:
        return z
    lo, hi = z, z
    while _t_central(hi, df) < level:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_central(mid, df) < level:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13 * hi:
            break
    return 0.5 * (lo + hi)


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


def newcombe_paired_difference(
    both: int, a_only: int, b_only: int, neither: int, level: float = DEFAULT_LEVEL
) -> tuple[float, float]:
    """Newcombe's hybrid score interval (1998, method 10) for accuracy(B) - accuracy(A) on paired
    outcomes: `both` right, only A right, only B right, `neither`. Built from each run's Wilson
    interval and the correlation of the pairs (taken as 0 when undefined), it never collapses to a
    point for finite n, unlike a bootstrap of the differences when every pair agrees."""
    n = both + a_only + b_only + neither
    if n == 0:
        return (-1.0, 1.0)
    p_a, p_b = (both + a_only) / n, (both + b_only) / n
    l_a, u_a = wilson(both + a_only, n, level)
    l_b, u_b = wilson(both + b_only, n, level)
    margins = (both + a_only) * (b_only + neither) * (both + b_only) * (a_only + neither)
    phi = (both * neither - a_only * b_only) / math.sqrt(margins) if margins > 0 else 0.0
    # interval for p_a - p_b, then negated for B - A
    delta = math.sqrt(max(0.0, (p_a - l_a) ** 2 - 2 * phi * (p_a - l_a) * (u_b - p_b) + (u_b - p_b) ** 2))
    epsilon = math.sqrt(max(0.0, (u_a - p_a) ** 2 - 2 * phi * (u_a - p_a) * (p_b - l_b) + (p_b - l_b) ** 2))
    lower, upper = (p_a - p_b) - delta, (p_a - p_b) + epsilon
    return (max(-1.0, -upper), min(1.0, -lower))


def wilson_bounds(p_hat: np.ndarray, n_eff: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised Wilson score bounds for observed proportions on (possibly fractional) sample sizes."""
    z2 = z * z
    denom = 1.0 + z2 / n_eff
    centre = (p_hat + z2 / (2.0 * n_eff)) / denom
    half = z * np.sqrt(p_hat * (1.0 - p_hat) / n_eff + z2 / (4.0 * n_eff * n_eff)) / denom
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def wilson_cc_bounds(p_hat: np.ndarray, n_eff: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised continuity-corrected Wilson bounds (Newcombe 1998, method 4) on fractional sizes.

    Conservative like Clopper-Pearson; the lower bound is 0 at p_hat = 0 and the upper 1 at p_hat = 1."""
    z2 = z * z
    n = np.asarray(n_eff, dtype=float)
    p = np.asarray(p_hat, dtype=float)
    q = 1.0 - p
    denom = 2.0 * (n + z2)
    with np.errstate(invalid="ignore"):
        lo = (
            2.0 * n * p + z2 - 1.0 - z * np.sqrt(np.maximum(z2 - 2.0 - 1.0 / n + 4.0 * p * (n * q + 1.0), 0.0))
        ) / denom
        hi = (
            2.0 * n * p + z2 + 1.0 + z * np.sqrt(np.maximum(z2 + 2.0 - 1.0 / n + 4.0 * p * (n * q - 1.0), 0.0))
        ) / denom
    lo = np.where(p <= 0.0, 0.0, np.clip(lo, 0.0, 1.0))
    hi = np.where(p >= 1.0, 1.0, np.clip(hi, 0.0, 1.0))
    return lo, hi


def effective_n(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Design-effect-adjusted sample size from per-cluster correct totals and sizes.

    `sums` and `counts` have clusters on the last axis (leading axes are independent slices, as in
    a simulation). deff = CR1 variance / binomial variance, clipped to [1, n / G]; deff = n / G when
    the proportion is 0 or 1 or there is a single cluster.
    """
    sums = np.asarray(sums, dtype=float)
    counts = np.broadcast_to(np.asarray(counts, dtype=float), sums.shape)
    n = counts.sum(axis=-1)
    g = np.count_nonzero(counts, axis=-1).astype(float)
    p_hat = sums.sum(axis=-1) / n
    resid = sums - p_hat[..., None] * counts
    with np.errstate(divide="ignore", invalid="ignore"):
        var_cr = g / (g - 1.0) * np.sum(resid**2, axis=-1) / (n * n)
        var_bin = p_hat * (1.0 - p_hat) / n
        deff = var_cr / var_bin
    worst = n / g
    degenerate = (g < 2) | (var_bin <= 0.0) | ~np.isfinite(deff)
    deff = np.where(degenerate, worst, np.clip(np.nan_to_num(deff, nan=1.0), 1.0, worst))
    return np.asarray(n / deff, dtype=float)


def effective_df(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Degrees of freedom for the t quantile: the effective number of clusters behind the variance
    estimate, floor((sum r_g^2)^2 / sum r_g^4) - 1 with r_g a cluster's residual total (a Satterthwaite
    count: G - 1 when all clusters contribute alike, fewer when a few clusters carry the spread, as with
    rare answers and correlated clusters), clipped to [1, G - 1]; G - 1 (at least 1) when nothing varies.
    Clusters on the last axis, as in `effective_n`."""
    sums = np.asarray(sums, dtype=float)
    counts = np.broadcast_to(np.asarray(counts, dtype=float), sums.shape)
    g = np.count_nonzero(counts, axis=-1).astype(float)
    p_hat = sums.sum(axis=-1) / counts.sum(axis=-1)
    r2 = (sums - p_hat[..., None] * counts) ** 2
    s2 = np.sum(r2, axis=-1)
    s4 = np.sum(r2 * r2, axis=-1)
    top = np.maximum(g - 1.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.floor(s2 * s2 / s4 * (1.0 + 1e-12)) - 1.0  # the 1e-12 keeps an exact G from rounding down
    return np.asarray(np.where((s4 > 0.0) & np.isfinite(df), np.clip(df, 1.0, top), top), dtype=float)


def wilson_design_effect(
    values: Sequence[float] | np.ndarray, clusters: Sequence[object], level: float = DEFAULT_LEVEL
) -> tuple[float, float] | None:
    """The default interval: continuity-corrected Wilson on the design-effect-adjusted effective n,
    with Student's t on `effective_df` degrees of freedom in place of z.
    None for no values; never zero-width otherwise."""
    vals = np.asarray(values, dtype=float)
    if vals.size == 0:
        return None
    sums, counts = _cluster_totals(vals, clusters)
    n_eff = effective_n(sums, counts)
    df = int(effective_df(sums, counts))
    lo, hi = wilson_cc_bounds(np.asarray(vals.mean()), n_eff, t_for(level, df))
    return (float(lo), float(hi))


def _cluster_totals(values: np.ndarray, clusters: Sequence[object]) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster sums of `values` and per-cluster counts (clusters in first-seen order)."""
    if len(values) != len(clusters):
        raise ValueError(f"{len(values)} values but {len(clusters)} cluster labels")
    _, inverse = np.unique(np.asarray([str(c) for c in clusters], dtype=object), return_inverse=True)
    inverse = inverse.reshape(-1)
    sums = np.bincount(inverse, weights=values.astype(float))
    counts = np.bincount(inverse).astype(float)
    return sums, counts


def cluster_bootstrap(
    values: Sequence[float] | np.ndarray,
    clusters: Sequence[object],
    seed: int,
    n_resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
) -> tuple[float, float]:
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
    sums, _counts = _cluster_totals(vals - vals.mean(), clusters)
    g = sums.size
    if g < 2:
        return float("nan")
    return float(math.sqrt(g / (g - 1) * float(np.sum(sums**2))) / n)


def cluster_robust_ci(
    values: Sequence[float] | np.ndarray, clusters: Sequence[object], level: float = DEFAULT_LEVEL
) -> tuple[float, float]:
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
