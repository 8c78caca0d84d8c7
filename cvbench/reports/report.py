"""`cvbench report RUN_DIR`: report.md and a self-contained report.html for one run.

report.html is one file: CSS inline, charts as inline SVG, the gallery's images embedded as
preview-size JPEGs (data: URIs). report.md links the same previews and the charts as files in
report_files/. With `full_images`, the exact images the model saw are copied into
report_files/ too and each preview in the HTML links to its full-size file.
"""

from __future__ import annotations

import base64
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from markupsafe import Markup

from cvbench.core.types import ImageRef
from cvbench.imaging.images import ImageError, load_image
from cvbench.reports.charts import bar_chart_svg
from cvbench.reports.exports import markdown_escape
from cvbench.reports.previews import PreviewSettings, preview_jpeg
from cvbench.reports.regions import DISPLAY_ONLY, LegendEntry, RegionDrawing, region_drawings
from cvbench.reports.summary import (
    ChartSpec,
    GallerySection,
    RunSummary,
    charts_for,
    error_text,
    failure_kind,
    invalid_records,
    select_failures,
    summarize_run,
)
from cvbench.reports.tables import ACCESS_LABELS, Cell
from cvbench.reports.templating import CSP, environment
from cvbench.rundir.format import RunData, SampleRecord, load_run
from cvbench.rundir.portable import data_root, portable_path

ASSETS_DIR = "report_files"


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path
    assets: Path
    images_copied: int
    images_missing: int


@dataclass(frozen=True)
class GalleryImage:
    image: ReportImage
    label: str

    @property
    def src(self) -> str:
        """For report.md: the preview file next to it."""
        return self.image.preview


@dataclass(frozen=True)
class GalleryEntry:
    record: SampleRecord
    kind: str  # wrong | unparsed | error
    images: tuple[GalleryImage, ...]
    missing_images: int
    error: str
    # native mode: the referenced regions drawn for the reader (never what the model saw)
    region_images: tuple[str, ...] = ()  # data: URIs
    legend: tuple[LegendEntry, ...] = ()


REPORT_PREVIEW = PreviewSettings(max_side=512, quality=80)


@dataclass(frozen=True)
class ReportImage:
    data_uri: str  # the preview, embedded in report.html
    preview: str  # the preview's file, relative to the report (report.md)
    full: str | None  # the exact image, relative to the report, when asked for


def report_images(
    run: RunData, sections: list[GallerySection], assets: Path, *, full_images: bool = False
) -> tuple[dict[str, ReportImage], int]:
    """The gallery's images: sha256 -> its preview (embedded and as a file) and, when asked, the
    exact file copied next to the report; plus how many were missing from the run directory."""
    out: dict[str, ReportImage] = {}
    missing = 0
    for section in sections:
        for record in section.records:
            for sha in record.image_sha256:
                if sha in out:
                    continue
                src = run.image_path(sha)
                if src is None:
                    missing += 1
                    continue
                try:
                    data = preview_jpeg(load_image(ImageRef(src)), REPORT_PREVIEW)
                except ImageError as exc:
                    raise ValueError(f"{run.path.name}: image of {record.record_id}: {exc}") from None
                assets.mkdir(parents=True, exist_ok=True)
                preview = assets / f"{sha}{REPORT_PREVIEW.suffix}"
                if not preview.exists():
                    preview.write_bytes(data)
                full = None
                if full_images:
                    dest = assets / f"{sha}{src.suffix}"
                    if not dest.exists():
                        shutil.copyfile(src, dest)
                    full = f"{ASSETS_DIR}/{dest.name}"
                uri = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
                out[sha] = ReportImage(uri, f"{ASSETS_DIR}/{preview.name}", full)
    return out, missing


def gallery_entries(
    section: GallerySection,
    image_paths: dict[str, ReportImage],
    drawings: dict[str, RegionDrawing] | None = None,
) -> list[GalleryEntry]:
    entries = []
    for record in section.records:
        images = tuple(
            GalleryImage(image_paths[sha], f"Image {i + 1}")
            for i, sha in enumerate(record.image_sha256)
            if sha in image_paths
        )
        entries.append(
            GalleryEntry(
                record,
                failure_kind(record) or "wrong",
                images,
                len(record.image_sha256) - len(images),
                error_text(record),
                *_drawn(record, drawings or {}),
            )
        )
    return entries


