from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cvbench.leaderboard.reference import (
    ReferenceDataError,
    load_reported,
    params_from_name,
    reported_rows,
    shipped_reference_path,
    source_url,
)
from cvbench.reports.tables import layouts_for

HEADER = "benchmark,setting,model,access,metric,value,source\n"


def test_shipped_reference_loads_verbatim() -> None:
    values = load_reported()
    with open(shipped_reference_path(), newline="", encoding="utf-8") as fh:
        raw = list(csv.DictReader(fh))
    assert len(values) == len(raw) == 319
    assert [(v.model, v.metric, v.value) for v in values] == [(r["model"], r["metric"], r["value"]) for r in raw]
    # values keep their published spelling
    assert any(v.value == "35.0" for v in values) and any(v.value == "12.6" for v in values)
    crossviewer = {v.metric: v.value for v in values if v.model == "CrossViewer" and v.benchmark == "crossviewbench"}
    assert crossviewer == {
        "overall": "62.7",
        "correspondence": "83.2",
        "visibility_occlusion": "61.1",
        "geometric": "49.1",
        "physical": "74.4",
    }


def test_shipped_copy_matches_shared_reference() -> None:
    shared = Path(__file__).resolve().parents[3] / "shared" / "reference" / "reported_results.csv"
    if not shared.exists():
        shared = Path("/work/shared/reference/reported_results.csv")
    if not shared.exists():
        pytest.skip("shared/reference/reported_results.csv not present beside the checkout")
    assert shipped_reference_path().read_bytes() == shared.read_bytes()


def test_rows_map_metrics_to_site_columns() -> None:
    values = load_reported()
    paper = layouts_for("mmvm")[0]
    rows = {r.name: r for r in reported_rows(values, "mmvm", paper.columns)}
    colva = rows["CoLVA-InternVL2-4B"]
    assert colva.cells["4/overall"].text == "59.5" and colva.cells["12/cue=RP"].text == "46.9"
    assert colva.cells["4/overall"].as_published == "59.47" and colva.cells["12/cue=RP"].as_published == "46.86"
    assert colva.access == "native" and colva.access_as_published == "native-region"
    assert colva.source_url == "https://arxiv.org/abs/2501.04670" and colva.params_b == 4.0
    human = [
        r
        for r in reported_rows(values, "crossviewbench", layouts_for("crossviewbench")[0].columns)
        if r.access == "human"
    ]
    assert [h.name for h in human] == ["HumanBase"] and human[0].is_reference


@pytest.mark.parametrize(
    "name, params",
    [
        ("InternVL2.5-78B", 78.0),
        ("Qwen3-VL-235B-A22B-Instruct", 235.0),
        ("DeepSeek-VL-1.3B", 1.3),
        ("GPT-4o-2024-08-06", None),
        ("VILA1.5-40B", 40.0),
        ("HumanBase", None),
    ],
)
def test_params_from_name(name: str, params: float | None) -> None:
    assert params_from_name(name) == params


def test_source_url() -> None:
    assert source_url("CrossView Suite (arXiv 2605.18621) Table 3") == "https://arxiv.org/abs/2605.18621"
    assert source_url("a workshop poster") == ""


@pytest.mark.parametrize(
    "line, message",
    [
        ("crossviewbench,all,M,open,overall,abc,src", ":2: value 'abc' is not a number"),
        ("blink,all,M,open,overall,1.0,src", ":2: unknown benchmark 'blink'"),
        ("mmvm,16,M,open,overall,1.0,src", ":2: unknown mmvm setting '16'"),
        ("mmvm,all,M,open,XX,1.0,src", ":2: unknown mmvm metric 'XX'"),
        ("crossviewbench,all,M,closed,overall,1.0,src", ":2: unknown access 'closed'"),
        ("crossviewbench,all,M,open,overall,1.0", ":2: expected 7 fields, got 6"),
    ],
)
def test_bad_reference_rows_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "ref.csv"
    path.write_text(HEADER + line + "\n", encoding="utf-8")
    with pytest.raises(ReferenceDataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_reported(path)


def test_duplicate_and_header_errors(tmp_path: Path) -> None:
    path = tmp_path / "ref.csv"
    row = "crossviewbench,all,M,open,overall,1.0,src\n"
    path.write_text(HEADER + row + row, encoding="utf-8")
    with pytest.raises(ReferenceDataError, match=":3: duplicate of line 2"):
        load_reported(path)
    path.write_text("model,value\n", encoding="utf-8")
    with pytest.raises(ReferenceDataError, match=":1: header must be"):
        load_reported(path)
