"""Paired comparison and the regression gate, on record sets whose truth is known."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from cvbench.analysis import compare as C
from cvbench.analysis import paired_tests as T
from cvbench.cli import cli
from cvbench.core.seeding import rng_for
from cvbench.rundir.format import SAMPLES_FILE, SampleRecord, write_json_atomic
from cvbench.scoring.metrics import compute_results

CVB = "synth-crossviewbench@all"
MMVM = "synth-mmvm@4"
TASK_TYPES = [f"Q{i}" for i in range(1, 18)]
CUES = ["CL", "SP", "RP", "SZ"]


# --------------------------------------------------------------------------------------
# Synthetic runs
# --------------------------------------------------------------------------------------


def _record(
    task: str,
    setting: str,
    benchmark: str,
    sid: str,
    cluster: str,
    slices: dict[str, list[str]],
    n_options: int,
    correct: bool,
) -> SampleRecord:
    answer = "A"
    parsed = "A" if correct else "B"
    return SampleRecord(
        record_id=f"{task}@{setting}/{sid}",
        task=task,
        benchmark=benchmark,
        setting=setting,
        sample_id=sid,
        cluster=cluster,
        slices=slices,
        n_options=n_options,
        answer=answer,
        prompt_text=f"question {sid}",
        image_sha256=[],
        options=[[chr(65 + i), str(i + 1)] for i in range(n_options)],
        mode="overlay",
        response=parsed,
        parsed=parsed,
        parse_status="parsed",
        correct=correct,
    )


def baseline_records(seed: int = 7, p_correct: float = 0.75, per_type: int = 24) -> list[SampleRecord]:
    """17 task types x `per_type` questions over 12 scenes, plus 60 MMVM questions over 20 cases."""
    out = []
    for t in TASK_TYPES:
        category = "geometric" if int(t[1:]) >= 9 else "correspondence"
        for i in range(per_type):
            sid = f"{t}-{i:03d}"
            correct = bool(rng_for(seed, sid, "correct").random() < p_correct)
            out.append(
                _record(
                    "synth-crossviewbench",
                    "all",
                    "crossviewbench",
                    sid,
                    f"scene-{i % 12}",
                    {"category": [category], "task_type": [t]},
                    4,
                    correct,
                )
            )
    for i in range(60):
        sid = f"case-{i:03d}"
        correct = bool(rng_for(seed, sid, "correct").random() < p_correct)
        cues = [CUES[i % 4]] + ([CUES[(i + 1) % 4]] if i % 3 == 0 else [])
        out.append(
            _record("synth-mmvm", "4", "mmvm", sid, f"case-{i // 3}", {"cue": cues, "bucket": ["2-4"]}, 4, correct)
        )
    return out


BASE_CONFIG: dict[str, Any] = {  # the shape of cvbench.runner.session's config.json
    "schema": "cvbench.config/1",
    "created": "2026-01-01T00:00:00Z",
    "model": {"id": "baseline:first-option"},
    "generation": {"temperature": 0.0, "max_tokens": 1024},
    "tasks": ["synth-crossviewbench", "synth-mmvm"],
    "mode": "auto",
    "style": None,
    "seed": 0,
    "limit": None,
    "shard": None,
    "judge": None,
    "prompt_settings": {"style": "fill", "image_format": "png"},
    "datasets": {
        "synth-crossviewbench": {"benchmark": "crossviewbench", "fingerprint": "f" * 16, "settings": ["all"]},
        "synth-mmvm": {"benchmark": "mmvm", "fingerprint": "e" * 16, "settings": ["4"]},
    },
    "protocol": {"version": "1"},
    "runtime": {"concurrency": 8},
}


def write_run(
    path: Path, records: list[SampleRecord], config: dict[str, Any] | None = None, model: str = "baseline:first-option"
) -> Path:
    path.mkdir(parents=True)
    write_json_atomic(path / "config.json", config if config is not None else BASE_CONFIG)
    write_json_atomic(
        path / "results.json",
        compute_results(records, run_seed=0, model={"id": model}, status="complete", n_resamples=200),
    )
    with open(path / SAMPLES_FILE, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(r.to_json() + "\n")
    return path


def flip(
    records: list[SampleRecord], where: Callable[[SampleRecord], bool], limit: int | None = None, to: bool = False
) -> list[SampleRecord]:
    """Copy of `records` with up to `limit` records matching `where` (and not already `to`) set to `to`."""
    out, done = [], 0
    for r in records:
        if where(r) and r.correct != to and (limit is None or done < limit):
            r = replace(r, correct=to, parsed="A" if to else "B", response="A" if to else "B")
            done += 1
        out.append(r)
    return out


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(cli, ["compare", *args], catch_exceptions=False)


def by_name(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in payload["slices"]}


# --------------------------------------------------------------------------------------
# Exact statistics
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a_only, b_only, expected",
    [
        (0, 0, 1.0),
        (3, 3, 1.0),
        (5, 0, 2 / 32),  # 2 * P(X <= 0), X ~ Bin(5, 1/2)
        (0, 6, 2 / 64),
        (7, 2, 2 * (1 + 9 + 36) / 512),  # 2 * (C(9,0)+C(9,1)+C(9,2)) / 2^9 = 0.1796875
        (10, 1, 2 * (1 + 11) / 2048),  # 0.01171875
        (4, 5, 1.0),  # 2 * P(X <= 4), X ~ Bin(9, 1/2) = 2 * 256/512 = 1
        (12, 3, 2 * (1 + 15 + 105 + 455) / 32768),  # 0.03515625
    ],
)
def test_exact_mcnemar_matches_hand_computed_binomial(a_only: int, b_only: int, expected: float) -> None:
    assert T.exact_mcnemar_p(a_only, b_only) == pytest.approx(expected, rel=1e-15, abs=0)


def test_exact_mcnemar_large_counts_exact_against_fractions() -> None:
    a_only, b_only = 530, 470
    m = a_only + b_only
    tail = Fraction(sum(math.comb(m, k) for k in range(b_only + 1)), 2**m)
    assert T.exact_mcnemar_p(a_only, b_only) == pytest.approx(float(2 * tail), rel=1e-12)
    assert 0.05 < T.exact_mcnemar_p(a_only, b_only) < 0.07  # close to the normal approximation's 0.058


def test_mcnemar_is_symmetric_and_rejects_negative_counts() -> None:
    assert T.exact_mcnemar_p(9, 2) == T.exact_mcnemar_p(2, 9)
    with pytest.raises(ValueError):
        T.exact_mcnemar_p(-1, 3)


def test_holm_adjustment_by_hand() -> None:
    # sorted: 0.01*3 = 0.03; 0.03*2 = 0.06; 0.04*1 = 0.04 -> monotone 0.06
    assert T.holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert T.holm_adjust([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert T.holm_adjust([]) == []


def test_minimum_detectable_drop_inverts_connor_formula() -> None:
    psi, delta, alpha, power = 0.2, 0.05, 0.05, 0.8
    z_a, z_b = 1.959963984540054, 0.8416212335729143
    n = (z_a * math.sqrt(psi) + z_b * math.sqrt(psi - delta**2)) ** 2 / delta**2  # about 624
    mde = T.minimum_detectable_drop(round(n), psi, alpha, power)
    assert mde.drop == pytest.approx(delta, abs=2e-4)
    assert mde.exact_floor == pytest.approx(6 / round(n))
    # more pairs -> a smaller detectable drop; more discordance -> a larger one
    assert T.minimum_detectable_drop(4 * round(n), psi, alpha).drop < mde.drop  # type: ignore[operator]
    assert T.minimum_detectable_drop(round(n), 0.4, alpha).drop > mde.drop  # type: ignore[operator]


def test_minimum_detectable_drop_without_discordance_is_the_exact_floor() -> None:
    assert T.min_discordant_for_significance(0.05) == 6  # p(5, 0) = 0.0625, p(6, 0) = 0.03125
    mde = T.minimum_detectable_drop(300, 0.0, 0.05)
    assert mde.drop == pytest.approx(6 / 300) and "exact-test floor" in mde.note
    assert T.minimum_detectable_drop(0, 0.0, 0.05).drop is None


def test_paired_bootstrap_is_deterministic_and_seeded() -> None:
    rng = np.random.default_rng(3)
    a = rng.random(300) < 0.7
    b = rng.random(300) < 0.6
    clusters = [f"s{i % 25}" for i in range(300)]
    kw = {"n_boot": 500, "level": 0.95, "label": "x"}
    first = T.paired_cluster_bootstrap(a, b, clusters, seed=1, **kw)  # type: ignore[arg-type]
    assert first == T.paired_cluster_bootstrap(a, b, clusters, seed=1, **kw)  # type: ignore[arg-type]
    assert first != T.paired_cluster_bootstrap(a, b, clusters, seed=2, **kw)  # type: ignore[arg-type]
    diff = b.mean() - a.mean()
    assert first[0] < diff < first[1]
    assert T.paired_cluster_bootstrap(a, a, clusters, seed=1, **kw) == (0.0, 0.0)  # type: ignore[arg-type]


def test_paired_bootstrap_interval_is_wider_with_correlated_clusters() -> None:
    # every cluster is all-right or all-wrong in B: the clustered interval must be wider than
    # one that treats the 240 records as independent (one cluster per record)
    a = np.ones(240, dtype=bool)
    b = np.repeat(np.arange(24) % 2 == 0, 10)
    clustered = T.paired_cluster_bootstrap(
        a, b, [str(i // 10) for i in range(240)], n_boot=1000, level=0.95, seed=0, label="c"
    )
    independent = T.paired_cluster_bootstrap(
        a, b, [str(i) for i in range(240)], n_boot=1000, level=0.95, seed=0, label="c"
    )
    assert clustered[1] - clustered[0] > 2 * (independent[1] - independent[0])


def test_select_slices() -> None:
    names = [CVB, f"{CVB}/task_type=Q1", f"{CVB}/task_type=Q10", MMVM, f"{MMVM}/cue=CL"]
    assert C.select_slices(names, []) == [CVB, MMVM]
    assert C.select_slices(names, ["*/task_type=*"]) == [f"{CVB}/task_type=Q1", f"{CVB}/task_type=Q10"]
    assert C.select_slices(names, [f"{MMVM}/cue=CL", CVB]) == [CVB, f"{MMVM}/cue=CL"]
    assert C.select_slices(names, ["*"]) == [CVB, MMVM]  # `*` never crosses the `/`
    assert C.select_slices(names, ["*/*"]) == [n for n in names if "/" in n]
    assert C.select_slices(names, ["synth-*@all/task_type=Q1?"]) == [f"{CVB}/task_type=Q10"]
    with pytest.raises(C.CompareError, match="nope"):
        C.select_slices(names, ["nope"])


def test_duplicate_record_ids_are_an_error() -> None:
    recs = baseline_records()
    with pytest.raises(C.CompareError, match="appears twice"):
        C.compare_records(recs + recs[:1], recs, C.CompareOptions(n_boot=200))


# --------------------------------------------------------------------------------------
# End to end through the CLI on run directories
# --------------------------------------------------------------------------------------


def test_identical_runs_pass_with_zero_difference(tmp_path: Path) -> None:
    recs = baseline_records()
    a = write_run(tmp_path / "a", recs)
    b = write_run(tmp_path / "b", recs)
    res = run_cli(str(a), str(b), "--slices", "*,*/*", "--fail-on-regression", "--json", "--bootstrap", "300")
    assert res.exit_code == 0, res.output
    payload = json.loads(res.output)
    assert payload["passed"] is True and payload["regressions"] == [] and payload["warnings"] == []
    for s in payload["slices"]:
        assert s["paired"]["difference"] == 0.0 and s["paired"]["p_value"] == 1.0
        # every pair agrees: the bootstrap collapses, so the paired Newcombe interval is shown instead
        low, high = s["paired"]["ci"]
        assert low < 0.0 < high and s["paired"]["ci_method"] == "newcombe_paired"
        assert s["verdict"] == "no significant difference"
    overall = by_name(payload)[CVB]
    assert overall["a"]["n"] == overall["paired"]["n"] == 17 * 24
    assert overall["a"]["ci_method"] == "wilson_design_effect"  # the run's own interval from results.json


def test_run_made_worse_on_q10_fails_naming_that_slice(tmp_path: Path) -> None:
    recs = baseline_records()
    worse = flip(recs, lambda r: r.slices.get("task_type") == ["Q10"])
    a = write_run(tmp_path / "a", recs)
    b = write_run(tmp_path / "b", worse)
    res = run_cli(
        str(a), str(b), "--slices", f"{CVB}/task_type=*", "--fail-on-regression", "--json", "--bootstrap", "500"
    )
    assert res.exit_code == 1
    payload = json.loads(res.stdout)
    assert [r["slice"] for r in payload["regressions"]] == [f"{CVB}/task_type=Q10"]
    message = payload["regressions"][0]["message"]
    assert "task_type=Q10" in message and "McNemar p =" in message and "interval" in message
    assert f"{CVB}/task_type=Q10" in res.stderr  # the gate says which slice failed
    slices = by_name(payload)
    q10 = slices[f"{CVB}/task_type=Q10"]
    n_correct_q10 = sum(1 for r in recs if r.correct and r.slices.get("task_type") == ["Q10"])
    assert q10["paired"]["a_only_correct"] == n_correct_q10 and q10["paired"]["b_only_correct"] == 0
    assert q10["paired"]["p_value"] == pytest.approx(2 * 0.5**n_correct_q10)
    assert q10["paired"]["p_holm"] <= 17 * q10["paired"]["p_value"] + 1e-15
    assert q10["paired"]["ci"][1] < 0
    assert q10["paired"]["difference"] == pytest.approx(-n_correct_q10 / 24)
    for t in TASK_TYPES:
        if t != "Q10":
            s = slices[f"{CVB}/task_type={t}"]
            assert s["gated"] and s["verdict"] == "no significant difference" and s["paired"]["difference"] == 0
    assert not slices[CVB]["gated"]  # the overall was not named, so it is reported but not gated
    assert slices[f"{MMVM}/cue=CL"]["verdict"] == "no significant difference"


def test_default_gate_is_each_evaluation_overall(tmp_path: Path) -> None:
    recs = baseline_records()
    worse = flip(recs, lambda r: r.task == "synth-mmvm")
    a = write_run(tmp_path / "a", recs)
    b = write_run(tmp_path / "b", worse)
    res = run_cli(str(a), str(b), "--fail-on-regression", "--json", "--bootstrap", "300")
    assert res.exit_code == 1
    payload = json.loads(res.stdout)
    assert payload["gated"] == [CVB, MMVM]
    assert [r["slice"] for r in payload["regressions"]] == [MMVM]
    assert by_name(payload)[CVB]["verdict"] == "no significant difference"


def test_small_drop_is_not_significant_and_passes(tmp_path: Path) -> None:
    recs = baseline_records()
    worse = flip(recs, lambda r: r.task == "synth-crossviewbench", limit=3)
    a = write_run(tmp_path / "a", recs)
    b = write_run(tmp_path / "b", worse)
    res = run_cli(str(a), str(b), "--fail-on-regression", "--json", "--bootstrap", "300")
    assert res.exit_code == 0, res.output
    s = by_name(json.loads(res.stdout))[CVB]
    assert s["paired"]["a_only_correct"] == 3 and s["paired"]["b_only_correct"] == 0
    assert s["paired"]["p_value"] == pytest.approx(0.25)  # 2 * (1/2)^3
    assert s["paired"]["difference"] == pytest.approx(-3 / 408) and s["verdict"] == "no significant difference"


def test_min_effect_keeps_a_significant_but_small_drop_from_failing(tmp_path: Path) -> None:
    recs = baseline_records()
    worse = flip(recs, lambda r: r.slices.get("task_type") == ["Q10"])
    a = write_run(tmp_path / "a", recs)
    b = write_run(tmp_path / "b", worse)
    drop = sum(1 for r in recs if r.correct and r.slices.get("task_type") == ["Q10"]) / (17 * 24)
    res = run_cli(
        str(a),
        str(b),
        "--fail-on-regression",
        "--json",
        "--slices",
        CVB,
        "--bootstrap",
        "300",
        "--min-effect",
        f"{drop + 0.01:.4f}",
    )
    assert res.exit_code == 0, res.output
    assert by_name(json.loads(res.stdout))[CVB]["verdict"] == "worse"  # significant, below the minimum effect
    res = run_cli(
        str(a),
        str(b),
        "--fail-on-regression",
        "--json",
        "--slices",
        CVB,
        "--bootstrap",
        "300",
        "--min-effect",
        f"{drop - 0.01:.4f}",
    )
    assert res.exit_code == 1


def test_improvement_never_fails_the_gate(tmp_path: Path) -> None:
    recs = baseline_records()
    better = flip(recs, lambda r: True, to=True)
    a = write_run(tmp_path / "a", recs)
    b = write_run(tmp_path / "b", better)
    res = run_cli(str(a), str(b), "--fail-on-regression", "--json", "--bootstrap", "300")
    assert res.exit_code == 0
    assert {s["verdict"] for s in json.loads(res.stdout)["slices"] if s["gated"]} == {"better"}


def test_without_the_flag_a_regression_is_reported_but_exit_is_zero(tmp_path: Path) -> None:
    recs = baseline_records()
    a = write_run(tmp_path / "a", recs)
    b = write_run(tmp_path / "b", flip(recs, lambda r: r.task == "synth-mmvm"))
    res = run_cli(str(a), str(b), "--bootstrap", "300")
    assert res.exit_code == 0
    assert "REGRESSION on synth-mmvm@4" in res.output and "smallest drop" in res.output


def test_records_only_in_one_run_are_counted_and_listed(tmp_path: Path) -> None:
    recs = baseline_records()
    dropped = recs[:5]
    extra = _record(
        "synth-crossviewbench",
        "all",
        "crossviewbench",
        "Q1-999",
        "scene-99",
        {"category": ["correspondence"], "task_type": ["Q1"]},
        4,
        True,
    )
    a = write_run(tmp_path / "a", recs)
    b = write_run(tmp_path / "b", recs[5:] + [extra])
    res = run_cli(str(a), str(b), "--json", "--bootstrap", "300")
    payload = json.loads(res.stdout)
    assert payload["only_in_a"] == {"count": 5, "ids": sorted(r.record_id for r in dropped)}
    assert payload["only_in_b"] == {"count": 1, "ids": [extra.record_id]}
    overall = by_name(payload)[CVB]
    assert overall["paired"]["n"] == 17 * 24 - 5 and overall["a"]["n"] == 17 * 24 and overall["b"]["n"] == 17 * 24 - 4
    assert any("records only in" in w for w in payload["warnings"])


def test_different_configs_warn_loudly_at_the_top(tmp_path: Path) -> None:
    recs = baseline_records()
    other = json.loads(json.dumps(BASE_CONFIG))
    other["datasets"]["synth-crossviewbench"]["fingerprint"] = "0" * 16
    other["datasets"]["crossviewbench"] = {"fingerprint": "1" * 16}  # a task only B has: not a difference
    other["model"] = {"id": "baseline:random"}  # a different model is the point of comparing: no warning
    other["generation"]["max_tokens"] = 16
    other["created"], other["runtime"] = "2026-02-02T00:00:00Z", {"concurrency": 2}
    a = write_run(tmp_path / "a", recs)
    b = write_run(tmp_path / "b", recs, config=other)
    payload = json.loads(run_cli(str(a), str(b), "--json", "--bootstrap", "300").stdout)
    assert payload["config_differences"] == [
        {"key": "datasets.synth-crossviewbench.fingerprint", "a": "f" * 16, "b": "0" * 16}
    ]
    assert payload["warnings"][0].startswith("THE RUNS WERE MADE WITH DIFFERENT CONFIGURATIONS")
    table = run_cli(str(a), str(b), "--bootstrap", "300").output
    assert table.index("DIFFERENT CONFIGURATIONS") < table.index("synth-crossviewbench@all")


def test_table_report_and_markdown_outputs(tmp_path: Path) -> None:
    recs = baseline_records()
    a = write_run(tmp_path / "a", recs)
    b = write_run(tmp_path / "b", flip(recs, lambda r: r.slices.get("task_type") == ["Q10"]))
    report, md = tmp_path / "report.json", tmp_path / "summary.md"
    res = run_cli(
        str(a),
        str(b),
        "--slices",
        f"{CVB}/task_type=Q10",
        "--bootstrap",
        "300",
        "--report",
        str(report),
        "--markdown",
        str(md),
    )
    assert res.exit_code == 0
    assert "task_type=Q10" in res.output and "regression" in res.output and "McNemar" in res.output
    assert json.loads(report.read_text())["regressions"][0]["slice"] == f"{CVB}/task_type=Q10"
    text = md.read_text()
    assert (
        text.startswith("## cvbench compare: REGRESSION") and "| synth-crossviewbench@all/task_type=Q10 | yes |" in text
    )
    # the A/B interval method is named once on each page
    assert text.count("method: wilson_design_effect") == 1
    assert res.output.count("method: wilson_design_effect") == 1


def test_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    recs = baseline_records()
    a = write_run(tmp_path / "a", recs)
    res = run_cli(str(a), str(tmp_path / "missing"))
    assert res.exit_code == 1 and "missing" in res.output and "not a directory" in res.output
    res = run_cli(str(a), str(a), "--slices", "synth-mmvm@12")
    assert res.exit_code == 1 and "'synth-mmvm@12' matches no slice" in res.output
    res = run_cli(str(a), str(a), "--alpha", "1.5")
    assert res.exit_code == 1 and "--alpha" in res.output
    other = write_run(tmp_path / "other", [r for r in recs if r.task == "synth-mmvm"])
    only_cvb = write_run(tmp_path / "cvb", [r for r in recs if r.task != "synth-mmvm"])
    res = run_cli(str(other), str(only_cvb))
    assert res.exit_code == 1 and "share no evaluation" in res.output


def test_failed_model_calls_count_as_wrong_and_are_called_out(tmp_path: Path) -> None:
    recs = baseline_records()
    failed = [
        replace(
            r,
            correct=False,
            parsed=None,
            response=None,
            parse_status="error",
            error={"kind": "server", "message": "HTTP 503", "status": 503},
        )
        if r.task == "synth-mmvm"
        else r
        for r in recs
    ]
    a = write_run(tmp_path / "a", recs)
    b = write_run(tmp_path / "b", failed)
    res = run_cli(str(a), str(b), "--fail-on-regression", "--json", "--bootstrap", "300")
    assert res.exit_code == 1
    payload = json.loads(res.stdout)
    assert any("60 failed model call(s)" in w for w in payload["warnings"])
    assert "B has 60 failed model call(s)" in payload["regressions"][0]["message"]
    assert by_name(payload)[MMVM]["b"]["errors"] == 60


def test_minimum_detectable_drop_with_fewer_pairs_than_the_exact_test_needs() -> None:
    mde = T.minimum_detectable_drop(5, 0.4, 0.05)
    assert mde.drop is None and "needs at least 6 discordant pairs" in mde.note
    assert T.minimum_detectable_drop(6, 0.0, 0.05).drop == pytest.approx(1.0)


def test_newcombe_paired_interval_never_collapses_and_matches_a_hand_computation() -> None:
    from cvbench.scoring import stats

    for both, neither in ((40, 0), (0, 40), (25, 15), (1, 0)):
        low, high = stats.newcombe_paired_difference(both, 0, 0, neither)
        assert -1.0 <= low < 0.0 < high <= 1.0
    # Hand computation (Newcombe 1998, method 10): 30 both right, 5 only A, 15 only B, 10 neither.
    n, p_a, p_b = 60, 35 / 60, 45 / 60
    l_a, u_a = stats.wilson(35, n)
    l_b, u_b = stats.wilson(45, n)
    phi = (30 * 10 - 5 * 15) / math.sqrt(35 * 25 * 45 * 15)
    d = p_a - p_b
    lower = d - math.sqrt((p_a - l_a) ** 2 - 2 * phi * (p_a - l_a) * (u_b - p_b) + (u_b - p_b) ** 2)
    upper = d + math.sqrt((u_a - p_a) ** 2 - 2 * phi * (u_a - p_a) * (p_b - l_b) + (p_b - l_b) ** 2)
    got = stats.newcombe_paired_difference(30, 5, 15, 10)
    assert got == pytest.approx((-upper, -lower), abs=1e-12)
    assert got[0] < 1 / 6 < got[1]  # contains the observed B - A
