"""Metrics of a run: overall and per-slice accuracy with intervals, chance and failure counts.

Pure functions from `SampleRecord`s to the `results.json` structure of docs/run-format.md.
Errors, unparsed answers and invalid samples stay in `n` (counted wrong) and are reported
separately; `accuracy_answered` beside it divides by the samples that got a model answer (n minus
errors and invalid). A slice with n = 0 has accuracy None and no interval. The default interval is
`stats.wilson_design_effect`; a method that would give a zero-width interval (a bootstrap or CR1
interval when every answer agrees, or any clustered method on one cluster) is replaced by it, and
`ci_method` names the method actually used. Intervals cluster by `<task>/<cluster>` (scene or case);
each slice's bootstrap seed is derived from the run seed and the slice's name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from cvbench.rundir.format import RESULTS_SCHEMA, SampleRecord
from cvbench.scoring import stats
from cvbench.scoring.parsing import TIE_PREFIX


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
    tied: bool = False  # answered by a tie rule (equal top option scores, first letter taken)
    # scored as the upstream evaluation scores it: None = upstream skips the sample (its gold answer)
    upstream_correct: bool | None = False


def _upstream_correct(correct: bool, parsed: str | None, protocol: Mapping[str, Any] | None) -> bool | None:
    """`correct` under upstream's reading of the gold answer (protocol["upstream_gold"], set by the
    CrossViewBench protocol when it differs from cvbench's): None when upstream skips the sample."""
    gold = (protocol or {}).get("upstream_gold")
    if not isinstance(gold, Mapping):
        return correct
    letter = gold.get("answer")
    return None if letter is None else (parsed is not None and parsed == letter)


def _tied(parse_status: str, parse_reason: str | None) -> bool:
    return parse_status == "logprob" and str(parse_reason or "").startswith(TIE_PREFIX)


def scored_record(record: SampleRecord | Mapping[str, Any]) -> ScoredRecord:
    """The metrics' view of a record, or of its complete JSON object (every field, as written to
    samples.jsonl)."""
    if isinstance(record, SampleRecord):
        return ScoredRecord(
            record.task,
            record.benchmark,
            record.setting,
            record.cluster,
            record.slices,
            record.n_options,
            record.correct,
            record.parse_status,
            record.usage,
            record.latency_s,
            record.attempts,
            record.cached,
            _tied(record.parse_status, record.parse_reason),
            _upstream_correct(record.correct, record.parsed, record.protocol),
        )
    fields = {name: record[name] for name in _SCORED_FIELDS}
    return ScoredRecord(
        **fields,
        tied=_tied(record["parse_status"], record.get("parse_reason")),
        upstream_correct=_upstream_correct(record["correct"], record.get("parsed"), record.get("protocol")),
    )


_SCORED_FIELDS: tuple[str, ...] = tuple(
    f for f in ScoredRecord.__dataclass_fields__ if f not in ("tied", "upstream_correct")
)


AnyRecord = SampleRecord | ScoredRecord

CiMethod = Literal["wilson_design_effect", "cluster_bootstrap", "cluster_robust", "wilson"]
CI_METHODS: tuple[str, ...] = ("wilson_design_effect", "cluster_bootstrap", "cluster_robust", "wilson")
DEFAULT_CI_METHOD = "wilson_design_effect"
CI_METHOD_NAMES: dict[str, str] = {
    "wilson_design_effect": "continuity-corrected Wilson on the design-effect-adjusted n, t with G-1 df",
    "cluster_bootstrap": "cluster bootstrap, percentile",
    "cluster_robust": "cluster-robust (CR1) normal",
    "wilson": "Wilson score, questions independent",
}
DENOMINATOR = "all samples: errors, unparsed and invalid answers count as wrong"


def upstream_correct(record: AnyRecord) -> bool | None:
    if isinstance(record, ScoredRecord):
        return record.upstream_correct
    return _upstream_correct(record.correct, record.parsed, record.protocol)


def is_tied(record: AnyRecord) -> bool:
    if isinstance(record, ScoredRecord):
        return record.tied
    return _tied(record.parse_status, record.parse_reason)


def evaluation_key(record: AnyRecord) -> str:
    return f"{record.task}@{record.setting}"


def cluster_key(record: AnyRecord) -> str:
    return f"{record.task}/{record.cluster}"


def _rate(count: int, n: int) -> float:
    return count / n if n else 0.0


