from __future__ import annotations

import pytest

from cvbench.rundir.format import RESULTS_SCHEMA, SampleRecord
from cvbench.scoring.metrics import compute_results, metric, usage_summary

METRIC_KEYS = {
    "accuracy",
    "correct",
    "n",
    "ci",
    "ci_method",
    "wilson",
    "n_clusters",
    "chance",
    "unparsed",
    "unparsed_rate",
    "errors",
    "error_rate",
    "invalid",
    "invalid_rate",
    "judged",
    "accuracy_answered",
    "n_answered",
    "ties",
    "upstream_compatible",
}


def rec(
    i: int,
    *,
    task: str = "synth-mmvm",
    setting: str = "4",
    status: str = "parsed",
    correct: bool = False,
    n_options: int = 5,
    cues: tuple[str, ...] = ("CL",),
    cluster: str | None = None,
    cached: bool = False,
    cost: float | None = 0.01,
    latency: float = 1.0,
) -> SampleRecord:
    return SampleRecord(
        record_id=f"{task}@{setting}/s{i}",
        task=task,
        benchmark="mmvm",
        setting=setting,
        sample_id=f"s{i}",
        cluster=cluster or f"case{i // 2}",
        slices={"cue": list(cues), "bucket": ["5-8"]},
        n_options=n_options,
        answer="A",
        prompt_text="q",
        image_sha256=[],
        options=[],
        mode="overlay",
        response="A" if status == "parsed" else None,
        parsed="A" if correct else None,
        parse_status=status,
        correct=correct,
        usage={"input_tokens": 100, "output_tokens": 2, "cost_usd": cost},
        latency_s=latency,
        cached=cached,
    )


def test_metric_counts_failures_as_wrong_and_reports_them() -> None:
    records = [
        rec(0, correct=True),
        rec(1, correct=True),
        rec(2),
        rec(3, status="unparsed"),
        rec(4, status="error"),
        rec(5, status="invalid", n_options=0),
    ]
    m = metric(records, 0, "x", ci_method="cluster_bootstrap", n_resamples=200)
    assert set(m) == METRIC_KEYS
    assert (m["n"], m["correct"], m["accuracy"]) == (6, 2, pytest.approx(2 / 6))
    assert (m["unparsed"], m["errors"], m["invalid"]) == (1, 1, 1)
    assert m["error_rate"] == pytest.approx(1 / 6)
    assert m["chance"] == pytest.approx(0.2)  # mean of 1/options over records that have options
    assert m["n_clusters"] == 3 and m["ci_method"] == "cluster_bootstrap"
    assert 0.0 <= m["ci"][0] <= m["accuracy"] <= m["ci"][1] <= 1.0
    assert (m["n_answered"], m["accuracy_answered"]) == (4, pytest.approx(2 / 4))  # errors, invalid left out
    assert m == metric(records, 0, "x", ci_method="cluster_bootstrap", n_resamples=200)  # seeded: deterministic
    assert metric(records, 0, "x", ci_method="wilson")["ci"] == m["wilson"]


@pytest.mark.parametrize("method", ["cluster_bootstrap", "cluster_robust", "wilson_design_effect"])
def test_single_cluster_uses_the_default_interval_on_one_effective_observation(method: str) -> None:
    m = metric([rec(i, cluster="only", correct=i % 2 == 0) for i in range(10)], 0, "x", ci_method=method)
    assert m["ci_method"] == "wilson_design_effect"
    # one cluster is one observation: the interval is (nearly) the whole range, never the iid Wilson
    assert m["ci"][0] < 0.05 and m["ci"][1] > 0.95


def test_default_method_is_recorded() -> None:
    m = metric([rec(i, correct=i % 3 == 0) for i in range(30)], 0, "x")
    assert m["ci_method"] == "wilson_design_effect"
    res = compute_results([rec(0)], run_seed=1, model={}, status="complete")
    assert res["intervals"]["method"] == "wilson_design_effect"
    assert "errors" in res["intervals"]["denominator"]


