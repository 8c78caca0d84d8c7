"""Interval plots as static inline SVG, made from the leaderboard's tables (no script, no fetch).

- accuracy against the number of MMVM candidates (4, 8, 12, all) per model, with intervals and chance
- per-category / per-cue profiles of each model
- overlay-style sensitivity: one model's runs that differ in their prompt (style, mode, ...)
- reported vs reproduced: the paper's number beside cvbench's interval for the same model

Pure functions over `Table`s; every piece of text is XML-escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from cvbench.reports.tables import ORIGIN_CHANCE, ORIGIN_REPORTED, ORIGIN_REPRODUCED, Row, Table, slugify

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2", "#9d755d", "#eeca3b")


@dataclass(frozen=True)
class Point:
    value: float  # percent
    ci: tuple[float, float] | None = None


@dataclass(frozen=True)
class Series:
    name: str
    points: dict[str, Point]  # category -> point
    reported: bool = False  # a paper's number: a hollow diamond, no interval
    colour: int | None = None  # palette index (a paper's number takes its reproduced pair's colour)


@dataclass(frozen=True)
class Plot:
    plot_id: str
    title: str
    categories: tuple[str, ...]
    series: tuple[Series, ...]
    chance: dict[str, float] = field(default_factory=dict)
    connect: bool = False  # a line through each series (an ordered x axis)
    x_label: str = ""

    def svg(self) -> str:
        return interval_plot_svg(self)


W, H, LEFT, RIGHT, TOP, BOTTOM = 640, 300, 48, 170, 34, 46


def interval_plot_svg(plot: Plot) -> str:
    """Categories across, accuracy (0-100 %) up; each series a colour, slightly offset so intervals
    do not hide each other; chance as a dashed red tick per category; legend on the right."""
    n_cat, n_ser = len(plot.categories), max(1, len(plot.series))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    step = plot_w / max(1, n_cat)

    def y(pct: float) -> float:
        return TOP + plot_h * (1 - max(0.0, min(100.0, pct)) / 100.0)

    def x(i: int, s: int) -> float:
        spread = min(step * 0.6, 8.0 * n_ser)
        return LEFT + step * (i + 0.5) + (spread * (s / (n_ser - 1) - 0.5) if n_ser > 1 else 0.0)

    out = [
        f'<svg class="plot" role="img" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
        f'aria-labelledby="plot-{escape(plot.plot_id)}-t" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="plot-{escape(plot.plot_id)}-t">{escape(plot.title)}</title>',
        f'<text x="{LEFT}" y="18" font-size="13" font-weight="600">{escape(plot.title)}</text>',
    ]
    for tick in (0, 25, 50, 75, 100):
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e5e5e5"/>'
            f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" font-size="10" text-anchor="end" fill="#555">{tick}</text>'
        )
    for i, cat in enumerate(plot.categories):
        cx = LEFT + step * (i + 0.5)
        out.append(
            f'<text x="{cx:.1f}" y="{TOP + plot_h + 15}" font-size="10" text-anchor="middle">{escape(cat)}</text>'
        )
        if cat in plot.chance:
            cy = y(plot.chance[cat])
            out.append(
                f'<line x1="{cx - step * 0.42:.1f}" x2="{cx + step * 0.42:.1f}" y1="{cy:.1f}" y2="{cy:.1f}" '
                f'stroke="#d62728" stroke-width="1.5" stroke-dasharray="4,3"><title>chance {plot.chance[cat]:.1f}%'
                f"</title></line>"
            )
    if plot.x_label:
        out.append(
            f'<text x="{LEFT + plot_w / 2:.1f}" y="{H - 8}" font-size="11" text-anchor="middle" fill="#444">'
            f"{escape(plot.x_label)}</text>"
        )
    out.append(
        f'<text x="12" y="{TOP + plot_h / 2:.1f}" font-size="11" fill="#444" text-anchor="middle" '
        f'transform="rotate(-90 12 {TOP + plot_h / 2:.1f})">accuracy %</text>'
    )
    for s, series in enumerate(plot.series):
        colour = _colour(series, s)
        coords = [(x(i, s), series.points[c]) for i, c in enumerate(plot.categories) if c in series.points]
        if plot.connect and len(coords) > 1:
            path = " ".join(f"{px:.1f},{y(p.value):.1f}" for px, p in coords)
            dash = ' stroke-dasharray="2,3"' if series.reported else ""
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"{dash}/>')
        for px, p in coords:
            tip = f"{series.name}: {p.value:.1f}%" + (f" [{p.ci[0]:.1f}, {p.ci[1]:.1f}]" if p.ci else "")
            if p.ci is not None:
                out.append(
                    f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{y(p.ci[0]):.1f}" y2="{y(p.ci[1]):.1f}" '
                    f'stroke="{colour}" stroke-width="2"/>'
                )
            if series.reported:
                py = y(p.value)
                out.append(
                    f'<polygon points="{px:.1f},{py - 5:.1f} {px + 5:.1f},{py:.1f} {px:.1f},{py + 5:.1f} '
                    f'{px - 5:.1f},{py:.1f}" fill="#fff" stroke="{colour}" stroke-width="2">'
                    f"<title>{escape(tip)} (reported in paper)</title></polygon>"
                )
            else:
                out.append(
                    f'<circle cx="{px:.1f}" cy="{y(p.value):.1f}" r="3.5" fill="{colour}">'
                    f"<title>{escape(tip)}</title></circle>"
                )
    lx = W - RIGHT + 14
    for s, series in enumerate(plot.series):
        ly = TOP + 6 + 16 * s
        colour = _colour(series, s)
        name = series.name if len(series.name) <= 24 else series.name[:23] + "…"
        shape = (
            f'<polygon points="{lx},{ly - 5} {lx + 5},{ly} {lx},{ly + 5} {lx - 5},{ly}" fill="#fff" stroke="{colour}"/>'
            if series.reported
            else f'<circle cx="{lx}" cy="{ly}" r="4" fill="{colour}"/>'
        )
        out.append(
            f'{shape}<text x="{lx + 10}" y="{ly + 4}" font-size="10">{escape(name)}<title>{escape(series.name)}'
            f"</title></text>"
        )
    if plot.chance:
        ly = TOP + 6 + 16 * len(plot.series)
        out.append(
            f'<line x1="{lx - 6}" x2="{lx + 6}" y1="{ly}" y2="{ly}" stroke="#d62728" stroke-dasharray="4,3"/>'
            f'<text x="{lx + 10}" y="{ly + 4}" font-size="10">chance</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _colour(series: Series, index: int) -> str:
    return PALETTE[(series.colour if series.colour is not None else index) % len(PALETTE)]


# ------------------------------------------------------------------------------ from tables


def _label(row: Row) -> str:
    """The model's name, and what sets this run apart from the model's other runs."""
    differs = " · ".join(t for _, t, em in row.spec if em and t)
    return f"{row.name} ({differs})" if differs else row.name


def _points(row: Row, keys: Sequence[tuple[str, str]]) -> dict[str, Point]:
    out = {}
    for category, key in keys:
        cell = row.cells.get(key)
        if cell is not None and cell.value is not None:
            out[category] = Point(cell.value, None if row.origin == ORIGIN_REPORTED else cell.ci)
    return out


def _chance(table: Table, keys: Sequence[tuple[str, str]]) -> dict[str, float]:
    row = next((r for r in table.rows if r.origin == ORIGIN_CHANCE), None)
    return {} if row is None else {c: v.value for c, k in keys if (v := row.cells.get(k)) and v.value is not None}


def _reproduced(table: Table) -> list[Row]:
    return [r for r in table.rows if r.origin == ORIGIN_REPRODUCED][: len(PALETTE)]


def candidates_plot(paper: Table) -> Plot | None:
    """MMVM overall accuracy at 4, 8, 12 and all candidates, one line per reproduced run."""
    keys = [(s, f"{s}/overall") for s in ("4", "8", "12", "all")]
    series = [Series(_label(r), _points(r, keys)) for r in _reproduced(paper)]
    series = [s for s in series if len(s.points) > 1]
    if not series:
        return None
    return Plot(
        f"{paper.task}-candidates",
        f"{paper.task}: accuracy against the number of candidates",
        tuple(k for k, _ in keys),
        tuple(series),
        _chance(paper, keys),
        connect=True,
        x_label="candidates per question",
    )


def profile_plot(table: Table, what: str) -> Plot | None:
    """Each reproduced run's accuracy per category / cue (the table's columns after Overall)."""
    keys = [(c.label, c.key) for c in table.columns if c.slice != "overall"]
    series = [Series(_label(r), _points(r, keys)) for r in _reproduced(table)]
    series = [s for s in series if s.points]
    if not keys or not series:
        return None
    return Plot(
        f"{table.table_id}-profile",
        f"{table.task}: accuracy per {what}",
        tuple(k for k, _ in keys),
        tuple(series),
        _chance(table, keys),
    )


def sensitivity_plot(table: Table) -> Plot | None:
    """Models with several runs that differ in their prompt: each run's headline number, per model."""
    first = table.columns[0]
    by_model: dict[str, list[Row]] = {}
    for r in table.rows:
        if r.origin == ORIGIN_REPRODUCED and r.spec:
            by_model.setdefault(r.model_id, []).append(r)
    groups = {m: rows for m, rows in by_model.items() if len(rows) > 1}
    if not groups:
        return None
    series = []
    for model, rows in list(groups.items())[: len(PALETTE)]:
        points = {}
        for r in rows:
            cell = r.cells.get(first.key)
            differing = " · ".join(t for _, t, em in r.spec if em) or r.run_name
            if cell is not None and cell.value is not None:
                points[differing] = Point(cell.value, cell.ci)
        series.append(Series(rows[0].name + f" [{model}]", points))
    categories = tuple(dict.fromkeys(c for s in series for c in s.points))
    return Plot(
        f"{table.table_id}-sensitivity",
        f"{table.task}: {first.title.lower()} by prompt (runs of one model)",
        categories,
        tuple(series),
        x_label="what differs between the runs",
    )


def reported_vs_reproduced_plot(table: Table) -> Plot | None:
    """Models both reported in a paper and reproduced here: the paper's number beside the interval."""
    reported = {slugify(r.name): r for r in table.rows if r.origin == ORIGIN_REPORTED}
    pairs = [(reported[slugify(r.name)], r) for r in _reproduced(table) if slugify(r.name) in reported]
    if not pairs:
        return None
    # MMVM: overall per candidate setting; CrossViewBench: overall and the four categories
    columns = [c for c in table.columns if c.slice == "overall"] if len(table.columns) > 6 else list(table.columns)
    keys = [(c.setting if c.slice == "overall" and c.group else c.label, c.key) for c in columns]
    series = []
    for i, (paper_row, run_row) in enumerate(pairs[:4]):
        series.append(Series(f"{_label(run_row)} (cvbench)", _points(run_row, keys), colour=i))
        series.append(Series(f"{paper_row.name} (paper)", _points(paper_row, keys), reported=True, colour=i))
    used = [k for k in keys if any(k[0] in s.points for s in series)]
    return Plot(
        f"{table.table_id}-reported",
        f"{table.task}: reported in paper vs reproduced by cvbench",
        tuple(k for k, _ in used),
        tuple(series),
    )
