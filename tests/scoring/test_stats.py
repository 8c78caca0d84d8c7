from __future__ import annotations

import numpy as np
import pytest

from cvbench.scoring import stats


@pytest.mark.parametrize(
    "k, n, lo, hi",
    [
        # reference values of the Wilson score interval at 95% (z = 1.959964)
        (0, 10, 0.0, 0.27753),
        (5, 10, 0.23659, 0.76341),
        (81, 263, 0.25529, 0.36620),
        (10, 10, 0.72247, 1.0),
    ],
)
def test_wilson_known_values(k: int, n: int, lo: float, hi: float) -> None:
    got = stats.wilson(k, n)
    assert got[0] == pytest.approx(lo, abs=1e-4)
    assert got[1] == pytest.approx(hi, abs=1e-4)


def test_wilson_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        stats.wilson(5, 3)
    assert stats.wilson(0, 0) == (0.0, 1.0)


def test_bootstrap_deterministic_and_seed_dependent() -> None:
    rng = np.random.default_rng(1)
    values = rng.integers(0, 2, 400)
    clusters = rng.integers(0, 40, 400)
    a = stats.cluster_bootstrap(values, clusters, seed=7)
    b = stats.cluster_bootstrap(values, clusters, seed=7)
    c = stats.cluster_bootstrap(values, clusters, seed=8)
    assert a == b
    assert a != c
    assert a[0] < values.mean() < a[1]


def test_bootstrap_blocks_do_not_change_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    values = np.arange(100) % 3 == 0
    clusters = np.arange(100) // 4
    whole = stats.cluster_bootstrap(values, clusters, seed=3, n_resamples=500)
    # the same draws in small blocks: the generator stream is consumed identically
    monkeypatch.setattr(stats, "_BLOCK_ELEMENTS", 25 * 7)
    assert stats.cluster_bootstrap(values, clusters, seed=3, n_resamples=500) == whole


def test_cluster_interval_wider_than_iid_when_clusters_are_correlated() -> None:
    # 30 scenes of 20 questions; within a scene the answers are all right or all wrong
    rng = np.random.default_rng(0)
    scene_right = rng.random(30) < 0.5
    values = np.repeat(scene_right, 20).astype(float)
    clusters = np.repeat(np.arange(30), 20)
    iid = stats.cluster_bootstrap(values, np.arange(values.size), seed=1)
    clustered = stats.cluster_bootstrap(values, clusters, seed=1)
    assert (clustered[1] - clustered[0]) > 3 * (iid[1] - iid[0])
    robust = stats.cluster_robust_ci(values, clusters)
    assert (robust[1] - robust[0]) > 3 * (iid[1] - iid[0])
    wilson = stats.wilson(int(values.sum()), values.size)
    assert (clustered[1] - clustered[0]) > 3 * (wilson[1] - wilson[0])


def test_cluster_robust_se_matches_iid_formula_for_singletons() -> None:
    values = np.array([1, 0, 1, 1, 0, 1, 0, 1.0])
    se = stats.cluster_robust_se(values, np.arange(8))
    p, n = values.mean(), values.size
    # CR1 with singleton clusters: sqrt(n/(n-1) * sum (y - p)^2) / n = sqrt(p(1-p)/(n-1))
    assert se == pytest.approx(np.sqrt(p * (1 - p) / (n - 1)))
    assert np.isnan(stats.cluster_robust_se(values, ["one"] * 8))


def test_bootstrap_seed_depends_on_slice() -> None:
    assert stats.bootstrap_seed(0, "a") == stats.bootstrap_seed(0, "a")
    assert stats.bootstrap_seed(0, "a") != stats.bootstrap_seed(0, "b")
    assert stats.bootstrap_seed(0, "a") != stats.bootstrap_seed(1, "a")
