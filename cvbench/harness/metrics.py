"""Metrics of a run: overall and per-slice accuracy with intervals, chance and failure counts.

Pure functions from `SampleRecord`s to the `results.json` structure of docs/run-format.md.
Errors, unparsed answers and invalid samples stay in `n` (counted wrong) and are reported
separately. Intervals cluster by `<task>/<cluster>` (scene or case); each slice's bootstrap
seed is derived from the run seed and the slice's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Literal, Mapping, Sequence

import numpy as np

from cvbench.harness import stats
from cvbench.harness.rundir import RESULTS_SCHEMA, SampleRecord


@dataclass(frozen=True, slots=True)
class ScoredRecord:
    """The part of a `SampleRecord` that the metrics read (no prompt, response or protocol):
    a run keeps these for its records instead of reading `samples.jsonl` back."""

    task: str
    benchmark: str
    setting: str
    cluster: str
    slices: dict[str, list[str]]
    n_options: int
    correct: bool
    parse_status: str
    usage: dict[str, Any]
    latency_s: float
    attempts: int
    cached: bool


def scored_record(record: SampleRecord | Mapping[str, Any]) -> ScoredRecord:
    """The metrics' view of a record, or of its complete JSON object (every field, as written to
    samples.jsonl)."""
    if isinstance(record, SampleRecord):
        return ScoredRecord(record.task, record.benchmark, record.setting, record.cluster, record.slices,
                            record.n_options, record.correct, record.parse_status, record.usage, record.latency_s,
                            record.attempts, record.cached)
    return ScoredRecord(*(record[name] for name in _SCORED_FIELDS))


_SCORED_FIELDS: tuple[str, ...] = tuple(ScoredRecord.__dataclass_fields__)


AnyRecord = SampleRecord | ScoredRecord

CiMethod = Literal["cluster_bootstrap", "cluster_robust", "wilson"]
CI_METHODS: tuple[str, ...] = ("cluster_bootstrap", "cluster_robust", "wilson")


def evaluation_key(record: AnyRecord) -> str:
    return f"{record.task}@{record.setting}"


def cluster_key(record: AnyRecord) -> str:
    return f"{record.task}/{record.cluster}"


def _rate(count: int, n: int) -> float:
    return count / n if n else 0.0


def metric(records: Sequence[AnyRecord], run_seed: int, slice_name: str, *,
           ci_method: str = "cluster_bootstrap", n_resamples: int = stats.DEFAULT_RESAMPLES,
           level: float = stats.DEFAULT_LEVEL) -> dict[str, Any]:
    """One METRIC object (docs/run-format.md) over `records`."""
    if ci_method not in CI_METHODS:
        raise ValueError(f"unknown ci method {ci_method!r} (choose from {', '.join(CI_METHODS)})")
    n = len(records)
    values = np.fromiter((1.0 if r.correct else 0.0 for r in records), dtype=float, count=n)
    correct = int(values.sum())
    clusters = [cluster_key(r) for r in records]
    n_clusters = len(set(clusters))
    wilson = stats.wilson(correct, n, level)
    method = ci_method
    if method != "wilson" and n_clusters < 2:
        method = "wilson"  # one cluster carries no information about between-cluster spread
    if method == "cluster_bootstrap":
        ci = stats.cluster_bootstrap(values, clusters, stats.bootstrap_seed(run_seed, slice_name), n_resamples, level)
    elif method == "cluster_robust":
        ci = stats.cluster_robust_ci(values, clusters, level)
    else:
        ci = wilson
    with_options = [r.n_options for r in records if r.n_options > 0]
    unparsed = sum(1 for r in records if r.parse_status == "unparsed")
    errors = sum(1 for r in records if r.parse_status == "error")
    invalid = sum(1 for r in records if r.parse_status == "invalid")
    return {
        "accuracy": correct / n if n else None,  # an empty slice has no accuracy, never 0.0
        "correct": correct,
        "n": n,
        "ci": [ci[0], ci[1]] if n else None,
        "ci_method": method,
        "wilson": [wilson[0], wilson[1]] if n else None,
        "n_clusters": n_clusters,
        "chance": float(np.mean([1.0 / k for k in with_options])) if with_options else None,
        "unparsed": unparsed,
        "unparsed_rate": _rate(unparsed, n),
        "errors": errors,
        "error_rate": _rate(errors, n),
        "invalid": invalid,
        "invalid_rate": _rate(invalid, n),
        "judged": sum(1 for r in records if r.parse_status == "judged"),
    }


def usage_summary(records: Iterable[AnyRecord]) -> dict[str, Any]:
    """Token totals, cost (when every priced response reports one) and model latency percentiles.

    Latency covers responses actually fetched in this run (not cache hits, errors or invalid samples)."""
    input_tokens = output_tokens = 0
    costs: list[float] = []
    answered = cost_unknown = cached = 0
    latencies: list[float] = []
    for r in records:
        if r.parse_status in ("invalid", "error"):
            continue
        answered += 1
        input_tokens += int(r.usage.get("input_tokens") or 0)
        output_tokens += int(r.usage.get("output_tokens") or 0)
        cost = r.usage.get("cost_usd")
        if cost is None:
            cost_unknown += 1
        else:
            costs.append(float(cost))
        if r.cached:
            cached += 1
        else:
            latencies.append(float(r.latency_s))
    return {
        "responses": answered,
        "cached": cached,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": float(sum(costs)) if costs and not cost_unknown else None,
        "cost_usd_known_part": float(sum(costs)) if costs else None,
        "responses_without_cost": cost_unknown,
        "latency_p50_s": stats.percentile(latencies, 50),
        "latency_p95_s": stats.percentile(latencies, 95),
    }


def _slice_groups(records: Sequence[AnyRecord]) -> dict[str, list[AnyRecord]]:
    groups: dict[str, list[AnyRecord]] = {}
    for r in records:
        for dim, labels in r.slices.items():
            for label in dict.fromkeys(labels):  # a record counts once per label
                groups.setdefault(f"{dim}={label}", []).append(r)
    return dict(sorted(groups.items(), key=lambda item: natural_key(item[0])))


def natural_key(name: str) -> list[Any]:
    """'task_type=Q10' after 'task_type=Q9'."""
    import re

    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def compute_results(records: Sequence[AnyRecord], *, run_seed: int, model: Mapping[str, Any], status: str,
                    ci_method: str = "cluster_bootstrap", n_resamples: int = stats.DEFAULT_RESAMPLES,
                    level: float = stats.DEFAULT_LEVEL) -> dict[str, Any]:
    """The whole results.json object for a run's records."""
    kw = {"ci_method": ci_method, "n_resamples": n_resamples, "level": level}
    by_eval: dict[str, list[AnyRecord]] = {}
    for r in records:
        by_eval.setdefault(evaluation_key(r), []).append(r)
    evaluations: dict[str, Any] = {}
    flat: dict[str, Any] = {}
    for key, recs in by_eval.items():
        slices = {name: metric(group, run_seed, f"{key}/{name}", **kw)
                  for name, group in _slice_groups(recs).items()}
        evaluations[key] = {
            "task": recs[0].task, "benchmark": recs[0].benchmark, "setting": recs[0].setting,
            "overall": metric(recs, run_seed, key, **kw),
            "slices": slices,
            "usage": usage_summary(recs),
        }
        flat.update({f"{key}/{name}": m for name, m in slices.items()})
    return {
        "schema": RESULTS_SCHEMA,
        "status": status,
        "model": dict(model),
        "seed": run_seed,
        "intervals": {"method": ci_method, "level": level, "resamples": n_resamples,
                      "cluster": "task/cluster (scene or case)"},
        "overall": metric(records, run_seed, "overall", **kw),
        "evaluations": evaluations,
        "slices": flat,
        "usage": usage_summary(records),
    }
