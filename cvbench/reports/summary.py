"""What a run says, as typed values: per-evaluation metrics, charts, failure gallery, provenance.

Pure functions over `RunData` / `SampleRecord`s; shared by the per-run report and the
leaderboard's model pages.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cvbench.reports.charts import Bar
from cvbench.reports.slice_names import setting_sort_key, slice_label, slice_sort_key
from cvbench.reports.spec import RunSpec, run_spec
from cvbench.reports.tables import (
    BENCHMARK_NAMES,
    Cell,
    RunModel,
    metric_cell,
    run_model,
)
from cvbench.rundir.format import RunData, SampleRecord
from cvbench.rundir.portable import portable_config
from cvbench.rundir.results import evaluation_task


@dataclass(frozen=True)
class SliceResult:
    slice: str  # "overall" or "<dim>=<label>"
    label: str
    cell: Cell


@dataclass(frozen=True)
class EvaluationSummary:
    key: str  # "<task>@<setting>"
    task: str
    benchmark: str
    setting: str
    overall: Cell
    slices: tuple[SliceResult, ...]  # sorted as in the papers

    @property
    def title(self) -> str:
        bench = BENCHMARK_NAMES.get(self.benchmark, self.benchmark)
        task = "" if self.task == self.benchmark else f" [{self.task}]"
        setting = (
            ""
            if self.setting == "all" and self.benchmark != "mmvm"
            else (", all candidates" if self.setting == "all" else f", {self.setting} candidates")
        )
        return f"{bench}{task}{setting}"

    def dimensions(self) -> list[str]:
        dims: list[str] = []
        for s in self.slices:
            dim = s.slice.partition("=")[0]
            if dim not in dims:
                dims.append(dim)
        return dims


@dataclass(frozen=True)
class RunSummary:
    run_name: str
    model: RunModel
    status: str
    spec: RunSpec  # what the run is (mode, style, settings, image policy, protocol)
    # no overall across evaluations: each benchmark and candidate setting has its own
    evaluations: tuple[EvaluationSummary, ...]
    provenance: tuple[tuple[str, str], ...]


def summarize_run(run: RunData) -> RunSummary:
    evaluations = []
    where = run.path / "results.json"
    for key, ev in run.results.evaluations.items():
        slices = [
            SliceResult(name, slice_label(name), metric_cell(m, f"{where}: evaluations.{key}.slices.{name}"))
            for name, m in (ev.slices or {}).items()
        ]
        slices.sort(key=lambda s: slice_sort_key(s.slice))
        task, setting = evaluation_task(key, ev)
        evaluations.append(
            EvaluationSummary(
                key=key,
                task=task,
                benchmark=ev.benchmark or "",
                setting=setting,
                overall=metric_cell(ev.overall, f"{where}: evaluations.{key}.overall"),
                slices=tuple(slices),
            )
        )
    evaluations.sort(key=lambda e: (e.benchmark, e.task, -setting_sort_key(e.setting)))
    return RunSummary(
        run_name=run.path.name,
        model=run_model(run),
        status=run.results.status,
        spec=run_spec(run.config),
        evaluations=tuple(evaluations),
        provenance=tuple(flatten_provenance(portable_config(run.config))),
    )


# --------------------------------------------------------------------------------------- charts


@dataclass(frozen=True)
class ChartSpec:
    chart_id: str
    title: str
    bars: tuple[Bar, ...]


def _bar(label: str, cell: Cell) -> Bar:
    note = "" if cell.n is None else f"{cell.correct}/{cell.n} correct"
    return Bar(label=label, value=cell.value or 0.0, ci=cell.ci, chance=cell.chance, note=note)


def charts_for(summary: RunSummary) -> list[ChartSpec]:
    """Per evaluation, one chart per slice dimension (Overall first); per multi-setting task,
    Overall by candidate setting."""
    charts: list[ChartSpec] = []
    by_task: dict[str, list[EvaluationSummary]] = {}
    for ev in summary.evaluations:
        by_task.setdefault(ev.task, []).append(ev)
    for task, evs in by_task.items():
        if len(evs) > 1:
            ordered = sorted(evs, key=lambda e: -setting_sort_key(e.setting))
            charts.append(
                ChartSpec(
                    f"{task}-settings",
                    f"{_bench_title(evs[0])}: overall by number of candidates",
                    tuple(
                        _bar("all candidates" if e.setting == "all" else f"{e.setting} candidates", e.overall)
                        for e in ordered
                    ),
                )
            )
        for ev in evs:
            for dim in ev.dimensions():
                bars = [_bar("Overall", ev.overall)] + [
                    _bar(s.label, s.cell)
                    for s in ev.slices
                    if s.slice.partition("=")[0] == dim and s.cell.value is not None
                ]  # an empty slice has no bar
                charts.append(
                    ChartSpec(f"{ev.key}-{dim}".replace("@", "-at-"), f"{ev.title}: by {_dim_name(dim)}", tuple(bars))
                )
    return charts


def _bench_title(ev: EvaluationSummary) -> str:
    bench = BENCHMARK_NAMES.get(ev.benchmark, ev.benchmark)
    return bench if ev.task == ev.benchmark else f"{bench} [{ev.task}]"


def _dim_name(dim: str) -> str:
    return {
        "category": "category",
        "task_type": "task type",
        "cue": "matching cue",
        "bucket": "number of candidates in the question",
    }.get(dim, dim)


# --------------------------------------------------------------------------------------- failures


def failure_kind(record: SampleRecord) -> str | None:
    """'wrong' | 'unparsed' | 'error' for a failed answer; None when correct or invalid."""
    if record.correct or record.invalid is not None or record.parse_status == "invalid":
        return None
    if record.parse_status == "error" or record.error is not None:
        return "error"
    if record.parse_status == "unparsed":
        return "unparsed"
    return "wrong"


@dataclass(frozen=True)
class GallerySection:
    evaluation: str  # "<task>@<setting>"
    slice: str
    label: str
    records: tuple[SampleRecord, ...]


def select_failures(
    records: Iterable[SampleRecord], *, per_slice: int = 3, max_items: int = 60
) -> list[GallerySection]:
    """Up to `per_slice` failures for each (evaluation, slice), in file order, each record shown
    once, at most `max_items` in all. Deterministic: no sampling."""
    by_slice: dict[tuple[str, str], list[SampleRecord]] = {}
    for record in records:
        if failure_kind(record) is None:
            continue
        evaluation = f"{record.task}@{record.setting}"
        for dim, labels in sorted(record.slices.items()):
            for label in labels:
                by_slice.setdefault((evaluation, f"{dim}={label}"), []).append(record)
    shown: set[str] = set()
    sections: list[GallerySection] = []
    total = 0
    for (evaluation, slice_), recs in sorted(
        by_slice.items(),
        key=lambda kv: (
            kv[0][0].partition("@")[0],
            -setting_sort_key(kv[0][0].partition("@")[2]),
            slice_sort_key(kv[0][1]),
        ),
    ):
        picked: list[SampleRecord] = []
        for r in recs:
            if total >= max_items or len(picked) >= per_slice:
                break
            if r.record_id in shown:
                continue
            picked.append(r)
            shown.add(r.record_id)
            total += 1
        if picked:
            sections.append(GallerySection(evaluation, slice_, slice_label(slice_), tuple(picked)))
    return sections


def invalid_records(records: Iterable[SampleRecord], limit: int = 50) -> tuple[list[SampleRecord], int]:
    """The first `limit` invalid records and how many there are in all."""
    found: list[SampleRecord] = []
    count = 0
    for r in records:
        if r.invalid is not None or r.parse_status == "invalid":
            count += 1
            if len(found) < limit:
                found.append(r)
    return found, count


# --------------------------------------------------------------------------------------- provenance


def flatten_provenance(config: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """config.json as (dotted key, value) pairs in file order; lists of scalars joined."""
    items: list[tuple[str, str]] = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            items.extend(flatten_provenance(value, f"{name}."))
        elif isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
            items.append((name, ", ".join("null" if v is None else str(v) for v in value)))
        elif isinstance(value, (dict, list)):
            items.append((name, json.dumps(value, ensure_ascii=False, sort_keys=True)))
        else:
            items.append((name, "null" if value is None else str(value)))
    return items


def record_status(record: SampleRecord) -> str:
    if record.invalid is not None or record.parse_status == "invalid":
        return "invalid"
    if record.correct:
        return "correct"
    return failure_kind(record) or "wrong"


def record_slice_names(record: SampleRecord) -> list[str]:
    return [f"{dim}={label}" for dim, labels in sorted(record.slices.items()) for label in labels]


def error_text(record: SampleRecord) -> str:
    """'server (HTTP 503): upstream overloaded' for an errored record, '' otherwise."""
    if not record.error:
        return ""
    text = str(record.error.get("kind") or "error")
    if record.error.get("status") is not None:
        text += f" (HTTP {record.error['status']})"
    if record.error.get("message"):
        text += f": {record.error['message']}"
    return text
