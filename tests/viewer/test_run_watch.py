"""The viewer reads a run directory's config.json and results.json through their typed readers: a
finished run shows its own table; a file that does not read is named, not shown as 'waiting'."""

from __future__ import annotations

from pathlib import Path

from cvbench.viewer.state import RunWatch
from tests.reports.run_factory import DEFAULT_MODELS, write_run


def test_a_finished_run_shows_its_status_model_and_slices(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, DEFAULT_MODELS[0], cvb_per_type=1, mmvm_n=4)
    snap = RunWatch(run_dir).snapshot()
    assert snap["problems"] == []
    assert snap["status"] == "complete" and not snap["live"]
    assert snap["model"] and snap["tasks"]
    assert snap["done"] > 0 and any(row["name"] for row in snap["slices"])


def test_an_unreadable_config_is_named_as_a_problem(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, DEFAULT_MODELS[0], cvb_per_type=1, mmvm_n=4)
    (run_dir / "config.json").write_text('{"schema": "cvbench.config/0"}', encoding="utf-8")
    snap = RunWatch(run_dir).snapshot()
    assert len(snap["problems"]) == 1 and "config.json" in snap["problems"][0]
    assert snap["status"] == "complete"  # results.json still reads
