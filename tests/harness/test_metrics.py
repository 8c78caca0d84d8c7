from __future__ import annotations

import pytest

from cvbench.harness.metrics import compute_results, metric, usage_summary
from cvbench.harness.rundir import RESULTS_SCHEMA, SampleRecord

METRIC_KEYS = {"accuracy", "correct", "n", "ci", "ci_method", "wilson", "n_clusters", "chance", "unparsed",
               "unparsed_rate", "errors", "error_rate", "invalid", "invalid_rate", "judged", "ties",
               "upstream_compatible"}


def rec(i: int, *, task: str = "synth-mmvm", setting: str = "4", status: str = "parsed", correct: bool = False,
        n_options: int = 5, cues: tuple[str, ...] = ("CL",), cluster: str | None = None, cached: bool = False,
        cost: float | None = 0.01, latency: float = 1.0) -> SampleRecord:
    return SampleRecord(
        record_id=f"{task}@{setting}/s{i}", task=task, benchmark="mmvm", setting=setting, sample_id=f"s{i}",
        cluster=cluster or f"case{i // 2}", slices={"cue": list(cues), "bucket": ["5-8"]}, n_options=n_options,
        answer="A", prompt_text="q", image_sha256=[], options=[], mode="overlay",
        response="A" if status == "parsed" else None, parsed="A" if correct else None, parse_status=status,
        correct=correct, usage={"input_tokens": 100, "output_tokens": 2, "cost_usd": cost}, latency_s=latency,
        cached=cached)


def test_metric_counts_failures_as_wrong_and_reports_them() -> None:
    records = [rec(0, correct=True), rec(1, correct=True), rec(2), rec(3, status="unparsed"),
               rec(4, status="error"), rec(5, status="invalid", n_options=0)]
    m = metric(records, 0, "x", n_resamples=200)
    assert set(m) == METRIC_KEYS
    assert (m["n"], m["correct"], m["accuracy"]) == (6, 2, pytest.approx(2 / 6))
    assert (m["unparsed"], m["errors"], m["invalid"]) == (1, 1, 1)
    assert m["error_rate"] == pytest.approx(1 / 6)
    assert m["chance"] == pytest.approx(0.2)  # mean of 1/options over records that have options
    assert m["n_clusters"] == 3 and m["ci_method"] == "cluster_bootstrap"
    assert 0.0 <= m["ci"][0] <= m["accuracy"] <= m["ci"][1] <= 1.0
    assert m == metric(records, 0, "x", n_resamples=200)  # seeded: deterministic
    assert metric(records, 0, "x", ci_method="wilson")["ci"] == m["wilson"]


def test_single_cluster_falls_back_to_wilson() -> None:
    m = metric([rec(i, cluster="only", correct=i % 2 == 0) for i in range(10)], 0, "x")
    assert m["ci_method"] == "wilson" and m["ci"] == m["wilson"]


def test_results_shape_and_multilabel_slices() -> None:
    records = [rec(0, correct=True, cues=("CL", "RP")), rec(1, cues=("RP",)), rec(2, setting="all", correct=True),
               rec(3, task="synth-crossviewbench", setting="all", correct=True)]
    res = compute_results(records, run_seed=1, model={"id": "baseline:random"}, status="complete", n_resamples=100)
    assert res["schema"] == RESULTS_SCHEMA and res["status"] == "complete"
    assert list(res["evaluations"]) == ["synth-mmvm@4", "synth-mmvm@all", "synth-crossviewbench@all"]
    ev = res["evaluations"]["synth-mmvm@4"]
    assert (ev["task"], ev["benchmark"], ev["setting"]) == ("synth-mmvm", "mmvm", "4")
    assert ev["slices"]["cue=RP"]["n"] == 2 and ev["slices"]["cue=CL"]["n"] == 1
    assert res["slices"]["synth-mmvm@4/cue=RP"] == ev["slices"]["cue=RP"]
    assert res["overall"]["n"] == 4
    assert set(res["overall"]) == METRIC_KEYS


def test_slice_bootstrap_seed_depends_on_slice_name() -> None:
    records = [rec(i, correct=i % 3 == 0, cues=("CL", "RP"), cluster=f"c{i % 7}") for i in range(60)]
    res = compute_results(records, run_seed=3, model={}, status="complete", n_resamples=200)
    cl, rp = res["slices"]["synth-mmvm@4/cue=CL"], res["slices"]["synth-mmvm@4/cue=RP"]
    assert cl["accuracy"] == rp["accuracy"] and cl["ci"] != rp["ci"]  # same data, independent streams


def test_usage_summary() -> None:
    records = [rec(0, latency=1.0), rec(1, latency=3.0), rec(2, cached=True, latency=9.0), rec(3, status="error")]
    u = usage_summary(records)
    assert u["responses"] == 3 and u["cached"] == 1
    assert u["input_tokens"] == 300 and u["output_tokens"] == 6
    assert u["cost_usd"] == pytest.approx(0.03)
    assert u["latency_p50_s"] == pytest.approx(2.0)  # cache hits are not model latency
    unknown = usage_summary([rec(0), rec(1, cost=None)])
    assert unknown["cost_usd"] is None and unknown["responses_without_cost"] == 1
