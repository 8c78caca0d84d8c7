"""Leaderboard-style tables: typed rows x columns of accuracy cells, built from runs.

The same `Table` value feeds the exports (CSV, JSON, LaTeX, Markdown), the per-run report and
the static leaderboard site, so a number is formatted in exactly one place.

Column layouts follow the papers: CrossViewBench reports Overall plus its 4 categories (and,
in a second table, the 17 task types); MMVM reports Overall/CL/RP at all, 12, 8 and 4
candidates (plus the 8 cues per setting).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cvbench.core.types import CATEGORY_NAMES, CUES, TASK_TYPES
from cvbench.reports.spec import RunSpec, differing_parts, run_spec
from cvbench.rundir.format import MetricSummary, RunData
from cvbench.rundir.results import evaluation_task
from cvbench.rundir.schema import Where, decode_object
from cvbench.scoring.metrics import DEFAULT_CI_METHOD

# Row origins: a run evaluated by cvbench, a number copied from a paper, or the chance level.
ORIGIN_REPRODUCED = "reproduced"
ORIGIN_REPORTED = "reported"
ORIGIN_CHANCE = "chance"

ACCESS_LABELS: dict[str, str] = {
    "api": "API",
    "open": "Open weights",
    "native": "Native region model",
    "baseline": "Baseline",
    "human": "Human",
    "chance": "Chance",
}

SIZE_BUCKETS: tuple[tuple[str, str, float, float], ...] = (
    ("le4", "≤ 4B", 0.0, 4.0),
    ("4-13", "4B – 13B", 4.0, 13.0),
    ("13-40", "13B – 40B", 13.0, 40.0),
    ("gt40", "> 40B", 40.0, math.inf),
)


def size_bucket(params_b: float | None) -> str:
    """The size-filter bucket of a parameter count in billions ("unknown" when not known)."""
    if params_b is None:
        return "unknown"
    for key, _, lo, hi in SIZE_BUCKETS:
        if lo < params_b <= hi or (lo == 0.0 and params_b <= hi):
            return key
    return "unknown"


@dataclass(frozen=True)
class Column:
    key: str  # "<setting>/<slice>", e.g. "all/overall", "12/cue=CL", "all/category=geometric"
    setting: str  # "all" | "12" | "8" | "4"
    slice: str  # "overall" or "<dim>=<label>" as in results.json
    label: str  # header text, e.g. "Overall", "CL", "Q7"
    title: str  # long description for the header tooltip
    group: str = ""  # header group shown above the label (MMVM: the candidate setting)


@dataclass(frozen=True)
class Cell:
    """One number. Percentages (0-100); `text` is what is displayed (reported values verbatim)."""

    value: float | None
    text: str
    ci: tuple[float, float] | None = None
    ci_method: str | None = None
    n: int | None = None
    correct: int | None = None
    chance: float | None = None
    unparsed_rate: float | None = None
    error_rate: float | None = None
    invalid: int | None = None
    note: str = ""  # e.g. the paper table a reported value comes from
    as_published: str = ""  # a reported value as the paper printed it (shown to one decimal like the rest)

    @property
    def ci_text(self) -> str:
        return "" if self.ci is None else f"[{self.ci[0]:.1f}, {self.ci[1]:.1f}]"

    @property
    def tooltip(self) -> str:
        parts = [f"{self.text}%"]
        if self.ci is not None:
            # the default method is named once per page; a cell only names a different one
            other = self.ci_method and self.ci_method != DEFAULT_CI_METHOD
            parts.append(f"95% CI {self.ci[0]:.1f}–{self.ci[1]:.1f}" + (f" ({self.ci_method})" if other else ""))
        else:
            parts.append("no interval published" if self.n is None else "no interval")
        if self.n is not None:
            parts.append(f"{self.correct}/{self.n} correct")
        if self.chance is not None:
            parts.append(f"chance {self.chance:.1f}")
        if self.note:
            parts.append(self.note)
        return "; ".join(parts)


@dataclass(frozen=True)
class Row:
    row_id: str  # unique within a table
    name: str  # model display name (model-provided text: always escaped)
    origin: str  # ORIGIN_*
    access: str  # api | open | native | baseline | human | chance
    cells: Mapping[str, Cell]  # column key -> cell
    params_b: float | None = None
    model_id: str = ""
    run_name: str = ""  # run directory name (reproduced rows)
    source: str = ""  # where the numbers come from (reported: the paper table)
    source_url: str = ""
    page: str = ""  # site-relative link to the run's model page (reproduced rows)
    access_as_published: str = ""  # the reference CSV's own access label (reported rows)
    # the run spec (reproduced rows): (part, text, emphasised) - emphasised where another row
    # of the same model differs in that part
    spec: tuple[tuple[str, str, bool], ...] = ()

    @property
    def spec_text(self) -> str:
        return " · ".join(text for _, text, _ in self.spec if text)

    ablation: str = ""  # row kind of an ablated run ("blind", "unmarked", ...; docs/ablations.md)

    @property
    def size(self) -> str:
        return size_bucket(self.params_b)

    @property
    def is_reference(self) -> bool:
        """Chance, human and baseline rows: shown beside the models, never ranked."""
        return self.origin == ORIGIN_CHANCE or self.access in ("human", "baseline") or bool(self.ablation)


@dataclass(frozen=True)
class TableLayout:
    layout_id: str
    title: str
    columns: tuple[Column, ...]
    latex_caption: str = ""


@dataclass(frozen=True)
class Table:
    table_id: str  # "<task>-<layout>", file stem of the downloads
    task: str
    benchmark: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    ranks: Mapping[str, int] = field(default_factory=dict)  # row_id -> overlap rank on the first column
    caption: str = ""


# --------------------------------------------------------------------------------------- layouts

MMVM_SETTINGS: tuple[str, ...] = ("all", "12", "8", "4")


def _setting_label(setting: str) -> str:
    return "All candidates" if setting == "all" else f"{setting} candidates"


def _crossviewbench_layouts() -> tuple[TableLayout, ...]:
    overall = Column("all/overall", "all", "overall", "Overall", "All questions (micro average)")
    categories = tuple(
        Column(f"all/category={key}", "all", f"category={key}", name, f"Category: {name}")
        for key, name in CATEGORY_NAMES.items()
    )
    types = tuple(
        Column(f"all/task_type={q}", "all", f"task_type={q}", q, f"{q}: {name} ({CATEGORY_NAMES[cat]})")
        for q, (name, cat) in TASK_TYPES.items()
    )
    return (
        TableLayout(
            "main",
            "Overall and categories",
            (overall, *categories),
            "CrossViewBench accuracy (\\%): overall and per category.",
        ),
        TableLayout("types", "Per task type", (overall, *types), "CrossViewBench accuracy (\\%) per task type."),
    )


def _mmvm_layouts() -> tuple[TableLayout, ...]:
    def col(setting: str, slice_: str, label: str, title: str) -> Column:
        return Column(
            f"{setting}/{slice_}",
            setting,
            slice_,
            label,
            f"{title}, {_setting_label(setting).lower()}",
            group=_setting_label(setting),
        )

    paper = tuple(
        c
        for s in MMVM_SETTINGS
        for c in (
            col(s, "overall", "Overall", "All questions"),
            col(s, "cue=CL", "CL", "Cue: Color"),
            col(s, "cue=RP", "RP", "Cue: Relative position in the scene"),
        )
    )
    layouts = [
        TableLayout(
            "paper",
            "Overall, colour (CL) and relative position (RP) by number of candidates",
            paper,
            "MMVM accuracy (\\%): overall, colour (CL) and relative position (RP) at all, 12, 8 "
            "and 4 candidate options.",
        )
    ]
    for s in MMVM_SETTINGS:
        cues = (
            col(s, "overall", "Overall", "All questions"),
            *(col(s, f"cue={code}", code, f"Cue: {name}") for code, name in CUES.values()),
        )
        layouts.append(
            TableLayout(
                f"cues-{s}",
                f"All cues, {_setting_label(s).lower()}",
                cues,
                f"MMVM accuracy (\\%) per matching cue, {_setting_label(s).lower()}.",
            )
        )
    return tuple(layouts)


LAYOUTS: dict[str, tuple[TableLayout, ...]] = {
    "crossviewbench": _crossviewbench_layouts(),
    "mmvm": _mmvm_layouts(),
}

BENCHMARK_NAMES: dict[str, str] = {"crossviewbench": "CrossViewBench", "mmvm": "MMVM"}


def layouts_for(benchmark: str) -> tuple[TableLayout, ...]:
    try:
        return LAYOUTS[benchmark]
    except KeyError:
        raise ValueError(f"unknown benchmark {benchmark!r} (known: {', '.join(LAYOUTS)})") from None


# --------------------------------------------------------------------------------------- cells


def format_percent(fraction: float) -> str:
    return f"{100.0 * fraction:.1f}"


def metric_cell(metric: MetricSummary | Mapping[str, Any], where: str = "metric") -> Cell:
    """A cell from one results.json METRIC (fractions -> percentages); an empty slice (n = 0, accuracy
    null) gives a cell without a value or interval."""
    m = metric if isinstance(metric, MetricSummary) else decode_object(MetricSummary, metric, Where(Path(where)))
    if m.accuracy is None and m.n == 0:
        return Cell(value=None, text="–", n=0, correct=0)
    if m.accuracy is None:
        raise ValueError(f"{where}: METRIC without a numeric 'accuracy'")
    return Cell(
        value=100.0 * m.accuracy,
        text=format_percent(m.accuracy),
        ci=None if m.ci is None else (100.0 * m.ci[0], 100.0 * m.ci[1]),
        ci_method=m.ci_method,
        n=m.n,
        correct=m.correct,
        chance=_pct_or_none(m.chance),
        unparsed_rate=_pct_or_none(m.unparsed_rate),
        error_rate=_pct_or_none(m.error_rate),
        invalid=m.invalid,
    )


def chance_cell(chance_percent: float) -> Cell:
    return Cell(value=chance_percent, text=f"{chance_percent:.1f}")


def _pct_or_none(v: float | None) -> float | None:
    return None if v is None else 100.0 * v


# --------------------------------------------------------------------------------------- runs -> rows


@dataclass(frozen=True)
class RunModel:
    """The model block of results.json, validated."""

    model_id: str
    display_name: str
    access: str
    params_b: float | None
    ablation: str = ""  # the row kind of an ablated run ("blind"), "" for a normal run


def run_model(run: RunData) -> RunModel:
    model = run.results.model
    ablation = model.ablation  # {"kind", "row_kind"} in an ablated run (docs/ablations.md)
    return RunModel(
        model_id=model.id,
        display_name=model.name,
        access=model.access or "unknown",
        params_b=model.params_b,
        ablation=str(ablation.get("row_kind") or "") if ablation else "",
    )


def run_tasks(run: RunData) -> dict[str, str]:
    """task name -> benchmark, for every evaluation in the run (file order)."""
    tasks: dict[str, str] = {}
    for key, ev in run.results.evaluations.items():
        task, _ = evaluation_task(key, ev)
        tasks.setdefault(task, ev.benchmark or "")
    return tasks


def run_row(run: RunData, task: str, columns: Iterable[Column], *, row_id: str, page: str = "") -> Row:
    model = run_model(run)
    spec = run_spec(run.config, [task])
    cells: dict[str, Cell] = {}
    for column in columns:
        metric = run.results.metric(task, column.setting, column.slice)
        if metric is not None:
            cells[column.key] = metric_cell(
                metric, f"{run.path / 'results.json'}: {task}@{column.setting} {column.slice}"
            )
    return Row(
        row_id=row_id,
        name=model.display_name + (f" ({model.ablation})" if model.ablation else ""),
        origin=ORIGIN_REPRODUCED,
        access=model.access,
        cells=cells,
        params_b=model.params_b,
        model_id=model.model_id,
        run_name=run.path.name,
        page=page,
        source=f"reproduced by cvbench ({run.path.name}: {spec.text})",
        spec=tuple((p, t, False) for p, t in spec.parts),
        ablation=model.ablation,
    )


def chance_row(rows: Iterable[Row], columns: Iterable[Column], row_id: str = "chance") -> Row | None:
    """Chance per column, from the reproduced rows' METRIC chance (the first run that has it).

    Runs of one task share the questions, so their chance levels agree; a reported row never
    defines chance."""
    cells: dict[str, Cell] = {}
    reproduced = [r for r in rows if r.origin == ORIGIN_REPRODUCED]
    for column in columns:
        for row in reproduced:
            cell = row.cells.get(column.key)
            if cell is not None and cell.chance is not None:
                cells[column.key] = chance_cell(cell.chance)
                break
    if not cells:
        return None
    return Row(
        row_id=row_id,
        name="Chance",
        origin=ORIGIN_CHANCE,
        access="chance",
        cells=cells,
        source="mean of 1 / number of options over the questions of each column",
    )


# --------------------------------------------------------------------------------------- ranking


def overlap_ranks(intervals: Mapping[str, tuple[float, float]]) -> dict[str, int]:
    """rank = 1 + the number of other entries whose interval lies entirely above this one's
    (their lower bound > this upper bound). Entries whose intervals overlap share a place."""
    return {
        key: 1 + sum(1 for other, (lo, _) in intervals.items() if other != key and lo > hi)
        for key, (_, hi) in intervals.items()
    }


def rank_rows(rows: Iterable[Row], column_key: str) -> dict[str, int]:
    """Overlap ranks on one column over the non-reference rows that have an interval there."""
    intervals = {
        r.row_id: r.cells[column_key].ci
        for r in rows
        if not r.is_reference and column_key in r.cells and r.cells[column_key].ci is not None
    }
    return overlap_ranks({k: v for k, v in intervals.items() if v is not None})


def make_table(task: str, benchmark: str, layout: TableLayout, rows: list[Row], *, with_chance: bool = True) -> Table:
    all_rows = list(rows)
    if with_chance:
        chance = chance_row(all_rows, layout.columns)
        if chance is not None:
            all_rows.append(chance)
    all_rows = mark_differing_specs(all_rows)
    ranks = rank_rows(all_rows, layout.columns[0].key)
    bench_name = BENCHMARK_NAMES.get(benchmark, benchmark)
    title = layout.title if task == benchmark else f"{layout.title} ({task})"
    caption = layout.latex_caption if task == benchmark else f"{layout.latex_caption} Task: {task}."
    return Table(
        table_id=f"{task}-{layout.layout_id}",
        task=task,
        benchmark=benchmark,
        title=f"{bench_name}: {title}",
        columns=layout.columns,
        rows=tuple(all_rows),
        ranks=ranks,
        caption=caption,
    )


def mark_differing_specs(rows: Sequence[Row]) -> list[Row]:
    """Rows with the spec parts emphasised that differ between rows of the same model."""
    specs = {
        r.row_id: (r.model_id, RunSpec(r.model_id, tuple((p, t) for p, t, _ in r.spec)))
        for r in rows
        if r.origin == ORIGIN_REPRODUCED and r.spec
    }
    marks = differing_parts(specs)
    return [
        replace(r, spec=tuple((p, t, p in marks[r.row_id]) for p, t, _ in r.spec)) if r.row_id in marks else r
        for r in rows
    ]


def sort_rows(rows: Iterable[Row], column_key: str) -> list[Row]:
    """Best first on one column; rows without a value there last (stable otherwise)."""

    def key(row: Row) -> tuple[bool, float]:
        cell = row.cells.get(column_key)
        if cell is None or cell.value is None:
            return (True, 0.0)
        return (False, -cell.value)

    return sorted(rows, key=key)


def sorted_table(table: Table) -> Table:
    """The table with its rows sorted on its first column, best first."""
    return replace(table, rows=tuple(sort_rows(table.rows, table.columns[0].key)))


def dedupe_runs(runs: Sequence[RunData]) -> tuple[list[RunData], list[str]]:
    """The runs with exact duplicates dropped (the same folder twice, or a copy: same identity
    and the same results), and a warning for each one dropped."""
    kept: list[RunData] = []
    warnings: list[str] = []
    for run in runs:
        twin = next((k for k in kept if _same_run(k, run)), None)
        if twin is None:
            kept.append(run)
        else:
            warnings.append(f"{run.path} is the same run as {twin.path} (same configuration and results): shown once")
    return kept, warnings


def _same_run(a: RunData, b: RunData) -> bool:
    if a.path.resolve() == b.path.resolve():
        return True
    return a.config.identity() == b.config.identity() and a.results.evaluations == b.results.evaluations


def tables_for_runs(runs: list[RunData]) -> list[Table]:
    """Every table of every task present in the runs, one row per run (exports, reports);
    an exact duplicate run gives one row (see dedupe_runs)."""
    runs, _ = dedupe_runs(runs)
    by_task: dict[tuple[str, str], list[RunData]] = {}
    for run in runs:
        for task, benchmark in run_tasks(run).items():
            by_task.setdefault((task, benchmark), []).append(run)
    tables = []
    for (task, benchmark), task_runs in by_task.items():
        if benchmark not in LAYOUTS:
            continue
        for layout in layouts_for(benchmark):
            rows = [run_row(run, task, layout.columns, row_id=f"run{i}") for i, run in enumerate(task_runs)]
            if any(row.cells for row in rows):
                tables.append(sorted_table(make_table(task, benchmark, layout, rows)))
    return tables


_SLUG_RE = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    return _SLUG_RE.sub("-", text.lower()).strip("-") or "x"
