from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

from click.testing import CliRunner

from cvbench.cli import cli
from cvbench.reports.charts import Bar, bar_chart_svg
from cvbench.reports.report import build_report
from cvbench.reports.summary import (
    failure_kind,
    flatten_provenance,
    select_failures,
    summarize_run,
)
from cvbench.rundir.format import iter_records, load_run

SVG = "{http://www.w3.org/2000/svg}"


def test_chart_svg_is_well_formed_and_escaped() -> None:
    bars = [Bar("Overall", 62.5, (50.0, 75.0), 25.0, "5/8 correct"), Bar("<b>&evil</b>", 10.0, None, 50.0)]
    svg = bar_chart_svg(bars, "A & B <chart>", standalone=True)
    root = ET.fromstring(svg)  # raises on malformed XML / unescaped text
    rects = [r for r in root.findall(f".//{SVG}rect") if r.get("height") != "9"]  # minus the legend swatch
    assert len(rects) == 2
    assert float(rects[0].get("width") or "nan") == 420 * 0.625  # bar of 62.5 % on a 420 px plot
    dashed = [ln for ln in root.iter(f"{SVG}line") if ln.get("stroke") == "#d62728"]
    assert len(dashed) == 3  # one chance mark per bar + the legend
    assert "<b>" not in svg and "&lt;b&gt;&amp;evil" in svg
    assert "95% CI 50.0–75.0" in svg


def test_failure_selection_is_bounded_and_unique(factory_runs: list[Path]) -> None:
    records = list(iter_records(factory_runs[1]))
    sections = select_failures(records, per_slice=2, max_items=25)
    shown = [r.record_id for s in sections for r in s.records]
    assert len(shown) == len(set(shown)) <= 25
    assert all(len(s.records) <= 2 for s in sections)
    assert all(failure_kind(r) in ("wrong", "unparsed", "error") for s in sections for r in s.records)
    assert all(not r.correct and r.invalid is None for s in sections for r in s.records)


def test_provenance_flattening() -> None:
    items = flatten_provenance(
        {
            "seed": 3,
            "model": {"id": "x", "settings": {"detail": "high"}},
            "tasks": ["a", "b"],
            "empty": {},
            "top_p": None,
        }
    )
    assert items == [
        ("seed", "3"),
        ("model.id", "x"),
        ("model.settings.detail", "high"),
        ("tasks", "a, b"),
        ("empty", "{}"),
        ("top_p", "null"),
    ]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.imgs: list[str] = []
        self.meta_csp: list[str] = []
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts.append(a)
        if tag == "img":
            self.imgs.append(a.get("src") or "")
        if tag == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy":
            self.meta_csp.append(a.get("content") or "")
        self.handlers += [k for k, _ in attrs if k.startswith("on")]


def test_report_files(factory_runs: list[Path], tmp_path: Path) -> None:
    files = build_report(factory_runs[0], tmp_path / "rep", gallery_per_slice=2, gallery_max=20)
    html = files.html.read_text(encoding="utf-8")
    md = files.markdown.read_text(encoding="utf-8")
    summary = summarize_run(load_run(factory_runs[0]))
    cvb = next(e for e in summary.evaluations if e.key == "crossviewbench@all")
    # headline number, its interval and chance in both formats
    for text in (html, md):
        assert cvb.overall.text in text and cvb.overall.ci_text in text
    assert f"{cvb.overall.chance:.1f}%" in md
    # charts: inline SVG in HTML, .svg files for Markdown, one per slice dimension
    assert html.count("<svg") == md.count("](report_files/chart-") == 11
    assert all((tmp_path / "rep" / m).exists() for m in re.findall(r"\]\((report_files/chart-[^)]+)\)", md))
    # gallery images copied next to the report and referenced relatively; no scripts at all
    page = _Collector()
    page.feed(html)
    # report.html is one file: every gallery image is an embedded preview, no file beside it is needed
    assert page.imgs and all(src.startswith("data:image/jpeg;base64,") for src in page.imgs)
    assert "report_files/" not in html
    assert page.scripts == [] and page.handlers == []
    assert page.meta_csp and "script-src 'self'" in page.meta_csp[0]
    assert files.images_copied == len(set(page.imgs)) and files.images_missing == 0
    # report.md links the same previews as files; no exact image is copied unless asked
    linked = re.findall(r"\]\((report_files/[0-9a-f]{64}\.preview-[^)]+)\)", md)
    assert linked and all((tmp_path / "rep" / m).is_file() for m in linked)
    assert not list((tmp_path / "rep" / "report_files").glob("*.png"))
    # no local path of the machine that made the run: sources are relative to the data root
    assert str(factory_runs[0].parent) not in html and str(factory_runs[0].parent) not in md
    assert "Invalid samples" in html and "polygon of odd length" in html
    assert "environment.git.commit" in html and "6b5af51" in md


def test_report_escapes_model_text(xss_run: Path, tmp_path: Path) -> None:
    files = build_report(xss_run, tmp_path)
    html = files.html.read_text(encoding="utf-8")
    assert "<script>window.__pwned" not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    md = files.markdown.read_text(encoding="utf-8")
    assert "<script>" not in md.split("```")[0]  # the title line is escaped; code blocks show responses verbatim


def test_report_marks_partial_runs_and_missing_images(factory_runs: list[Path], tmp_path: Path) -> None:
    import json
    import shutil

    run = tmp_path / "partial"
    shutil.copytree(factory_runs[2], run)
    results = json.loads((run / "results.json").read_text())
    results["status"] = "cancelled"
    (run / "results.json").write_text(json.dumps(results))
    shutil.rmtree(run / "images")
    files = build_report(run, tmp_path / "out")
    html = files.html.read_text(encoding="utf-8")
    assert "This run is <strong>cancelled</strong>" in html
    assert files.images_missing > 0 and "missing from the run directory" in html


def test_cli_report(factory_runs: list[Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(factory_runs[3]), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "report.html").is_file() and (tmp_path / "r" / "report.md").is_file()
    bad = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert bad.exit_code == 1 and "config.json: not found" in bad.output


def test_the_interval_method_is_named_once_per_page(factory_runs: list[Path], tmp_path: Path) -> None:
    files = build_report(factory_runs[0], tmp_path / "rep", gallery_per_slice=1, gallery_max=5)
    for page in (files.markdown.read_text(encoding="utf-8"), files.html.read_text(encoding="utf-8")):
        assert page.count("95% intervals: cluster_bootstrap") == 1
        assert "CI method" not in page


def test_full_size_images_only_when_asked(factory_runs: list[Path], tmp_path: Path) -> None:
    files = build_report(factory_runs[0], tmp_path / "rep", gallery_per_slice=1, gallery_max=4, full_images=True)
    html = files.html.read_text(encoding="utf-8")
    full = re.findall(r'<a href="(report_files/[0-9a-f]{64}\.png)"', html)
    assert full and all((tmp_path / "rep" / f).is_file() for f in full)


def test_report_title_says_what_the_run_is(factory_runs: list[Path], tmp_path: Path) -> None:
    html = build_report(factory_runs[0], tmp_path / "rep", gallery_max=0).html.read_text(encoding="utf-8")
    title = re.search(r"<title>(.*?)</title>", html)
    assert title is not None
    assert title.group(1) == (
        "cvbench report: GPT-4o · auto · fill · 4, 8, 12, all candidates · crossviewbench-protocol/1, mmvm-protocol/1"
    )