@pytest.mark.parametrize("method", ["cluster_bootstrap", "cluster_robust", "wilson", "wilson_design_effect"])
@pytest.mark.parametrize("correct", [True, False])
def test_all_correct_or_all_wrong_never_gives_a_zero_width_interval(method: str, correct: bool) -> None:
    m = metric([rec(i, correct=correct) for i in range(6)], 0, "x", ci_method=method, n_resamples=200)
    lo, hi = m["ci"]
    assert hi - lo > 0.2  # 6 questions over 3 cases: a wide interval
    assert (lo <= 1.0 == hi) if correct else (lo == 0.0 <= hi)
    if method in ("cluster_bootstrap", "cluster_robust"):  # these would collapse; replaced and named
        assert m["ci_method"] == "wilson_design_effect"


def test_empty_slice_has_no_accuracy_and_no_interval() -> None:
    m = metric([], 0, "x")
    assert (m["n"], m["accuracy"], m["ci"], m["wilson"], m["ci_method"]) == (0, None, None, None, None)
    assert m["accuracy_answered"] is None and m["chance"] is None


def test_single_question() -> None:
    m = metric([rec(0, correct=True)], 0, "x")
    assert m["accuracy"] == 1.0 and m["ci"][1] == 1.0 and m["ci"][0] < 0.05


def test_only_failed_samples_have_no_answered_accuracy() -> None:
    m = metric([rec(0, status="error"), rec(1, status="invalid")], 0, "x")
    assert (m["accuracy"], m["n_answered"], m["accuracy_answered"]) == (0.0, 0, None)


def test_multilabel_cue_slices_count_a_record_once_per_label_and_the_overall_once() -> None:
    records = [rec(0, correct=True, cues=("CL", "RP", "CL")), rec(1, cues=("RP",)), rec(2, cues=())]
    res = compute_results(records, run_seed=1, model={}, status="complete")
    ev = res["evaluations"]["synth-mmvm@4"]
    assert (ev["slices"]["cue=CL"]["n"], ev["slices"]["cue=RP"]["n"], ev["overall"]["n"]) == (1, 2, 3)
    assert ev["slices"]["cue=CL"]["accuracy"] == 1.0 and ev["slices"]["cue=RP"]["accuracy"] == 0.5


def test_chance_is_the_mean_of_one_over_the_options_shown() -> None:
    # MMVM options include "None of the above" (counted in n_options); invalid samples without options are skipped
    records = [rec(0, n_options=4), rec(1, n_options=5), rec(2, n_options=0, status="invalid")]
    assert metric(records, 0, "x")["chance"] == pytest.approx((1 / 4 + 1 / 5) / 2)


def test_results_shape_and_multilabel_slices() -> None:
    records = [
        rec(0, correct=True, cues=("CL", "RP")),
        rec(1, cues=("RP",)),
        rec(2, setting="all", correct=True),
        rec(3, task="synth-crossviewbench", setting="all", correct=True),
    ]
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
    res = compute_results(
        records, run_seed=3, model={}, status="complete", n_resamples=200, ci_method="cluster_bootstrap"
    )
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


def test_terminal_summary_names_the_method_once_and_never_shows_a_collapsed_interval() -> None:
    import io

    from rich.console import Console

    from cvbench.runner.progress import summary_table

    records = [rec(i, correct=True, cues=("CL",)) for i in range(6)] + [rec(6, cues=("RP",), cluster="z")]
    res = compute_results(records, run_seed=1, model={"id": "m"}, status="complete")
    out = io.StringIO()
    Console(file=out, width=200).print(summary_table(res))
    text = out.getvalue()
    assert text.count("wilson_design_effect") == 1
    assert "[100.0, 100.0]" not in text and "[0.0, 0.0]" not in text
    lo = 100 * res["evaluations"]["synth-mmvm@4"]["slices"]["cue=CL"]["ci"][0]
    assert f"[{lo:.1f}, 100.0]" in text


def test_mmvm_chance_counts_none_of_the_above_as_an_option() -> None:
    from cvbench.prompting.protocols.mmvm import NONE_OF_THE_ABOVE, mmvm_options

    options = mmvm_options(["3", "7", "12", "20"])  # the 4-candidate setting
    assert options[-1].text == NONE_OF_THE_ABOVE and len(options) == 5
    records = [rec(i, n_options=len(options)) for i in range(4)]
    assert metric(records, 0, "x")["chance"] == pytest.approx(1 / 5)
