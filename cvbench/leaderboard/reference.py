"""The papers' reported numbers, shipped as package data (reference/reported_results.csv).

Columns: benchmark, setting, model, access, metric, value, source. Values are kept as the
exact strings of the CSV (the site shows "35.0" as "35.0"), and every row is validated: an
unknown benchmark, setting, metric or access is an error naming the file and line.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cvbench.core.types import CATEGORY_NAMES, CUE_CODES
from cvbench.reports.tables import (
    ORIGIN_REPORTED,
    Cell,
    Column,
    Row,
    slugify,
)

REFERENCE_COLUMNS: tuple[str, ...] = ("benchmark", "setting", "model", "access", "metric", "value", "source")

# the CSV's access vocabulary -> the site's access filter
ACCESS_FROM_REFERENCE: dict[str, str] = {
    "proprietary": "api",
    "open": "open",
    "native-region": "native",
    "human": "human",
    "baseline": "baseline",
}

SETTINGS: dict[str, tuple[str, ...]] = {"crossviewbench": ("all",), "mmvm": ("all", "12", "8", "4")}

_ARXIV_RE = re.compile(r"arXiv\s+(\d{4}\.\d{4,5})")
_PARAMS_RE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)B\b")


class ReferenceDataError(ValueError):
    pass


@dataclass(frozen=True)
class ReportedValue:
    benchmark: str
    setting: str
    model: str
    access: str  # as published in the CSV ("proprietary", "open", "native-region", "human")
    metric: str  # "overall", a category key, or a cue code
    value: str  # verbatim
    source: str
    line: int  # 1-based line in the CSV (header is line 1)

    @property
    def slice(self) -> str:
        """The results.json slice name of `metric` ("overall", "category=geometric", "cue=CL")."""
        if self.metric == "overall":
            return "overall"
        if self.benchmark == "crossviewbench":
            return f"category={self.metric}"
        return f"cue={self.metric}"

    @property
    def column_key(self) -> str:
        return f"{self.setting}/{self.slice}"


def shipped_reference_path() -> Path:
    return Path(str(resources.files("cvbench.leaderboard") / "reference" / "reported_results.csv"))


def source_url(source: str) -> str:
    """The paper's arXiv page when the source names an arXiv id, else ''."""
    m = _ARXIV_RE.search(source)
    return f"https://arxiv.org/abs/{m.group(1)}" if m else ""


def params_from_name(name: str) -> float | None:
    """Parameter count (billions) written in a model name: 'InternVL2.5-78B' -> 78, 'Qwen3-VL-235B-A22B' -> 235."""
    m = _PARAMS_RE.search(name)
    return float(m.group(1)) if m else None


def load_reported(path: str | Path | None = None) -> list[ReportedValue]:
    """Read and validate the reference CSV (the shipped one by default)."""
    csv_path = Path(path) if path is not None else shipped_reference_path()
    try:
        text = csv_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReferenceDataError(f"{csv_path}: reference data not found") from None
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != REFERENCE_COLUMNS:
        raise ReferenceDataError(f"{csv_path}:1: header must be {','.join(REFERENCE_COLUMNS)}, got {header}")
    values: list[ReportedValue] = []
    seen: dict[tuple[str, str, str, str], int] = {}
    for lineno, fields in enumerate(reader, start=2):
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(REFERENCE_COLUMNS):
            raise ReferenceDataError(
                f"{csv_path}:{lineno}: expected {len(REFERENCE_COLUMNS)} fields, got {len(fields)}"
            )
        benchmark, setting, model, access, metric, value, source = (f.strip() for f in fields)
        where = f"{csv_path}:{lineno}"
        if benchmark not in SETTINGS:
            raise ReferenceDataError(f"{where}: unknown benchmark {benchmark!r}")
        if setting not in SETTINGS[benchmark]:
            raise ReferenceDataError(f"{where}: unknown {benchmark} setting {setting!r}")
        allowed = ("overall", *CATEGORY_NAMES) if benchmark == "crossviewbench" else ("overall", *CUE_CODES)
        if metric not in allowed:
            raise ReferenceDataError(f"{where}: unknown {benchmark} metric {metric!r} (allowed: {', '.join(allowed)})")
        if access not in ACCESS_FROM_REFERENCE:
            raise ReferenceDataError(
                f"{where}: unknown access {access!r} (allowed: {', '.join(ACCESS_FROM_REFERENCE)})"
            )
        if not model:
            raise ReferenceDataError(f"{where}: empty model name")
        try:
            float(value)
        except ValueError:
            raise ReferenceDataError(f"{where}: value {value!r} is not a number") from None
        key = (benchmark, setting, model, metric)
        if key in seen:
            raise ReferenceDataError(
                f"{where}: duplicate of line {seen[key]} ({benchmark}, {setting}, {model}, {metric})"
            )
        seen[key] = lineno
        values.append(ReportedValue(benchmark, setting, model, access, metric, value, source, lineno))
    return values


def reported_rows(values: Iterable[ReportedValue], benchmark: str, columns: Iterable[Column]) -> list[Row]:
    """One row per reported model of `benchmark` with at least one value in `columns`."""
    wanted = {c.key for c in columns}
    by_model: dict[str, list[ReportedValue]] = {}
    for v in values:
        if v.benchmark == benchmark and v.column_key in wanted:
            by_model.setdefault(v.model, []).append(v)
    rows = []
    for model, vals in by_model.items():
        sources = sorted({v.source for v in vals})
        cells = {
            v.column_key: Cell(
                value=float(v.value),
                text=f"{float(v.value):.1f}",
                note=f"reported in {v.source} as {v.value}",
                as_published=v.value,
            )
            for v in vals
        }
        rows.append(
            Row(
                row_id=f"reported-{slugify(model)}",
                name=model,
                origin=ORIGIN_REPORTED,
                access=ACCESS_FROM_REFERENCE[vals[0].access],
                cells=cells,
                params_b=params_from_name(model),
                source="; ".join(sources),
                source_url=source_url(sources[0]),
                access_as_published=vals[0].access,
            )
        )
    return rows
