"""`cvbench leaderboard build`: a static site from run directories and the papers' reported rows.

    SITE/index.html                   overview: every model on every benchmark's headline number
    SITE/crossviewbench.html          Overall + 4 categories, and the 17 task types
    SITE/mmvm.html                    Overall/CL/RP at all, 12, 8, 4 candidates, and the 8 cues per setting
    SITE/models/<slug>.html           one page per run: every slice, provenance, sample browser
    SITE/downloads/<table>.{csv,json,tex}, SITE/downloads/all.{csv,json,tex}
    SITE/img/<sha[:2]>/<sha>.<ext>    only the images the sample browsers show, content-addressed
                                      (--images preview: <sha>.preview-<size>-q<quality>.jpg,
                                      a downscaled JPEG of the image with that sha256)
    SITE/static/site.css, site.js

Works from file:// and any static host: data is rendered server-side, and the sample browser
reads its records from a `<script type="application/json">` block (no XHR).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from markupsafe import Markup

from cvbench.leaderboard.previews import PreviewSettings
from cvbench.leaderboard.reference import ReportedValue, load_reported, reported_rows
from cvbench.leaderboard.site_samples import (
    DEFAULT_PREVIEW,
    SiteError,
    copy_site_images,
    require_image_mode,
    sample_payload,
    select_site_records,
    write_region_drawings,
)
from cvbench.reports.exports import tables_to_csv, tables_to_json, tables_to_latex
from cvbench.reports.plots import (
    Plot,
    candidates_plot,
    profile_plot,
    reported_vs_reproduced_plot,
    sensitivity_plot,
)
from cvbench.reports.summary import (
    RunSummary,
    summarize_run,
)
from cvbench.reports.tables import (
    ACCESS_LABELS,
    BENCHMARK_NAMES,
    ORIGIN_REPORTED,
    SIZE_BUCKETS,
    Column,
    Row,
    Table,
    dedupe_runs,
    layouts_for,
    make_table,
    mark_differing_specs,
    rank_rows,
    run_model,
    run_row,
    run_tasks,
    slugify,
    sorted_table,
)
from cvbench.reports.templating import CSP, environment
from cvbench.rundir.format import RunData, find_run_dirs, load_run
from cvbench.rundir.portable import data_root, portable_path

SITE_BENCHMARKS: tuple[str, ...] = ("crossviewbench", "mmvm")
STATIC_FILES: tuple[str, ...] = ("site.css", "site.js")
FILTER_ACCESS: tuple[tuple[str, str], ...] = (
    ("api", "API"),
    ("open", "Open weights"),
    ("native", "Native region model"),
    ("baseline", "Baseline"),
    ("human", "Human"),
)


@dataclass(frozen=True)
class SiteRun:
    run: RunData
    slug: str
    summary: RunSummary

    @property
    def page(self) -> str:
        return f"models/{self.slug}.html"


@dataclass(frozen=True)
class BenchmarkSection:
    task: str
    tables: tuple[Table, ...]
    plots: tuple[Plot, ...] = ()


def section_plots(benchmark: str, task: str, tables: Sequence[Table]) -> tuple[Plot, ...]:
    """The plots of one task's tables: candidates (MMVM), profile, prompt sensitivity, and the
    papers' numbers against cvbench's intervals (official task only)."""
    by_layout = {t.table_id.removeprefix(f"{task}-"): t for t in tables}
    made: list[Plot | None] = []
    main = by_layout.get("paper" if benchmark == "mmvm" else "main")
    if benchmark == "mmvm" and main is not None:
        made.append(candidates_plot(main))
    profile = by_layout.get("cues-all" if benchmark == "mmvm" else "main")
    if profile is not None:
        made.append(profile_plot(profile, "cue" if benchmark == "mmvm" else "category"))
    if main is not None:
        made.append(sensitivity_plot(main))
        if task == benchmark:
            made.append(reported_vs_reproduced_plot(main))
    return tuple(p for p in made if p is not None)


@dataclass(frozen=True)
class SiteBuild:
    out: Path
    pages: int
    tables: int
    runs: int
    reported_values: int
    images: int
    samples: int
    bytes: int
    warnings: tuple[str, ...] = ()


def json_block(data: Any) -> Markup:
    """JSON safe to place inside <script type="application/json">: no '<', '>' or '&' can end the block."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=False)
    text = (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
    return Markup(text)


def _unique_slugs(runs: Sequence[RunData]) -> list[str]:
    slugs: list[str] = []
    for run in runs:
        model = run_model(run)
        base = slugify(f"{model.display_name}-{run.path.name}")[:80]
        slug, k = base, 2
        while slug in slugs:
            slug, k = f"{base}-{k}", k + 1
        slugs.append(slug)
    return slugs


def benchmark_sections(
    site_runs: Sequence[SiteRun], reported: Sequence[ReportedValue], benchmark: str
) -> list[BenchmarkSection]:
    """Per task of `benchmark` (the official one first, then e.g. synthetic ones), its tables.

    Reported rows go only beside the official task: a paper's number is never put next to a
    run on a different question set."""
    tasks: dict[str, list[SiteRun]] = {benchmark: []}
    for sr in site_runs:
        for task, bench in run_tasks(sr.run).items():
            if bench == benchmark:
                tasks.setdefault(task, []).append(sr)
    sections = []
    for task, runs in tasks.items():
        tables = []
        for layout in layouts_for(benchmark):
            rows = [run_row(sr.run, task, layout.columns, row_id=f"run-{sr.slug}", page=sr.page) for sr in runs]
            rows = [r for r in rows if r.cells]
            if task == benchmark:
                rows += reported_rows(reported, benchmark, layout.columns)
            if has_content(rows, layout.columns):
                tables.append(sorted_table(make_table(task, benchmark, layout, rows)))
        if tables:
            sections.append(BenchmarkSection(task, tuple(tables), section_plots(benchmark, task, tables)))
    return sections


def has_content(rows: Sequence[Row], columns: Sequence[Column]) -> bool:
    """A table is shown when some row has a number beyond its first column (a per-type table
    that only repeats the papers' Overall is all dashes otherwise)."""
    rest = columns[1:] if len(columns) > 1 else columns
    return any(row.cells.get(c.key) is not None and row.cells[c.key].value is not None for row in rows for c in rest)


OVERVIEW_TITLES = {
    "official": ("overview", "Headline numbers: the benchmarks' own questions"),
    "other": ("overview-other", "Headline numbers: other question sets (synthetic and custom tasks)"),
}


def overview_tables(sections_by_benchmark: dict[str, list[BenchmarkSection]]) -> list[Table]:
    """Headline numbers side by side: one table for the benchmarks' own question sets (with the
    papers' reported numbers) and one for other question sets, so a paper's number and a run on
    different questions never share a sorted table or a rank."""
    tables = []
    for kind, (table_id, title) in OVERVIEW_TITLES.items():
        picked = {
            b: [s for s in sections if (s.task == b) == (kind == "official")]
            for b, sections in sections_by_benchmark.items()
        }
        table = _overview_table(picked, table_id, title)
        if table is not None:
            tables.append(table)
    return tables


def _overview_table(
    sections_by_benchmark: dict[str, list[BenchmarkSection]], table_id: str, title: str
) -> Table | None:
    columns: list[Column] = []
    merged: dict[str, dict[str, Any]] = {}
    for benchmark, sections in sections_by_benchmark.items():
        for section in sections:
            main = section.tables[0]
            wanted = [c for c in main.columns if c.slice == "overall"][: 4 if benchmark == "mmvm" else 1]
            prefix = BENCHMARK_NAMES.get(benchmark, benchmark) + (
                "" if section.task == benchmark else f" [{section.task}]"
            )
            for c in wanted:
                key = f"{section.task}:{c.key}"
                label = "Overall" if benchmark != "mmvm" else ("all" if c.setting == "all" else c.setting)
                columns.append(Column(key, c.setting, c.slice, label, f"{prefix}: {c.title}", group=prefix))
                for row in main.rows:
                    if c.key not in row.cells:
                        continue
                    ident = row.row_id if row.origin != ORIGIN_REPORTED else f"reported-{slugify(row.name)}"
                    if row.origin == "chance":
                        ident = f"chance-{section.task}"
                    entry = merged.setdefault(ident, {"row": row, "cells": {}, "sources": []})
                    entry["cells"][key] = row.cells[c.key]
                    if row.source and row.source not in entry["sources"]:
                        entry["sources"].append(row.source)
    if not columns:
        return None
    # a reported model quoted from two papers keeps both sources (each cell's tooltip names its own)
    rows = [
        replace(e["row"], row_id=ident, cells=e["cells"], source="; ".join(e["sources"])) for ident, e in merged.items()
    ]
    chance = [r for r in rows if r.origin == "chance"]
    if len(chance) > 1:  # one chance row: the question sets' chance levels side by side
        cells = {k: v for r in chance for k, v in r.cells.items()}
        rows = [r for r in rows if r.origin != "chance"] + [replace(chance[0], row_id="chance", cells=cells)]
    rows = mark_differing_specs(rows)
    table = Table(
        table_id=table_id,
        task="overview",
        benchmark="all",
        title=title,
        columns=tuple(columns),
        rows=tuple(rows),
        ranks=rank_rows(rows, columns[0].key),
        caption=f"{title} (accuracy, \\%).",
    )
    return sorted_table(table)


# --------------------------------------------------------------------------------------- build


def _write(path: Path, text: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    path.write_bytes(data)
    return len(data)


def _copy_static(out: Path) -> None:
    static = resources.files("cvbench.leaderboard") / "static"
    (out / "static").mkdir(parents=True, exist_ok=True)
    for name in STATIC_FILES:
        (out / "static" / name).write_bytes((static / name).read_bytes())


def _downloads(tables: Sequence[Table]) -> dict[str, dict[str, str]]:
    return {
        t.table_id: {
            "csv": f"downloads/{t.table_id}.csv",
            "json": f"downloads/{t.table_id}.json",
            "tex": f"downloads/{t.table_id}.tex",
        }
        for t in tables
    }


def build_site(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    *,
    reported: str = "shipped",
    title: str = "cvbench leaderboard",
    samples_per_evaluation: int = 200,
    seed: int = 0,
    images: str = "preview",
    preview: PreviewSettings = DEFAULT_PREVIEW,
) -> SiteBuild:
    """Build the static site into `out`. `reported`: "shipped" (the package's reference CSV),
    "none", or a path to a CSV in the same format. `images`: what the sample browsers show
    (see `copy_site_images`)."""
    require_image_mode(images)
    out = Path(out)
    # a folder holding runs below it (the default layout runs/<model>/<tasks>/) stands for them all
    runs, warnings = dedupe_runs([load_run(d) for d in find_run_dirs([Path(d) for d in run_dirs])])
    reported_values = _reported_values(reported)
    if not runs and not reported_values:
        raise SiteError("nothing to show: no run directories and --reported none")
    site_runs = [SiteRun(run, slug, summarize_run(run)) for run, slug in zip(runs, _unique_slugs(runs))]
    out.mkdir(parents=True, exist_ok=True)
    _copy_static(out)
    pages = _Pages(out, title)

    sections = {b: benchmark_sections(site_runs, reported_values, b) for b in SITE_BENCHMARKS}
    all_tables = [t for b in SITE_BENCHMARKS for s in sections[b] for t in s.tables]
    overviews = overview_tables(sections)
    download_tables = overviews + all_tables
    downloads = pages.write_downloads(download_tables, all_tables)
    pages.render(
        "index.html",
        "index.html.j2",
        root="",
        page_id="index",
        overviews=overviews,
        downloads=downloads,
        runs=site_runs,
        sections=sections,
        n_reported=len(reported_values),
    )
    for benchmark in SITE_BENCHMARKS:
        pages.render(
            f"{benchmark}.html",
            "benchmark.html.j2",
            root="",
            page_id=benchmark,
            benchmark=benchmark,
            sections=sections[benchmark],
            downloads=downloads,
        )

    n_images = samples = 0
    for sr in site_runs:
        written, shown, notes = _write_model_page(pages, sr, seed, samples_per_evaluation, images, preview)
        n_images += written
        samples += shown
        warnings += [f"{sr.run.path}: {n}" for n in notes]
    image_bytes = (
        sum(p.stat().st_size for p in (out / "img").rglob("*") if p.is_file()) if (out / "img").exists() else 0
    )
    return SiteBuild(
        out=out,
        pages=pages.count,
        tables=len(download_tables),
        runs=len(site_runs),
        reported_values=len(reported_values),
        images=n_images,
        samples=samples,
        bytes=pages.bytes + image_bytes,
        warnings=tuple(warnings),
    )


def _reported_values(reported: str) -> list[ReportedValue]:
    if reported == "shipped":
        return load_reported()
    if reported == "none":
        return []
    return load_reported(Path(reported))


class _Pages:
    """The site's text files as they are written: pages rendered from the templates with the values
    every page shares, and the downloads; counts pages and bytes."""

    def __init__(self, out: Path, title: str) -> None:
        self.out = out
        self.env = environment("cvbench.leaderboard")
        self.common = {
            "csp": CSP,
            "site_title": title,
            "access_labels": ACCESS_LABELS,
            "filter_access": FILTER_ACCESS,
            "size_buckets": SIZE_BUCKETS,
            "benchmark_names": BENCHMARK_NAMES,
        }
        self.count = 0
        self.bytes = 0

    def render(self, path: str, template: str, **values: Any) -> None:
        self.bytes += _write(self.out / path, self.env.get_template(template).render(**self.common, **values))
        self.count += 1

    def write_downloads(self, download_tables: list[Table], all_tables: list[Table]) -> dict[str, dict[str, str]]:
        folder = self.out / "downloads"
        for table in download_tables:
            self.bytes += _write(folder / f"{table.table_id}.csv", tables_to_csv([table]))
            self.bytes += _write(folder / f"{table.table_id}.json", tables_to_json([table]))
            self.bytes += _write(folder / f"{table.table_id}.tex", tables_to_latex([table]))
        self.bytes += _write(folder / "all.csv", tables_to_csv(all_tables))
        self.bytes += _write(folder / "all.json", tables_to_json(all_tables))
        self.bytes += _write(folder / "all.tex", tables_to_latex(all_tables))
        return _downloads(download_tables)


def _write_model_page(
    pages: _Pages, sr: SiteRun, seed: int, per_evaluation: int, images: str, preview: PreviewSettings
) -> tuple[int, int, list[str]]:
    """One run's page with its sample browser: (images written, records shown, notes)."""
    root = data_root(sr.run.config)
    records = [replace(r, source=portable_path(r.source, root)) for r in sr.run.records()]
    shown = select_site_records(records, run_name=sr.run.path.name, seed=seed, per_evaluation=per_evaluation)
    image_paths, written = copy_site_images(sr.run, shown, pages.out, images, preview)
    regions, notes = write_region_drawings(sr.run, shown, pages.out, images, preview)
    payload = sample_payload(shown, image_paths, len(records), prefix="../", image_mode=images, regions=regions)
    pages.render(
        sr.page,
        "model.html.j2",
        root="../",
        page_id="model",
        r=sr,
        s=sr.summary,
        samples=json_block(payload),
        n_shown=len(shown),
        n_records=len(records),
        per_evaluation=per_evaluation,
    )
    return written, len(shown), notes
