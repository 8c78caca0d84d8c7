"""Table renderers: CSV (long format), JSON, LaTeX (booktabs, laid out like the papers) and Markdown.

All functions are pure: `Table` values in, text out.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any, Literal

from cvbench.reports.tables import ACCESS_LABELS, Cell, Column, Row, Table

CiStyle = Literal["pm", "brackets", "none"]
EXPORT_FORMATS: tuple[str, ...] = ("csv", "json", "latex", "markdown")
CI_STYLES: tuple[str, ...] = ("pm", "brackets", "none")
TABLE_SCHEMA = "cvbench.tables/1"

CSV_FIELDS: tuple[str, ...] = (
    "table",
    "task",
    "benchmark",
    "model",
    "origin",
    "access",
    "access_as_published",
    "params_b",
    "model_id",
    "run",
    "spec",
    "rank",
    "column",
    "setting",
    "slice",
    "label",
    "value",
    "accuracy",
    "ci_low",
    "ci_high",
    "ci_method",
    "n",
    "correct",
    "chance",
    "unparsed_rate",
    "error_rate",
    "invalid",
    "source",
    "source_url",
)


def render(tables: list[Table], fmt: str, *, ci_style: str = "brackets") -> str:
    if fmt == "csv":
        return tables_to_csv(tables)
    if fmt == "json":
        return tables_to_json(tables)
    if fmt == "latex":
        return tables_to_latex(tables, ci_style=ci_style)
    if fmt == "markdown":
        return tables_to_markdown(tables, ci_style=ci_style)
    raise ValueError(f"unknown export format {fmt!r} (choose from {', '.join(EXPORT_FORMATS)})")


# --------------------------------------------------------------------------------------- CSV / JSON


def _num(v: float | None, digits: int = 2) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def tables_to_csv(tables: list[Table]) -> str:
    """One line per (table, row, column) that has a value; reported values verbatim in `value`."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for table in tables:
        for row in table.rows:
            for column in table.columns:
                cell = row.cells.get(column.key)
                if cell is None:
                    continue
                writer.writerow(
                    {
                        "table": table.table_id,
                        "task": table.task,
                        "benchmark": table.benchmark,
                        "model": row.name,
                        "origin": row.origin,
                        "access": row.access,
                        "access_as_published": row.access_as_published,
                        "params_b": "" if row.params_b is None else f"{row.params_b:g}",
                        "model_id": row.model_id,
                        "run": row.run_name,
                        "spec": row.spec_text,
                        "rank": table.ranks.get(row.row_id, ""),
                        "column": column.key,
                        "setting": column.setting,
                        "slice": column.slice,
                        "label": column.label,
                        "value": cell.as_published or cell.text,
                        "accuracy": ""
                        if cell.value is None or row.origin != "reproduced"
                        else repr(cell.value / 100.0),
                        "ci_low": _num(cell.ci[0] if cell.ci else None),
                        "ci_high": _num(cell.ci[1] if cell.ci else None),
                        "ci_method": cell.ci_method or "",
                        "n": "" if cell.n is None else cell.n,
                        "correct": "" if cell.correct is None else cell.correct,
                        "chance": _num(cell.chance),
                        "unparsed_rate": _num(cell.unparsed_rate),
                        "error_rate": _num(cell.error_rate),
                        "invalid": "" if cell.invalid is None else cell.invalid,
                        "source": row.source,
                        "source_url": row.source_url,
                    }
                )
    return out.getvalue()


def _cell_json(cell: Cell) -> dict[str, Any]:
    data: dict[str, Any] = {"value": cell.value, "text": cell.text}
    if cell.as_published:
        data["as_published"] = cell.as_published
    if cell.ci is not None:
        data["ci"] = [round(cell.ci[0], 4), round(cell.ci[1], 4)]
        data["ci_method"] = cell.ci_method
    for key in ("n", "correct", "chance", "unparsed_rate", "error_rate", "invalid"):
        value = getattr(cell, key)
        if value is not None:
            data[key] = value
    return data


def table_to_dict(table: Table) -> dict[str, Any]:
    return {
        "table": table.table_id,
        "task": table.task,
        "benchmark": table.benchmark,
        "title": table.title,
        "caption": table.caption,
        "columns": [
            {"key": c.key, "setting": c.setting, "slice": c.slice, "label": c.label, "group": c.group, "title": c.title}
            for c in table.columns
        ],
        "rows": [
            {
                "model": r.name,
                "origin": r.origin,
                "access": r.access,
                "access_as_published": r.access_as_published or None,
                "params_b": r.params_b,
                "model_id": r.model_id or None,
                "run": r.run_name or None,
                "spec": r.spec_text or None,
                "rank": table.ranks.get(r.row_id),
                "source": r.source,
                "source_url": r.source_url or None,
                "cells": {k: _cell_json(c) for k, c in r.cells.items()},
            }
            for r in table.rows
        ],
    }


def tables_to_json(tables: list[Table]) -> str:
    return (
        json.dumps({"schema": TABLE_SCHEMA, "tables": [table_to_dict(t) for t in tables]}, indent=1, ensure_ascii=False)
        + "\n"
    )


# --------------------------------------------------------------------------------------- LaTeX

_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)


def _latex_cell(cell: Cell | None, ci_style: str) -> str:
    if cell is None:
        return "--"
    if cell.ci is None or ci_style == "none":
        return cell.text
    lo, hi = cell.ci
    if ci_style == "pm":
        return f"{cell.text}{{\\scriptsize$\\pm${(hi - lo) / 2:.1f}}}"
    return f"{cell.text}{{\\scriptsize\\,[{lo:.1f}, {hi:.1f}]}}"


