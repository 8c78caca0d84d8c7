from __future__ import annotations

from pathlib import Path

import pytest

from cvbench.core.types import CATEGORY_NAMES, CUE_CODES, TASK_TYPES
from cvbench.reports.slice_names import slice_label, slice_sort_key
from cvbench.reports.tables import (
    Cell,
    Row,
    layouts_for,
    metric_cell,
    overlap_ranks,
    rank_rows,
    size_bucket,
    tables_for_runs,
)
from cvbench.rundir.format import MetricSummary, load_run


def test_overlap_rank_definition() -> None:
    intervals = {"a": (0.70, 0.80), "b": (0.65, 0.75), "c": (0.50, 0.60), "d": (0.55, 0.66), "e": (0.10, 0.20)}
    ranks = overlap_ranks(intervals)
    # a and b overlap -> both first; c lies below a, b (lo 0.65 > hi 0.60) and overlaps d; d lies below a only
    assert ranks == {"a": 1, "b": 1, "c": 3, "d": 2, "e": 5}


def test_rank_rows_skips_reference_and_intervalless_rows() -> None:
    def row(rid: str, access: str, ci: tuple[float, float] | None, origin: str = "reproduced") -> Row:
        return Row(rid, rid, origin, access, {"k": Cell(50.0, "50.0", ci=ci)})

    rows = [
        row("m1", "api", (60, 70)),
        row("m2", "open", (40, 50)),
        row("base", "baseline", (80, 90)),
        row("paper", "open", None, origin="reported"),
        row("hum", "human", None, origin="reported"),
    ]
    assert rank_rows(rows, "k") == {"m1": 1, "m2": 2}


def test_metric_cell_converts_to_percent_and_keeps_counts() -> None:
    cell = metric_cell(
        {
            "accuracy": 0.43,
            "correct": 43,
            "n": 100,
            "ci": [0.33, 0.53],
            "ci_method": "cluster_bootstrap",
            "chance": 0.25,
            "unparsed_rate": 0.02,
            "error_rate": 0.0,
            "invalid": 1,
        }
    )
    assert cell.text == "43.0" and cell.ci == pytest.approx((33.0, 53.0)) and cell.chance == pytest.approx(25.0)
    assert (cell.n, cell.correct, cell.invalid) == (100, 43, 1)
    assert "95% CI 33.0–53.0" in cell.tooltip and "43/100" in cell.tooltip
    with pytest.raises(ValueError, match="results.json: x"):
        metric_cell({"n": 3}, "results.json: x")


def test_layouts_follow_the_papers() -> None:
    main, types = layouts_for("crossviewbench")
    assert [c.slice for c in main.columns] == ["overall"] + [f"category={k}" for k in CATEGORY_NAMES]
    assert [c.label for c in types.columns][1:] == list(TASK_TYPES)
    paper, *cues = layouts_for("mmvm")
    assert [(c.setting, c.label) for c in paper.columns][:3] == [("all", "Overall"), ("all", "CL"), ("all", "RP")]
    assert [c.setting for c in paper.columns[::3]] == ["all", "12", "8", "4"]
    assert [c.label for c in cues[0].columns] == ["Overall", *CUE_CODES]
    with pytest.raises(ValueError, match="unknown benchmark"):
        layouts_for("blink")


def test_slice_names_and_order() -> None:
    assert slice_label("task_type=Q10") == "Q10 Scale change detection"
    assert slice_label("category=visibility_occlusion") == "Visibility & Occlusion"
    assert slice_label("cue=RP") == "RP Relative position in the scene"
    names = [
        "task_type=Q10",
        "task_type=Q2",
        "category=physical",
        "category=correspondence",
        "bucket=13+",
        "bucket=2-4",
        "cue=OM",
        "cue=CL",
    ]
    assert sorted(names, key=slice_sort_key) == [
        "category=correspondence",
        "category=physical",
        "task_type=Q2",
        "task_type=Q10",
        "cue=CL",
        "cue=OM",
        "bucket=2-4",
        "bucket=13+",
    ]


def test_size_buckets() -> None:
    assert [size_bucket(x) for x in (None, 1.3, 4, 7, 13, 34, 40, 72)] == [
        "unknown",
        "le4",
        "le4",
        "4-13",
        "4-13",
        "13-40",
        "13-40",
        "gt40",
    ]


def test_tables_from_runs_match_results_json(factory_runs: list[Path]) -> None:
    runs = [load_run(p) for p in factory_runs]
    tables = {t.table_id: t for t in tables_for_runs(runs)}
    assert set(tables) == {
        "crossviewbench-main",
        "crossviewbench-types",
        "mmvm-paper",
        "mmvm-cues-all",
        "mmvm-cues-12",
        "mmvm-cues-8",
        "mmvm-cues-4",
    }
    main = tables["crossviewbench-main"]
    gpt = next(r for r in main.rows if r.model_id == "openai:gpt-4o")
    results = runs[0].results.evaluations["crossviewbench@all"]
    assert gpt.cells["all/overall"].value == pytest.approx(100 * (results.overall.accuracy or 0.0))
    assert gpt.cells["all/category=geometric"].correct == (results.slices or {})["category=geometric"].correct
    # rows sorted best first, chance row present, baseline not ranked
    values = [r.cells["all/overall"].value or 0.0 for r in main.rows]
    assert values == sorted(values, reverse=True)
    chance = next(r for r in main.rows if r.origin == "chance")
    assert chance.cells["all/overall"].value == pytest.approx(100 * (results.overall.chance or 0.0))
    baseline = next(r for r in main.rows if r.access == "baseline")
    assert baseline.row_id not in main.ranks and gpt.row_id in main.ranks
    paper = tables["mmvm-paper"]
    gpt_mmvm = next(r for r in paper.rows if r.model_id == "openai:gpt-4o")
    assert gpt_mmvm.cells["4/cue=CL"].value == pytest.approx(
        100 * (runs[0].results.metric("mmvm", "4", "cue=CL") or MetricSummary()).accuracy
    )
