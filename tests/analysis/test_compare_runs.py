"""End to end through the command line: real baseline runs made by the real runner, compared.

Identical runs pass, a better model shows up as better, and a copy of a run made worse on purpose
fails the gate naming the slice.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cvbench.cli import cli
from cvbench.devtools import regress as R
from cvbench.rundir.format import RESULTS_FILE, SAMPLES_FILE, iter_records, read_json, write_json_atomic
from cvbench.scoring.metrics import compute_results

TASKS = "synth-crossviewbench,synth-mmvm"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    data = R.generate_suite_data(tmp_path_factory.getbasetemp() / "cvbench-suite" / "ci" / "data")
    out = tmp_path_factory.mktemp("compare-runs")
    made = {}
    for name, model in (("random", "random"), ("random-again", "random"), ("heuristic", "mask-heuristic")):
        res = CliRunner().invoke(
            cli,
            [
                "run",
                "--model",
                model,
                "--task",
                TASKS,
                "--data-dir",
                str(data),
                "--out",
                str(out / name),
                "--no-cache",
                "--save-images",
                "none",
                "--no-progress",
            ],
            catch_exceptions=False,
        )
        assert res.exit_code == 0, res.output
        made[name] = out / name
    return made


def compare(*args: str) -> Any:
    return CliRunner().invoke(cli, ["compare", *args, "--bootstrap", "500"], catch_exceptions=False)


def make_worse(source: Path, target: Path, task: str) -> int:
    """Copy a run and turn every correct answer of `task` wrong; results.json is recomputed."""
    shutil.copytree(source, target)
    records = list(iter_records(source))
    flipped = 0
    worse = []
    for r in records:
        if r.task == task and r.correct:
            wrong = next(o[0] for o in r.options if o[0] != r.answer)
            r = replace(r, correct=False, parsed=wrong, response=wrong)
            flipped += 1
        worse.append(r)
    with open(target / SAMPLES_FILE, "w", encoding="utf-8") as fh:
        fh.writelines(rec.to_json() + "\n" for rec in worse)
    old = read_json(source / RESULTS_FILE)
    write_json_atomic(
        target / RESULTS_FILE, compute_results(worse, run_seed=old["seed"], model=old["model"], status=old["status"])
    )
    return flipped


@pytest.mark.slow
def test_identical_real_runs_pass(runs: dict[str, Path]) -> None:
    res = compare(str(runs["random"]), str(runs["random-again"]), "--slices", "*,*/*", "--fail-on-regression", "--json")
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["passed"] and payload["config_differences"] == []
    assert {s["name"] for s in payload["slices"] if "/" not in s["name"]} == {
        "synth-crossviewbench@all",
        "synth-mmvm@all",
    }
    assert all(s["paired"]["difference"] == 0.0 and s["paired"]["p_value"] == 1.0 for s in payload["slices"])


@pytest.mark.slow
def test_real_runs_show_paired_statistics(runs: dict[str, Path]) -> None:
    res = compare(str(runs["random"]), str(runs["heuristic"]), "--json")
    assert res.exit_code == 0
    payload = json.loads(res.stdout)
    assert payload["run_a"]["model"] == "baseline:random" and payload["run_b"]["model"] == "baseline:mask-heuristic"
    cvb = next(s for s in payload["slices"] if s["name"] == "synth-crossviewbench@all")
    paired = cvb["paired"]
    assert paired["n"] == 17 * R.SUITE_CVB_PER_TYPE
    assert paired["difference"] == pytest.approx((paired["b_correct"] - paired["a_correct"]) / paired["n"])
    assert paired["a_only_correct"] + paired["b_only_correct"] > 0
    assert paired["ci"][0] <= paired["difference"] <= paired["ci"][1]
    assert cvb["a"]["ci_method"] == "wilson_design_effect"  # each run's own interval from its results.json
    table = compare(str(runs["random"]), str(runs["heuristic"])).output
    assert "synth-crossviewbench@all" in table and "McNemar" in table and "MDE" in table


@pytest.mark.slow
def test_real_run_made_worse_fails_the_gate(runs: dict[str, Path], tmp_path: Path) -> None:
    # the synthetic sets hold the heuristic near chance (docs/synthetic.md), so the larger
    # CrossViewBench set is the one with enough correct answers to flip
    worse = tmp_path / "worse"
    flipped = make_worse(runs["heuristic"], worse, "synth-crossviewbench")
    assert flipped >= 6  # enough discordant pairs for the exact test to reach 0.05
    res = compare(str(runs["heuristic"]), str(worse), "--fail-on-regression", "--json")
    assert res.exit_code == 1
    payload = json.loads(res.stdout)
    assert [r["slice"] for r in payload["regressions"]] == ["synth-crossviewbench@all"]
    assert "REGRESSION on synth-crossviewbench@all" in res.stderr
    cvb = next(s for s in payload["slices"] if s["name"] == "synth-crossviewbench@all")
    assert cvb["paired"]["a_only_correct"] == flipped and cvb["paired"]["b_only_correct"] == 0
    assert cvb["paired"]["p_value"] == pytest.approx(2 * 0.5**flipped)
    mmvm = next(s for s in payload["slices"] if s["name"] == "synth-mmvm@all")
    assert mmvm["verdict"] == "no significant difference" and mmvm["paired"]["difference"] == 0.0