def column_groups(columns: tuple[Column, ...]) -> list[tuple[str, int]]:
    """Runs of equal `group` in column order: [(group, span), ...]."""
    groups: list[tuple[str, int]] = []
    for column in columns:
        if groups and groups[-1][0] == column.group:
            groups[-1] = (column.group, groups[-1][1] + 1)
        else:
            groups.append((column.group, 1))
    return groups


def _row_label(row: Row) -> str:
    mark = {"reported": r"$^\dagger$", "chance": ""}.get(row.origin, "")
    spec = f" ({latex_escape(row.spec_text)})" if row.spec_text else ""
    return latex_escape(row.name) + mark + spec


def table_to_latex(table: Table, *, ci_style: str = "brackets") -> str:
    if ci_style not in CI_STYLES:
        raise ValueError(f"unknown CI style {ci_style!r} (choose from {', '.join(CI_STYLES)})")
    ncols = len(table.columns)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{l{'c' * ncols}}}", r"\toprule"]
    groups = column_groups(table.columns)
    if any(g for g, _ in groups):
        header, rules, start = ["Model"], [], 2
        for group, span in groups:
            header.append(rf"\multicolumn{{{span}}}{{c}}{{{latex_escape(group)}}}" if group else "")
            if group:
                rules.append(rf"\cmidrule(lr){{{start}-{start + span - 1}}}")
            start += span
        lines.append(" & ".join(header) + r" \\")
        lines.append(" ".join(rules))
        lines.append(" & ".join([""] + [latex_escape(c.label) for c in table.columns]) + r" \\")
    else:
        lines.append(" & ".join(["Model"] + [latex_escape(c.label) for c in table.columns]) + r" \\")
    lines.append(r"\midrule")
    reference = [r for r in table.rows if r.is_reference]
    models = [r for r in table.rows if not r.is_reference]
    for block in (reference, models):
        if not block:
            continue
        for row in block:
            lines.append(
                " & ".join([_row_label(row)] + [_latex_cell(row.cells.get(c.key), ci_style) for c in table.columns])
                + r" \\"
            )
        lines.append(r"\midrule")
    lines[-1] = r"\bottomrule"
    notes = []
    if any(r.origin == "reported" for r in table.rows):
        notes.append(r"$^\dagger$ reported in the cited paper, not reproduced by cvbench.")
    if ci_style == "pm" and any(c.ci for r in table.rows for c in r.cells.values()):
        notes.append(r"$\pm$: half-width of the 95\% interval.")
    elif ci_style == "brackets" and any(c.ci for r in table.rows for c in r.cells.values()):
        notes.append(r"Brackets: 95\% interval.")
    caption = " ".join([table.caption or latex_escape(table.title)] + notes)
    lines += [r"\end{tabular}", rf"\caption{{{caption}}}", rf"\label{{tab:{table.table_id}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def tables_to_latex(tables: list[Table], *, ci_style: str = "brackets") -> str:
    header = "% Generated by cvbench. Requires \\usepackage{booktabs}.\n"
    return header + "\n".join(table_to_latex(t, ci_style=ci_style) for t in tables)


# --------------------------------------------------------------------------------------- Markdown


def markdown_escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("*", "\\*")
        .replace("_", "\\_")
        .replace("`", "\\`")
        .replace("[", "\\[")
        .replace("]", "\\]")
    )


def _md_cell(cell: Cell | None, ci_style: str) -> str:
    if cell is None:
        return "–"
    if cell.ci is None or ci_style == "none":
        return cell.text
    lo, hi = cell.ci
    if ci_style == "pm":
        return f"{cell.text} ± {(hi - lo) / 2:.1f}"
    return f"{cell.text} [{lo:.1f}, {hi:.1f}]"


def table_to_markdown(table: Table, *, ci_style: str = "brackets") -> str:
    labels = [f"{c.group}: {c.label}" if c.group else c.label for c in table.columns]
    lines = [
        f"### {markdown_escape(table.title)}",
        "",
        "| Model | Access | Rank | " + " | ".join(markdown_escape(label) for label in labels) + " |",
        "|---|---|---:|" + "---:|" * len(labels),
    ]
    for row in table.rows:
        name = markdown_escape(row.name) + (" †" if row.origin == "reported" else "")
        if row.spec_text:
            name += f" ({markdown_escape(row.spec_text)})"
        rank = table.ranks.get(row.row_id)
        lines.append(
            f"| {name} | {ACCESS_LABELS.get(row.access, markdown_escape(row.access))} | "
            f"{'' if rank is None else rank} | "
            + " | ".join(_md_cell(row.cells.get(c.key), ci_style) for c in table.columns)
            + " |"
        )
    notes = []
    if any(r.origin == "reported" for r in table.rows):
        notes.append("† reported in the cited paper, not reproduced by cvbench.")
    if ci_style != "none" and any(c.ci for r in table.rows for c in r.cells.values()):
        notes.append("Intervals: 95% (" + ("± half-width" if ci_style == "pm" else "[low, high]") + ").")
    notes.append(
        "Rank: 1 + number of models whose interval lies entirely above this one's (overlapping models share a place)."
    )
    return "\n".join(lines + [""] + notes) + "\n"


def tables_to_markdown(tables: list[Table], *, ci_style: str = "brackets") -> str:
    return "\n".join(table_to_markdown(t, ci_style=ci_style) for t in tables)


def iter_cells(tables: Iterable[Table]) -> Iterable[tuple[Table, Row, Column, Cell]]:
    for table in tables:
        for row in table.rows:
            for column in table.columns:
                cell = row.cells.get(column.key)
                if cell is not None:
                    yield table, row, column, cell