def metric(
    records: Sequence[AnyRecord],
    run_seed: int,
    slice_name: str,
    *,
    ci_method: str = DEFAULT_CI_METHOD,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    level: float = stats.DEFAULT_LEVEL,
) -> dict[str, Any]:
    """One METRIC object (docs/run-format.md) over `records`."""
    if ci_method not in CI_METHODS:
        raise ValueError(f"unknown ci method {ci_method!r} (choose from {', '.join(CI_METHODS)})")
    n = len(records)
    values = np.fromiter((1.0 if r.correct else 0.0 for r in records), dtype=float, count=n)
    correct = int(values.sum())
    clusters = [cluster_key(r) for r in records]
    n_clusters = len(set(clusters))
    wilson: tuple[float, float] | None = stats.wilson(correct, n, level) if n else None
    method = ci_method
    ci: tuple[float, float] | None
    if method == "cluster_bootstrap" and n_clusters >= 2:
        ci = stats.cluster_bootstrap(values, clusters, stats.bootstrap_seed(run_seed, slice_name), n_resamples, level)
    elif method == "cluster_robust" and n_clusters >= 2:
        ci = stats.cluster_robust_ci(values, clusters, level)
    elif method == "wilson":
        ci = wilson
    else:
        ci, method = None, DEFAULT_CI_METHOD
    if n and (ci is None or ci[1] - ci[0] <= 0.0):
        ci, method = stats.wilson_design_effect(values, clusters, level), DEFAULT_CI_METHOD
    with_options = [r.n_options for r in records if r.n_options > 0]
    unparsed = sum(1 for r in records if r.parse_status == "unparsed")
    errors = sum(1 for r in records if r.parse_status == "error")
    invalid = sum(1 for r in records if r.parse_status == "invalid")
    return {
        "accuracy": correct / n if n else None,
        "accuracy_answered": correct / (n - errors - invalid) if n - errors - invalid > 0 else None,
        "correct": correct,
        "n": n,
        "n_answered": n - errors - invalid,
        "ci": [ci[0], ci[1]] if ci is not None else None,
        "ci_method": method if n else None,
        "wilson": [wilson[0], wilson[1]] if wilson is not None else None,
        "n_clusters": n_clusters,
        "chance": float(np.mean([1.0 / k for k in with_options])) if with_options else None,
        "unparsed": unparsed,
        "unparsed_rate": _rate(unparsed, n),
        "errors": errors,
        "error_rate": _rate(errors, n),
        "invalid": invalid,
        "invalid_rate": _rate(invalid, n),
        "judged": sum(1 for r in records if r.parse_status == "judged"),
        "ties": sum(1 for r in records if is_tied(r)),
        "upstream_compatible": _upstream_metric(records),
    }


def _upstream_metric(records: Sequence[AnyRecord]) -> dict[str, Any]:
    """Accuracy as the upstream evaluation computes it: samples whose gold answer upstream cannot
    read leave the denominator, and a gold answer upstream reads differently is scored its way."""
    readings = [upstream_correct(r) for r in records]
    kept = [c for c in readings if c is not None]
    return {
        "n": len(kept),
        "correct": sum(kept),
        "accuracy": _rate(sum(kept), len(kept)),
        "skipped": len(readings) - len(kept),
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


def compute_results(
    records: Sequence[AnyRecord],
    *,
    run_seed: int,
    model: Mapping[str, Any],
    status: str,
    ci_method: str = DEFAULT_CI_METHOD,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    level: float = stats.DEFAULT_LEVEL,
) -> dict[str, Any]:
    """The whole results.json object for a run's records."""
    kw: dict[str, Any] = {"ci_method": ci_method, "n_resamples": n_resamples, "level": level}
    by_eval: dict[str, list[AnyRecord]] = {}
    for r in records:
        by_eval.setdefault(evaluation_key(r), []).append(r)
    evaluations: dict[str, Any] = {}
    flat: dict[str, Any] = {}
    for key, recs in by_eval.items():
        slices = {name: metric(group, run_seed, f"{key}/{name}", **kw) for name, group in _slice_groups(recs).items()}
        evaluations[key] = {
            "task": recs[0].task,
            "benchmark": recs[0].benchmark,
            "setting": recs[0].setting,
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
        "intervals": {
            "method": ci_method,
            "description": CI_METHOD_NAMES[ci_method],
            "level": level,
            "resamples": n_resamples,
            "cluster": "task/cluster (scene or case)",
            "denominator": DENOMINATOR,
            "coverage": "docs/running.md#metrics-and-intervals (bench/statistics_sim.py)",
        },
        "overall": metric(records, run_seed, "overall", **kw),
        "evaluations": evaluations,
        "slices": flat,
        "usage": usage_summary(records),
    }
