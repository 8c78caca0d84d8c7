"""Per-run reports (Markdown / self-contained HTML) and table exports (CSV, JSON, LaTeX, Markdown).

See docs/reports.md.
"""

from __future__ import annotations

from cvbench.reports.exports import EXPORT_FORMATS, render
from cvbench.reports.report import ReportFiles, build_report
from cvbench.reports.tables import (
    Cell,
    Column,
    Row,
    Table,
    overlap_ranks,
    tables_for_runs,
)

__all__ = [
    "EXPORT_FORMATS",
    "Cell",
    "Column",
    "ReportFiles",
    "Row",
    "Table",
    "build_report",
    "overlap_ranks",
    "render",
    "tables_for_runs",
]
