"""`cvbench run --ablate` end to end with the built-in baselines on generated synthetic data:
run identity and folder, config/results records, refusals, `cvbench compare` and the site."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cvbench.cli import cli
from cvbench.runner.session import RunOptions, default_out_dir

TASKS = "synth-crossviewbench,synth-mmvm"


def cvbench(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def run(root: Path, *extra: str, model: str = "mask-heuristic", tasks: str = TASKS) -> Result:
    return cvbench(
        "run", "--model", model, "--task", tasks, "--data-dir", str(root), "--no-progress", "--concurrency", "2", *extra
    )


def read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run_dir / "samples.jsonl").read_text().splitlines() if x.strip()]


def test_the_ablation_names_its_own_run_folder() -> None:
    base = RunOptions(model="openai:gpt-4o", tasks=("synth-mmvm",))
    folders = {default_out_dir(RunOptions(**{**base.__dict__, "ablation": a})) for a in (None, "images", "marks")}
    assert len(folders) == 3
    assert default_out_dir(RunOptions(**{**base.__dict__, "ablation": "images"})).name.endswith("ablate-images")


@pytest.fixture(scope="module")
def runs(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A full, a blind (images) and an unmarked (marks) mask-heuristic run in their default folders."""
    work = tmp_path_factory.mktemp("ablation-runs")
    mp = pytest.MonkeyPatch()
    mp.chdir(work)
    mp.setenv("CVBENCH_CACHE_DIR", str(work / "cache"))
    mp.delenv("CVBENCH_RESPONSE_CACHE", raising=False)
    try:
        out: dict[str, Path] = {}
        for name, extra in (("full", ()), ("images", ("--ablate", "images")), ("marks", ("--ablate", "marks"))):
            result = run(synth_root, *extra)
            assert result.exit_code == 0, result.output
            folder = re.search(r"run directory: (\S+)", result.output)
            assert folder is not None, result.output
            out[name] = work / folder.group(1)
        return out
    finally:
        mp.undo()


def test_ablated_runs_get_their_own_folder_config_and_results(runs: dict[str, Path]) -> None:
    assert len(set(runs.values())) == 3
    assert runs["images"].name == runs["full"].name + "_ablate-images"
    full, blind, unmarked = (read(runs[k] / "config.json") for k in ("full", "images", "marks"))
    assert "ablation" not in full and "ablation" not in full["prompt_settings"]
    assert blind["ablation"] == {"kind": "images", "row_kind": "blind"}
    assert blind["prompt_settings"]["ablation"] == "images"
    assert unmarked["ablation"] == {"kind": "marks", "row_kind": "unmarked"}
    assert read(runs["images"] / "results.json")["model"]["ablation"]["row_kind"] == "blind"
    assert "ablation" not in read(runs["full"] / "results.json")["model"]
    blind_records = records(runs["images"])
    assert blind_records and all(r["protocol"]["ablation"]["kind"] == "images" for r in blind_records)
    assert all("ablation" not in r["protocol"] for r in records(runs["full"]))
    # the same samples, the same answer keys: a paired comparison is possible
    assert [(r["record_id"], r["answer"]) for r in blind_records] == [
        (r["record_id"], r["answer"]) for r in records(runs["full"])
    ]


def test_an_ablated_run_never_resumes_a_full_one(synth_root: Path, runs: dict[str, Path]) -> None:
    result = run(synth_root, "--ablate", "images", "--out", str(runs["full"]))
    assert result.exit_code != 0
    assert "holds a run with a different configuration" in result.output
    assert "ablation" in result.output and "prompt_settings.ablation" in result.output


def test_text_ablation_is_refused_with_a_reason_before_anything_runs(
    synth_root: Path, tmp_path: Path, isolated_cache: Path
) -> None:
    native = run(synth_root, "--ablate", "text", "--out", str(tmp_path / "a"), tasks="synth-crossviewbench")
    assert native.exit_code != 0 and "--ablate text is refused in native mode" in native.output
    mmvm = run(synth_root, "--ablate", "text", "--out", str(tmp_path / "b"), model="first-option")
    assert mmvm.exit_code != 0 and "--ablate text is refused for MMVM" in mmvm.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    ok = run(
        synth_root, "--ablate", "text", "--out", str(tmp_path / "c"), model="first-option", tasks="synth-crossviewbench"
    )
    assert ok.exit_code == 0, ok.output
    rows = records(tmp_path / "c")
    assert rows and all(r["prompt_text"].startswith("Answer with the letter of one option.") for r in rows)


def test_compare_reports_the_paired_gap_of_a_blind_run(runs: dict[str, Path]) -> None:
    shown = cvbench("compare", str(runs["full"]), str(runs["images"]))
    assert shown.exit_code == 0, shown.output
    assert "DIFFERENT CONFIGURATIONS" not in shown.output
    for evaluation in ("synth-crossviewbench@all", "synth-mmvm@all"):
        line = next(x for x in shown.output.splitlines() if x.startswith(f"{evaluation}: images ablated (blind): gap"))
        assert re.search(r"gap [+-]\d+\.\d pts \[[+-]\d+\.\d, [+-]\d+\.\d\]", line), line
    payload = json.loads(cvbench("compare", str(runs["full"]), str(runs["images"]), "--json").output)
    assert payload["ablation"]["kind"] == "images" and payload["ablation"]["ablated"] == "B"
    assert payload["config_differences"] == []
    full = read(runs["full"] / "results.json")["evaluations"]
    blind = read(runs["images"] / "results.json")["evaluations"]
    for gap in (g for g in payload["ablation"]["gaps"] if "/" not in g["slice"]):
        expected = blind[gap["slice"]]["overall"]["accuracy"] - full[gap["slice"]]["overall"]["accuracy"]
        assert gap["gap"] == pytest.approx(expected)
        assert gap["ci"][0] <= gap["gap"] <= gap["ci"][1]
    # the other order gives the same gap (ablated minus full), not its negation
    reverse = json.loads(cvbench("compare", str(runs["images"]), str(runs["full"]), "--json").output)
    assert reverse["ablation"]["ablated"] == "A"
    assert [g["gap"] for g in reverse["ablation"]["gaps"]] == pytest.approx(
        [g["gap"] for g in payload["ablation"]["gaps"]]
    )


def test_two_ablations_compared_still_warn_that_the_configs_differ(runs: dict[str, Path]) -> None:
    shown = cvbench("compare", str(runs["images"]), str(runs["marks"]))
    assert shown.exit_code == 0, shown.output
    assert "DIFFERENT CONFIGURATIONS" in shown.output and "gap" not in shown.output


def test_the_site_shows_an_ablated_run_as_its_own_row_kind(runs: dict[str, Path], tmp_path: Path) -> None:
    site = tmp_path / "site"
    built = cvbench("leaderboard", "build", *(str(p) for p in runs.values()), "--out", str(site))
    assert built.exit_code == 0, built.output
    html = (site / "mmvm.html").read_text(encoding="utf-8")
    rows = re.findall(r"<tr class=\"origin-reproduced[^\"]*\".*?</tr>", html, flags=re.S)
    names = [re.search(r"<td class=\"model\" data-sort=\"([^\"]*)\"", r).group(1) for r in rows]  # type: ignore[union-attr]
    assert {"Mask heuristic", "Mask heuristic (blind)", "Mask heuristic (unmarked)"} <= set(names)
    blind_row = rows[names.index("Mask heuristic (blind)")]
    assert re.search(r'<span class="badge ablation"[^>]*>blind</span>', blind_row)
    full_row = rows[names.index("Mask heuristic")]
    assert "badge ablation" not in full_row
