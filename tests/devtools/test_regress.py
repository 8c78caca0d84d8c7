"""The golden suite: payloads, diffs, --update, and the committed golden files themselves.

`test_golden_suite_matches_committed_files` runs the real suite (synthetic data generated into a
temporary directory, the built-in models through the real runner) and compares it with
tests/golden/ci/. Set CVBENCH_UPDATE_GOLDEN=1 to rewrite the files on purpose instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cvbench.cli import cli
from cvbench.devtools import regress as R
from cvbench.rundir.format import SampleRecord
from cvbench.scoring.metrics import compute_results

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def records(flip: str | None = None) -> list[SampleRecord]:
    out = []
    for i in range(12):
        sid = f"case-{i:02d}"
        correct = (i % 3 != 0) != (sid == flip)
        parsed = "A" if correct else "B"
        out.append(
            SampleRecord(
                record_id=f"synth-mmvm@4/{sid}",
                task="synth-mmvm",
                benchmark="mmvm",
                setting="4",
                sample_id=sid,
                cluster=f"c{i // 2}",
                slices={"cue": ["CL" if i % 2 else "RP"]},
                n_options=4,
                answer="A",
                prompt_text=f"q{i}",
                image_sha256=["ab" * 32],
                options=[["A", "1"], ["B", "2"]],
                mode="overlay",
                response=parsed,
                parsed=parsed,
                parse_status="parsed",
                correct=correct,
            )
        )
    return out


def payload(recs: list[SampleRecord]) -> dict[str, Any]:
    results = compute_results(
        recs, run_seed=0, model={"id": "baseline:first-option"}, status="complete", n_resamples=100
    )
    return R.golden_payload(R.SuiteRun("first-option", "first-option"), results, recs)


def test_payload_holds_every_deterministic_number_and_the_answers() -> None:
    p = payload(records())
    ev = p["evaluations"]["synth-mmvm@4"]
    assert ev["overall"] == {
        "accuracy": round(8 / 12, 10),
        "correct": 8,
        "n": 12,
        "chance": 0.25,
        "unparsed": 0,
        "errors": 0,
        "invalid": 0,
    }
    assert set(ev["slices"]) == {"cue=CL", "cue=RP"}
    assert ev["answers"]["case-00"] == "B wrong parsed" and ev["answers"]["case-01"] == "A right parsed"
    assert len(ev["answers_digest"]) == 64 and len(ev["prompts_digest"]) == 64
    assert payload(records()) == p  # deterministic


def test_diff_names_the_changed_numbers_and_the_changed_sample() -> None:
    before, after = payload(records()), payload(records(flip="case-01"))
    diff = R.diff_payloads("ci/first-option.json", before, after)
    assert any('synth-mmvm@4 > answers > case-01: golden "A right parsed" -> now "B wrong parsed"' in d for d in diff)
    assert any("synth-mmvm@4 > overall > correct: golden 8 -> now 7" in d for d in diff)
    assert any("slices > cue=CL > accuracy" in d for d in diff)  # case-01 is a CL question
    assert not any("cue=RP" in d for d in diff)
    assert any("answers_digest" in d for d in diff)
    assert R.diff_payloads("x", before, payload(records())) == []
    assert "no committed golden file" in R.diff_payloads("x", None, before)[0]
    assert "no case in the suite" in R.diff_payloads("x", before, None)[0]


def test_compare_or_update_round_trip(tmp_path: Path) -> None:
    folder = tmp_path / "ci"
    current = {"first-option": payload(records())}
    first = R.compare_or_update("ci", folder, current, update=False)
    assert not first.passed and "no committed golden file" in first.diff[0]
    written = R.compare_or_update("ci", folder, current, update=True)
    assert written.updated == (str(folder / "first-option.json"),)
    assert json.loads((folder / "first-option.json").read_text()) == current["first-option"]
    assert R.compare_or_update("ci", folder, current, update=False).passed
    assert R.compare_or_update("ci", folder, current, update=True).updated == ()  # unchanged: nothing rewritten
    (folder / "stale.json").write_text("{}\n")
    changed = {"first-option": payload(records(flip="case-05"))}
    result = R.compare_or_update("ci", folder, changed, update=False)
    assert any("case-05" in d for d in result.diff) and any("stale.json" in d for d in result.diff)
    R.compare_or_update("ci", folder, changed, update=True)
    assert not (folder / "stale.json").exists()
    assert R.compare_or_update("ci", folder, changed, update=False).passed


def test_corrupt_golden_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "random.json").write_text("{\n  oops\n")
    with pytest.raises(R.RegressError, match=r"random.json:2: invalid JSON"):
        R.read_golden(tmp_path / "ci")


def test_unknown_suite_and_missing_golden_dir_are_errors(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["regress", "--suite", "ci", "--golden", str(tmp_path / "nope")])
    assert res.exit_code == 1 and "no golden directory" in res.output
    with pytest.raises(R.RegressError, match="unknown suite"):
        R.regress("bogus", golden=tmp_path)


# --------------------------------------------------------------------------------------
# The real suite against the committed files
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def suite_payloads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    # the data folder is shared with test_snapshots.py for the session (a marker file guards reuse)
    return R.run_ci_suite(tmp_path_factory.getbasetemp() / "cvbench-suite" / "ci")


@pytest.mark.slow
def test_golden_suite_matches_committed_files(suite_payloads: dict[str, dict[str, Any]]) -> None:
    result = R.compare_or_update("ci", GOLDEN / "ci", suite_payloads, update=R.update_requested())
    if R.update_requested():
        pytest.skip(f"golden files updated: {', '.join(result.updated) or 'none changed'}")
    assert result.passed, "golden suite changed (cvbench regress --suite ci --update if intended):\n" + "\n".join(
        result.diff[:60]
    )


@pytest.mark.slow
def test_golden_suite_covers_the_promised_matrix(suite_payloads: dict[str, dict[str, Any]]) -> None:
    assert set(suite_payloads) == {r.name for r in R.CI_RUNS}
    models = {p["run"]["model"] for p in suite_payloads.values()}
    assert models == {"random", "first-option", "mask-heuristic"}
    assert len({p["run"]["style"] for p in suite_payloads.values()}) >= 4
    for p in suite_payloads.values():
        assert p["status"] == "complete"
        expected = {"synth-crossviewbench@all"} | (
            {"synth-mmvm@4", "synth-mmvm@all"} if "synth-mmvm" in p["run"]["tasks"] else set()
        )
        assert set(p["evaluations"]) == expected
        cvb = p["evaluations"]["synth-crossviewbench@all"]
        assert cvb["overall"]["n"] == 17 * R.SUITE_CVB_PER_TYPE
        assert {f"task_type=Q{i}" for i in range(1, 18)} <= set(cvb["slices"])
    # the styles change what first-option sees, but not what it answers
    digests = {
        name: p["evaluations"]["synth-crossviewbench@all"]
        for name, p in suite_payloads.items()
        if name.startswith("first-option")
    }
    assert len({d["prompts_digest"] for d in digests.values()}) == len(digests)
    assert len({d["answers_digest"] for d in digests.values()}) == 1


@pytest.mark.slow
def test_a_changed_result_fails_with_a_diff_naming_it(
    suite_payloads: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    folder = tmp_path / "ci"
    R.compare_or_update("ci", folder, suite_payloads, update=True)  # golden = this very suite run
    assert R.compare_or_update("ci", folder, suite_payloads, update=False).passed
    golden = json.loads((folder / "random.json").read_text())
    ev = golden["evaluations"]["synth-mmvm@4"]
    sample = sorted(ev["answers"])[0]
    ev["answers"][sample] = "Z wrong parsed"
    ev["overall"]["correct"] += 1
    (folder / "random.json").write_text(R.dump_json(golden))
    result = R.compare_or_update("ci", folder, suite_payloads, update=False)
    assert not result.passed
    assert any(f'answers > {sample}: golden "Z wrong parsed"' in d for d in result.diff)
    assert any("synth-mmvm@4 > overall > correct" in d for d in result.diff)
    assert all(d.startswith("ci/random.json") for d in result.diff)