def _drawn(record: SampleRecord, drawings: dict[str, RegionDrawing]) -> tuple[tuple[str, ...], tuple[LegendEntry, ...]]:
    drawing = drawings.get(record.record_id)
    if drawing is None:
        return (), ()
    uris = tuple(
        "data:image/jpeg;base64," + base64.b64encode(preview_jpeg(img, REPORT_PREVIEW)).decode("ascii")
        for img in drawing.images
    )
    return uris, drawing.legend


def build_report(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    gallery_per_slice: int = 3,
    gallery_max: int = 60,
    full_images: bool = False,
) -> ReportFiles:
    """Write report.md, report.html, the charts (.svg) and the gallery previews into `out_dir`
    (default: the run directory); `full_images` also copies the exact images."""
    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run.path
    out.mkdir(parents=True, exist_ok=True)
    assets = out / ASSETS_DIR
    summary = summarize_run(run)
    charts = charts_for(summary)
    root = data_root(run.config)
    records = [replace(r, source=portable_path(r.source, root)) for r in run.records()]
    sections = select_failures(records, per_slice=gallery_per_slice, max_items=gallery_max)
    image_paths, missing = report_images(run, sections, assets, full_images=full_images)
    invalid, invalid_total = invalid_records(records)
    shown = [r for s in sections for r in s.records]
    drawings, region_notes = region_drawings(shown, data_root(run.config))
    gallery = [(s, gallery_entries(s, image_paths, drawings)) for s in sections]

    assets.mkdir(parents=True, exist_ok=True)
    chart_files = {}
    for chart in charts:
        name = f"chart-{chart.chart_id}.svg"
        (assets / name).write_text(bar_chart_svg(chart.bars, chart.title, standalone=True), encoding="utf-8")
        chart_files[chart.chart_id] = f"{ASSETS_DIR}/{name}"

    md_path = out / "report.md"
    md_path.write_text(
        render_markdown(summary, charts, chart_files, gallery, invalid, invalid_total, len(records)), encoding="utf-8"
    )
    html_path = out / "report.html"
    html_path.write_text(
        render_html(summary, charts, gallery, invalid, invalid_total, len(records), region_notes), encoding="utf-8"
    )
    return ReportFiles(md_path, html_path, assets, len(image_paths), missing)


# --------------------------------------------------------------------------------------- HTML


def render_html(
    summary: RunSummary,
    charts: list[ChartSpec],
    gallery: list[tuple[GallerySection, list[GalleryEntry]]],
    invalid: list[SampleRecord],
    invalid_total: int,
    n_records: int,
    region_notes: list[str] | None = None,
) -> str:
    template = environment().get_template("report.html.j2")
    svgs = [(c, Markup(bar_chart_svg(c.bars, c.title))) for c in charts]  # built by the escaping chart renderer
    return template.render(
        s=summary,
        charts=svgs,
        gallery=gallery,
        invalid=invalid,
        invalid_total=invalid_total,
        ci_methods=interval_methods(summary),
        n_records=n_records,
        region_notes=region_notes or [],
        display_only=DISPLAY_ONLY,
        csp=CSP,
        access_labels=ACCESS_LABELS,
    )


# --------------------------------------------------------------------------------------- Markdown


def interval_methods(summary: RunSummary) -> str:
    """The interval methods of a report's numbers, named once for the page (docs/running.md)."""
    methods = sorted({ev.overall.ci_method for ev in summary.evaluations if ev.overall.ci_method})
    return ", ".join(methods) if methods else "none"


def _md_metric(cell: Cell) -> str:
    ci = f" [{cell.ci[0]:.1f}, {cell.ci[1]:.1f}]" if cell.ci else ""
    return f"{cell.text}{ci}"


def _md_rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}%"


def _md_code(text: str) -> str:
    fence = "````" if "```" in text else "```"
    return f"{fence}text\n{text}\n{fence}"


def render_markdown(
    summary: RunSummary,
    charts: list[ChartSpec],
    chart_files: dict[str, str],
    gallery: list[tuple[GallerySection, list[GalleryEntry]]],
    invalid: list[SampleRecord],
    invalid_total: int,
    n_records: int,
) -> str:
    lines = _md_header(summary, n_records) + _md_headline(summary)
    lines += ["", "## Charts", "", "Bars: accuracy; black whiskers: 95% interval; dashed red mark: chance.", ""]
    for chart in charts:
        lines += [f"![{markdown_escape(chart.title)}]({chart_files[chart.chart_id]})", ""]
    lines += _md_slices(summary) + _md_gallery(gallery) + _md_invalid(invalid, invalid_total)
    lines += ["## Provenance", "", "| Key | Value |", "|---|---|"]
    lines += [f"| {markdown_escape(k)} | {markdown_escape(v)} |" for k, v in summary.provenance]
    return "\n".join(lines) + "\n"


