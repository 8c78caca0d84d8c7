"""Coverage of cvbench's accuracy intervals and the regression gate's error rates, by simulation.

    PYTHONPATH=. python bench/statistics_sim.py [--reps 2000]     # writes bench/results/statistics.json

Needs numpy and scipy (dev dependency: scipy is used for the t quantile of a candidate interval
and for the vectorised exact binomial test of the gate).

Coverage model: G clusters (scenes / cases) of m questions each; each cluster draws its own
success probability from Beta(p (1-rho)/rho, (1-p)(1-rho)/rho) (a beta-binomial with
intra-cluster correlation rho; rho = 0 is plain binomial), the questions in it are Bernoulli draws.
An interval covers when lo <= p <= hi. Everything is computed from cluster totals, vectorised over
replicates.

Gate model: n questions with their own difficulty q_i ~ Beta(2, 1) (mean accuracy 2/3, a
heterogeneous item pool); run A answers question i right with probability q_i, run B with q_i - d
(d = 0 for two runs of the same model), independently given q_i. The gate fires on a slice when the
exact McNemar p < alpha AND the observed drop >= min_effect (cvbench compare also requires the
paired cluster-bootstrap upper bound < 0, which can only remove firings, so the rates measured
here are upper bounds for the false-positive rate and lower bounds for power).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, write_result

from cvbench.scoring import stats

CLUSTERS = (5, 10, 20, 50, 100, 300)
SIZES = (1, 2, 5, 10, 20)
PROPORTIONS = (0.0, 0.02, 0.3, 0.5, 0.9, 1.0)
ICCS = (0.0, 0.2, 0.5)
LEVEL = 0.95
# the default first; then candidates it was chosen over
METHODS = (
    "wilson_design_effect",
    "wilson_cc_design_effect_t_g_minus_1",
    "wilson_design_effect_z",
    "wilson_iid",
    "cluster_robust_wald",
)


def cluster_totals(rng: np.random.Generator, reps: int, g: int, m: int, p: float, rho: float) -> np.ndarray:
    """(reps, g) correct counts per cluster under the beta-binomial model."""
    if p in (0.0, 1.0) or rho == 0.0:
        probs = np.full((reps, g), p)
    else:
        a = p * (1.0 - rho) / rho
        b = (1.0 - p) * (1.0 - rho) / rho
        probs = rng.beta(a, b, size=(reps, g))
    return rng.binomial(m, probs).astype(float)


def intervals(sums: np.ndarray, m: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each candidate method's (lo, hi) arrays for every replicate (rows of `sums`)."""
    from scipy.stats import t as student_t  # type: ignore[import-untyped]

    reps, g = sums.shape
    n = g * m
    counts = np.full(g, float(m))
    p_hat = sums.sum(axis=1) / n
    z = stats.z_for(LEVEL)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    n_eff = stats.effective_n(sums, counts)
    df = stats.effective_df(sums, counts)
    t_of = {d: stats.t_for(LEVEL, int(d)) for d in np.unique(df)}  # the same quantiles cvbench uses
    out["wilson_design_effect"] = stats.wilson_cc_bounds(p_hat, n_eff, np.vectorize(t_of.__getitem__)(df))
    t_g = float(student_t.ppf(0.5 + LEVEL / 2, max(g - 1, 1)))
    out["wilson_cc_design_effect_t_g_minus_1"] = stats.wilson_cc_bounds(p_hat, n_eff, t_g)
    out["wilson_design_effect_z"] = stats.wilson_bounds(p_hat, n_eff, z)
    out["wilson_iid"] = stats.wilson_bounds(p_hat, np.full(reps, float(n)), z)
    resid = sums - p_hat[:, None] * m
    se = np.sqrt(g / (g - 1) * np.sum(resid**2, axis=1)) / n
    out["cluster_robust_wald"] = (np.clip(p_hat - z * se, 0, 1), np.clip(p_hat + z * se, 0, 1))
    return out


