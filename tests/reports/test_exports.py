from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cvbench.cli import cli
from cvbench.reports.exports import (
    latex_escape,
    render,
    table_to_latex,
    table_to_markdown,
    tables_to_csv,
    tables_to_json,
)
from cvbench.reports.tables import (
    Cell,
    Row,
    Table,
    layouts_for,
    make_table,
    tables_for_runs,
)
from cvbench.rundir.format import load_run


@pytest.fixture(scope="module")
def tables(factory_runs: list[Path]) -> list[Table]:
    return tables_for_runs([load_run(p) for p in factory_runs])


def test_csv_long_format_round_trips_results(factory_runs: list[Path], tables: list[Table]) -> None:
    rows = list(csv.DictReader(io.StringIO(tables_to_csv(tables))))
    run = load_run(factory_runs[1])
    metric = run.results.metric("mmvm", "8", "cue=RP")
    assert metric is not None and metric.accuracy is not None and metric.ci is not None
    hit = [r for r in rows if r["table"] == "mmvm-paper" and r["run"] == run.path.name and r["column"] == "8/cue=RP"]
    assert len(hit) == 1
    assert float(hit[0]["accuracy"]) == pytest.approx(metric.accuracy)
    assert float(hit[0]["ci_low"]) == pytest.approx(100 * metric.ci[0], abs=0.006)
    assert int(hit[0]["n"]) == metric.n and hit[0]["origin"] == "reproduced"
    assert {r["origin"] for r in rows} == {"reproduced", "chance"}


def test_json_export_has_every_cell(tables: list[Table]) -> None:
    data = json.loads(tables_to_json(tables))
    assert data["schema"] == "cvbench.tables/1"
    n_cells = sum(len(r["cells"]) for t in data["tables"] for r in t["rows"])
    assert n_cells == sum(len(r.cells) for t in tables for r in t.rows)
    cvb = next(t for t in data["tables"] if t["table"] == "crossviewbench-main")
    assert cvb["columns"][0]["key"] == "all/overall"
    assert all("ci" in r["cells"]["all/overall"] for r in cvb["rows"] if r["origin"] == "reproduced")


def test_latex_is_booktabs_with_paper_layout(tables: list[Table]) -> None:
    mmvm = next(t for t in tables if t.table_id == "mmvm-paper")
    tex = table_to_latex(mmvm, ci_style="pm")
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    assert tex.count("\\multicolumn{3}{c}") == 4 and "\\cmidrule(lr){2-4}" in tex
    assert "$\\pm$" in tex and "half-width" in tex
    assert (
        tex.index("All candidates") < tex.index("12 candidates") < tex.index("8 candidates") < tex.index("4 candidates")
    )
    brackets = table_to_latex(mmvm, ci_style="brackets")
    assert "[" in brackets and "$\\pm$" not in brackets
    plain = table_to_latex(mmvm, ci_style="none")
    assert "scriptsize" not in plain
    with pytest.raises(ValueError, match="CI style"):
        table_to_latex(mmvm, ci_style="stars")


def test_latex_and_markdown_escape_model_names() -> None:
    layout = layouts_for("crossviewbench")[0]
    row = Row(
        "r", "Evil_Model & 100% {x} | <b>", "reproduced", "api", {"all/overall": Cell(50.0, "50.0", ci=(40.0, 60.0))}
    )
    table = make_table("crossviewbench", "crossviewbench", layout, [row])
    tex = table_to_latex(table)
    assert latex_escape("a_b&c%") == "a\\_b\\&c\\%"
    assert "Evil\\_Model \\& 100\\% \\{x\\}" in tex
    md = table_to_markdown(table)
    assert "\\|" in md and "<b>" not in md and "&lt;b&gt;" in md
    assert "50.0 [40.0, 60.0]" in md


def test_render_rejects_unknown_format(tables: list[Table]) -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        render(tables, "xlsx")


def test_cli_export_each_format(factory_runs: list[Path], tmp_path: Path) -> None:
    runner = CliRunner()
    for fmt, marker in (
        ("csv", "table,task,benchmark"),
        ("json", '"schema"'),
        ("latex", "\\begin{tabular}"),
        ("markdown", "| Model | Access | Rank |"),
    ):
        out = tmp_path / f"t.{fmt}"
        result = runner.invoke(cli, ["export", *map(str, factory_runs), "--format", fmt, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert marker in out.read_text(encoding="utf-8")
    result = runner.invoke(cli, ["export", str(factory_runs[0]), "--format", "markdown", "--ci", "pm"])
    assert result.exit_code == 0 and " ± " in result.output


def test_cli_export_names_a_bad_run(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"schema": "cvbench.config/1", "model": {"id": "m"}}', encoding="utf-8")
    (tmp_path / "results.json").write_text('{\n  "model": [', encoding="utf-8")
    result = CliRunner().invoke(cli, ["export", str(tmp_path), "--format", "csv"])
    assert result.exit_code == 1
    assert "results.json:" in result.output and "invalid JSON" in result.output
