"""The exact and resampling statistics of a paired comparison (pure functions): exact McNemar on
the discordant pairs, Holm's adjustment across gated slices, the minimum detectable drop and the
paired cluster-bootstrap interval. Formulas are documented in docs/ci.md."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from cvbench.core.seeding import derive_seed
from cvbench.scoring import stats


def binomial_half_cdf(k: int, m: int) -> float:
    """P(X <= k) for X ~ Binomial(m, 1/2), computed exactly with integers then rounded once."""
    if m < 0:
        raise ValueError(f"m must be >= 0, got {m}")
    if k < 0:
        return 0.0
    if k >= m:
        return 1.0
    term = 1  # C(m, 0)
    total = 1
    for i in range(1, k + 1):
        term = term * (m - i + 1) // i  # exact: C(m, i) = C(m, i-1) * (m-i+1) / i
        total += term
    return total / (1 << m)  # int / int true division is correctly rounded for big ints


def exact_mcnemar_p(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value: a binomial(a_only + b_only, 1/2) test on the discordant pairs.

    `a_only`: pairs A got right and B wrong; `b_only`: pairs B got right and A wrong.
    p = min(1, 2 * P(X <= min(a_only, b_only))).
    """
    if a_only < 0 or b_only < 0:
        raise ValueError("discordant counts must be non-negative")
    m = a_only + b_only
    if m == 0:
        return 1.0
    return min(1.0, 2.0 * binomial_half_cdf(min(a_only, b_only), m))


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (same order as given); reject where adjusted p < alpha."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def min_discordant_for_significance(alpha: float) -> int:
    """Smallest number of discordant pairs, all in one direction, that the exact test finds significant."""
    m = 1
    while exact_mcnemar_p(m, 0) >= alpha:
        m += 1
    return m


@dataclass(frozen=True)
class MinimumDetectableEffect:
    drop: float | None  # smallest detectable drop in accuracy (fraction), None when n is too small
    discordance: float  # observed discordant-pair rate used
    exact_floor: float  # min_discordant_for_significance(alpha) / n: no smaller drop can ever be significant
    note: str = ""


def minimum_detectable_drop(n: int, discordance: float, alpha: float, power: float = 0.8) -> MinimumDetectableEffect:
    """Smallest drop a paired McNemar test on `n` pairs detects at `alpha` with `power`.

    Connor's (1987) sample-size relation for paired proportions with discordance rate psi,
        sqrt(n) * delta = z_{1-alpha/2} * sqrt(psi) + z_{power} * sqrt(psi - delta^2),
    solved for delta by bisection on (0, sqrt(psi)]; the result is never reported below the
    exact test's floor (the fewest one-directional discordant pairs that can be significant,
    divided by n). With no discordant pairs observed only that floor is known.
    """
    if n <= 0:
        return MinimumDetectableEffect(None, 0.0, 1.0, "no shared records")
    m_min = min_discordant_for_significance(alpha)
    if n < m_min:
        return MinimumDetectableEffect(
            None,
            discordance,
            1.0,
            f"{n} pairs: the exact test needs at least {m_min} discordant pairs to reach alpha {alpha:g}",
        )
    floor = m_min / n
    if discordance <= 0.0:
        return MinimumDetectableEffect(floor, 0.0, floor, "no discordant pairs observed: exact-test floor only")
    z_a = NormalDist().inv_cdf(1.0 - alpha / 2.0)
    z_b = NormalDist().inv_cdf(power)
    root_n = math.sqrt(n)

    def excess(delta: float) -> float:
        return z_a * math.sqrt(discordance) + z_b * math.sqrt(max(0.0, discordance - delta * delta)) - root_n * delta

    hi = math.sqrt(discordance)
    if excess(hi) > 0.0:
        return MinimumDetectableEffect(None, discordance, floor, "too few records to reach the requested power")
    lo = 0.0
    for _ in range(100):
        mid = (lo + hi) / 2.0
        if excess(mid) > 0.0:
            lo = mid
        else:
            hi = mid
    return MinimumDetectableEffect(min(1.0, max(hi, floor)), discordance, floor)


def paired_cluster_bootstrap(
    a_correct: np.ndarray,
    b_correct: np.ndarray,
    clusters: Sequence[str],
    *,
    n_boot: int,
    level: float,
    seed: int,
    label: str,
) -> tuple[float, float]:
    """Percentile interval for mean(b) - mean(a), resampling whole clusters so pairs stay together.

    The per-record differences b - a (in {-1, 0, 1}) go through `stats.cluster_bootstrap`
    (each replicate: as many clusters as there are, drawn with replacement, ratio of summed
    differences to summed record counts). The seed is derive_seed(seed, "compare-bootstrap", label).
    """
    a = np.asarray(a_correct, dtype=np.int64)
    b = np.asarray(b_correct, dtype=np.int64)
    if a.shape != b.shape or a.ndim != 1 or len(clusters) != a.shape[0]:
        raise ValueError("a_correct, b_correct and clusters must be 1-d and of equal length")
    if a.size == 0:
        raise ValueError("no pairs to bootstrap")
    return stats.cluster_bootstrap(
        (b - a).astype(float), list(clusters), derive_seed(seed, "compare-bootstrap", label), n_boot, level
    )