def coverage_grid(reps: int, seed: int) -> list[dict[str, Any]]:
    cells = []
    for gi, g in enumerate(CLUSTERS):
        for mi, m in enumerate(SIZES):
            for pi, p in enumerate(PROPORTIONS):
                for ri, rho in enumerate(ICCS):
                    rng = np.random.default_rng([seed, gi, mi, pi, ri])
                    sums = cluster_totals(rng, reps, g, m, p, rho)
                    cell: dict[str, Any] = {"clusters": g, "size": m, "n": g * m, "p": p, "icc": rho}
                    for name, (lo, hi) in intervals(sums, m).items():
                        covered = (lo <= p + 1e-12) & (p - 1e-12 <= hi)
                        cell[name] = {
                            "coverage": round(float(covered.mean()), 4),
                            "zero_width": int(np.count_nonzero(hi - lo <= 0.0)),
                            "mean_width": round(float(np.mean(hi - lo)), 4),
                        }
                    cells.append(cell)
    return cells


def summarise(cells: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for name in METHODS:
        covs = [c[name]["coverage"] for c in cells]
        big = [c[name]["coverage"] for c in cells if c["n"] >= 20]
        worst = min(cells, key=lambda c: c[name]["coverage"])
        out[name] = {
            "min_coverage": min(covs),
            "min_coverage_n_ge_20": min(big),
            "cells_below_93_n_ge_20": sum(1 for v in big if v < 0.93),
            "cells_below_85": sum(1 for v in covs if v < 0.85),
            "zero_width_intervals": sum(c[name]["zero_width"] for c in cells),
            "worst_cell": {k: worst[k] for k in ("clusters", "size", "p", "icc")},
        }
    return out


def gate(reps: int, seed: int, alpha: float, min_effect: float) -> list[dict[str, Any]]:
    from scipy.stats import binom  # type: ignore[import-untyped]

    rows = []
    for n in (1000, 17000):
        for drop in (0.0, 0.03, 0.05):
            rng = np.random.default_rng([seed, n, int(drop * 100)])
            fired = 0
            done = 0
            block = max(1, 4_000_000 // n)
            while done < reps:
                r = min(block, reps - done)
                q = rng.beta(2.0, 1.0, size=(r, n))
                a = rng.random((r, n)) < q
                b = rng.random((r, n)) < np.clip(q - drop, 0.0, 1.0)
                a_only = np.count_nonzero(a & ~b, axis=1)
                b_only = np.count_nonzero(b & ~a, axis=1)
                disc = a_only + b_only
                p = np.minimum(1.0, 2.0 * binom.cdf(np.minimum(a_only, b_only), disc, 0.5))
                p = np.where(disc == 0, 1.0, p)
                observed_drop = (a_only - b_only) / n
                fired += int(np.count_nonzero((p < alpha) & (observed_drop >= min_effect)))
                done += r
            rows.append(
                {
                    "n": n,
                    "true_drop": drop,
                    "alpha": alpha,
                    "min_effect": min_effect,
                    "reps": reps,
                    "rate": round(fired / reps, 4),
                    "kind": "false_positive_rate" if drop == 0.0 else "power",
                }
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=20261205)
    ap.add_argument("--name", default="statistics", help="result file bench/results/<name>.json")
    args = ap.parse_args()
    started = machine()
    t0 = time.perf_counter()
    cells = coverage_grid(args.reps, args.seed)
    t1 = time.perf_counter()
    gate_rows = gate(args.reps, args.seed, alpha=0.05, min_effect=0.0)
    gate_rows += gate(args.reps, args.seed, alpha=0.05, min_effect=0.01)
    t2 = time.perf_counter()
    result = {
        "level": LEVEL,
        "reps_per_cell": args.reps,
        "seed": args.seed,
        "model": "beta-binomial clusters (equal sizes); gate: Beta(2,1) item difficulties, paired runs",
        "default_method": "wilson_design_effect",
        "coverage_summary": summarise(cells),
        "gate": gate_rows,
        "coverage_grid": cells,
        "machine": started,
        "seconds": {"coverage": round(t1 - t0, 1), "gate": round(t2 - t1, 1)},
    }
    write_result(args.name, result)
    print(json.dumps({k: result[k] for k in ("coverage_summary", "gate", "seconds")}, indent=1))


if __name__ == "__main__":
    main()