_MD_TABLE_HEAD = "| {first} | Accuracy [95% CI] | Chance | n | Unparsed | Errors | Invalid |"
_MD_TABLE_RULE = "|---|---:|---:|---:|---:|---:|---:|"


def _md_row(label: str, c: Cell) -> str:
    return (
        f"| {markdown_escape(label)} | {_md_metric(c)} | {_md_rate(c.chance)} | {c.n} | "
        f"{_md_rate(c.unparsed_rate)} | {_md_rate(c.error_rate)} | "
        f"{c.invalid if c.invalid is not None else '–'} |"
    )


def _md_header(summary: RunSummary, n_records: int) -> list[str]:
    m = summary.model
    lines = [
        f"# cvbench report: {markdown_escape(m.display_name)}",
        "",
        f"- Model: `{m.model_id}` ({ACCESS_LABELS.get(m.access, markdown_escape(m.access))}"
        + (f", {m.params_b:g}B parameters" if m.params_b is not None else "")
        + ")",
        f"- Run: `{summary.run_name}`, status **{summary.status}**, {n_records} records",
    ]
    if summary.status != "complete":
        lines.append(f"- **Warning:** this run is {summary.status}; numbers cover only the finished samples.")
    return lines


def _md_headline(summary: RunSummary) -> list[str]:
    lines = [
        "",
        "## Headline numbers",
        "",
        (
            "Accuracy in %, with the 95% interval in brackets. Unparsed answers, model errors and invalid "
            "samples count as wrong and are also listed separately."
        ),
        "",
        f"95% intervals: {interval_methods(summary)} (docs/running.md).",
        "",
        _MD_TABLE_HEAD.format(first="Evaluation"),
        _MD_TABLE_RULE,
    ]
    return lines + [_md_row(ev.title, ev.overall) for ev in summary.evaluations]


def _md_slices(summary: RunSummary) -> list[str]:
    lines = ["## Every slice", ""]
    for ev in summary.evaluations:
        lines += [f"### {markdown_escape(ev.title)}", "", _MD_TABLE_HEAD.format(first="Slice"), _MD_TABLE_RULE]
        lines += [_md_row(label, c) for label, c in [("Overall", ev.overall)] + [(s.label, s.cell) for s in ev.slices]]
        lines.append("")
    return lines


def _md_gallery(gallery: list[tuple[GallerySection, list[GalleryEntry]]]) -> list[str]:
    lines = [
        "## Failure gallery",
        "",
        (
            "Failures (wrong, unparsed or errored answers), a few per slice, each shown once, with the images "
            "exactly as the model saw them."
        ),
        "",
    ]
    if not gallery:
        lines += ["No failures.", ""]
    for section, entries in gallery:
        lines += [f"### {markdown_escape(section.evaluation)} · {markdown_escape(section.label)}", ""]
        for e in entries:
            lines += _md_gallery_entry(e)
    return lines


def _md_gallery_entry(e: GalleryEntry) -> list[str]:
    r = e.record
    lines = [f"#### `{r.record_id}` ({e.kind})", ""]
    lines += [" ".join(f"![{img.label}]({img.src})" for img in e.images) or "_no images_", ""]
    if e.missing_images:
        lines += [f"_{e.missing_images} image(s) missing from the run directory._", ""]
    return lines + [
        "Prompt:",
        "",
        _md_code(r.prompt_text),
        "",
        "Raw response:",
        "",
        _md_code(r.response if r.response is not None else "(none)"),
        "",
        f"Parsed: **{markdown_escape(r.parsed or '–')}** ({markdown_escape(r.parse_status)}"
        + (f": {markdown_escape(r.parse_reason)}" if r.parse_reason else "")
        + f") · "
        f"Right answer: **{markdown_escape(r.answer or '–')}**"
        + (f" · Error: {markdown_escape(e.error)}" if e.error else ""),
        "",
    ]


def _md_invalid(invalid: list[SampleRecord], invalid_total: int) -> list[str]:
    lines = ["## Invalid samples", ""]
    if invalid_total == 0:
        return lines + ["None.", ""]
    lines += [
        f"{invalid_total} sample(s) could not be loaded or rendered (counted as wrong)"
        + (f"; the first {len(invalid)} are listed" if invalid_total > len(invalid) else "")
        + ":",
        "",
    ]
    lines += [f"- `{r.record_id}` ({markdown_escape(r.source)}): {markdown_escape(r.invalid or '')}" for r in invalid]
    return lines + [""]
