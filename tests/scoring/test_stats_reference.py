"""cvbench's statistics against reference implementations (statsmodels, scipy: dev dependencies)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cvbench.analysis.paired_tests import exact_mcnemar_p
from cvbench.runner.options import RunOptions
from cvbench.runner.session import Runner
from cvbench.scoring import stats
from cvbench.scoring.metrics import cluster_key, scored_record

sm = pytest.importorskip("statsmodels.api", reason="dev dependency: pip install statsmodels")
scipy_stats = pytest.importorskip("scipy.stats", reason="dev dependency: pip install scipy")
mcnemar = pytest.importorskip("statsmodels.stats.contingency_tables").mcnemar
proportion_confint = pytest.importorskip("statsmodels.stats.proportion").proportion_confint


def _constructed() -> list[tuple[np.ndarray, list[str]]]:
    rng = np.random.default_rng(21)
    cases = []
    for g, m in ((2, 1), (3, 2), (5, 4), (40, 7), (300, 1)):
        clusters = [f"c{i // m}" for i in range(g * m)]
        cases.append((rng.integers(0, 2, g * m).astype(float), clusters))
    cases.append((np.array([1.0, 1.0, 1.0, 0.0, 1.0, 1.0]), ["a", "a", "b", "b", "c", "c"]))
    cases.append((np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]), ["a", "b", "b", "b", "c", "c", "c"]))  # uneven
    return cases


CASES = _constructed()


@pytest.mark.parametrize("values, clusters", CASES)
def test_cluster_robust_se_matches_statsmodels_ols_on_a_constant(values: np.ndarray, clusters: list[str]) -> None:
    groups = np.unique(np.asarray(clusters), return_inverse=True)[1]
    if np.unique(groups).size < 2:
        pytest.skip("one cluster")
    fit = sm.OLS(values, np.ones_like(values)).fit(
        cov_type="cluster", cov_kwds={"groups": groups, "use_correction": True}
    )
    # statsmodels' correction is G/(G-1) * (N-1)/(N-K); with K = 1 regressor it is G/(G-1), as CR1 here
    assert stats.cluster_robust_se(values, clusters) == pytest.approx(float(fit.bse[0]), abs=1e-9, rel=1e-9)


@pytest.mark.parametrize(
    "k, n",
    [(0, 1), (1, 1), (0, 6), (6, 6), (3, 7), (1, 50), (49, 50), (81, 263), (0, 17000), (16999, 17000), (8500, 17000)],
)
@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_wilson_matches_statsmodels(k: int, n: int, level: float) -> None:
    lo, hi = proportion_confint(k, n, alpha=1 - level, method="wilson")
    got = stats.wilson(k, n, level)
    assert got == (pytest.approx(lo, abs=1e-9), pytest.approx(hi, abs=1e-9))


@pytest.mark.parametrize("k, n", [(0, 6), (6, 6), (3, 7), (1, 50), (81, 263)])
def test_continuity_corrected_wilson_is_at_least_as_wide_as_clopper_pearson_nearly(k: int, n: int) -> None:
    # No reference library implements the corrected Wilson; it is known to track Clopper-Pearson
    # (Newcombe 1998). Check that on integer n it contains the plain Wilson and lies within 0.03 of CP.
    cp = proportion_confint(k, n, alpha=0.05, method="beta")
    w = stats.wilson(k, n)
    lo, hi = stats.wilson_cc_bounds(np.asarray(k / n), np.asarray(float(n)), stats.z_for(0.95))
    assert lo <= w[0] + 1e-12 and hi >= w[1] - 1e-12
    assert abs(float(lo) - cp[0]) < 0.03 and abs(float(hi) - cp[1]) < 0.03


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7, 20, 299, 4000])
@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_t_quantile_matches_scipy(df: int, level: float) -> None:
    assert stats.t_for(level, df) == pytest.approx(float(scipy_stats.t.ppf(0.5 + level / 2, df)), abs=1e-9)


@pytest.mark.parametrize(
    "a_only, b_only", [(0, 0), (0, 1), (1, 0), (3, 3), (0, 6), (2, 9), (17, 40), (250, 301), (1000, 1100)]
)
def test_exact_mcnemar_matches_statsmodels_and_scipy(a_only: int, b_only: int) -> None:
    table = [[5, a_only], [b_only, 7]]
    ref = float(mcnemar(table, exact=True).pvalue)
    got = exact_mcnemar_p(a_only, b_only)
    assert got == pytest.approx(ref, abs=1e-9)
    if a_only + b_only:
        assert got == pytest.approx(float(scipy_stats.binomtest(a_only, a_only + b_only, 0.5).pvalue), abs=1e-9)


def test_real_run_records_match_statsmodels(tiny_data: Any, tmp_path: Path) -> None:
    """A random-baseline run on the tiny dataset: its records' clustered SE and Wilson bounds, and
    results.json's own Wilson interval, agree with statsmodels."""
    out = tmp_path / "run"
    Runner(
        RunOptions(
            tasks=(tiny_data.task,), data_dir=tiny_data.root, out=out, progress=False, model="random", use_cache=False
        )
    ).execute()
    recs = [scored_record(json.loads(line)) for line in (out / "samples.jsonl").read_text().splitlines()]
    values = np.array([1.0 if r.correct else 0.0 for r in recs])
    clusters = [cluster_key(r) for r in recs]
    groups = np.unique(np.asarray(clusters), return_inverse=True)[1]
    fit = sm.OLS(values, np.ones_like(values)).fit(cov_type="cluster", cov_kwds={"groups": groups})
    assert stats.cluster_robust_se(values, clusters) == pytest.approx(float(fit.bse[0]), abs=1e-9)
    overall = json.loads((out / "results.json").read_text())["overall"]
    lo, hi = proportion_confint(overall["correct"], overall["n"], alpha=0.05, method="wilson")
    assert overall["wilson"] == [pytest.approx(lo, abs=1e-9), pytest.approx(hi, abs=1e-9)]
    assert overall["ci_method"] == "wilson_design_effect" and overall["ci"][1] > overall["ci"][0]
