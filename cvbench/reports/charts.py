"""Horizontal bar charts as inline SVG: accuracy bars, 95% interval whiskers, chance marks.

Pure functions; every piece of text is XML-escaped, so model-provided labels are safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape


@dataclass(frozen=True)
class Bar:
    label: str
    value: float  # percent
    ci: tuple[float, float] | None = None  # percent
    chance: float | None = None  # percent
    note: str = ""  # extra tooltip text, e.g. "43/100 correct"


LABEL_W = 250
PLOT_W = 420
ROW_H = 22
TOP = 44
BOTTOM = 30


def _x(pct: float) -> float:
    return LABEL_W + PLOT_W * max(0.0, min(100.0, pct)) / 100.0


def bar_chart_svg(bars: Sequence[Bar], title: str, *, standalone: bool = False) -> str:
    """A chart of `bars` (0-100 %). `standalone` adds the XML namespace for a .svg file."""
    height = TOP + ROW_H * len(bars) + BOTTOM
    width = LABEL_W + PLOT_W + 70
    ns = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
    out = [
        (
            f'<svg{ns} class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'font-family="system-ui, sans-serif" font-size="12">'
        ),
        f"<title>{escape(title)}</title>",
        f'<text x="4" y="16" font-weight="600" font-size="13">{escape(title)}</text>',
    ]
    axis_y = TOP + ROW_H * len(bars)
    for tick in range(0, 101, 20):
        x = _x(tick)
        out.append(f'<line x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" y2="{axis_y}" stroke="#e3e3e3"/>')
        out.append(f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="middle" fill="#555">{tick}</text>')
    out.append(f'<text x="{_x(50):.1f}" y="{axis_y + 27}" text-anchor="middle" fill="#555">accuracy (%)</text>')
    for i, bar in enumerate(bars):
        y = TOP + ROW_H * i
        tip = f"{bar.label}: {bar.value:.1f}%"
        if bar.ci is not None:
            tip += f" (95% CI {bar.ci[0]:.1f}–{bar.ci[1]:.1f})"
        if bar.chance is not None:
            tip += f"; chance {bar.chance:.1f}%"
        if bar.note:
            tip += f"; {bar.note}"
        out.append(f"<g><title>{escape(tip)}</title>")
        out.append(f'<text x="{LABEL_W - 6}" y="{y + 15}" text-anchor="end">{escape(_clip(bar.label, 34))}</text>')
        out.append(
            f'<rect x="{LABEL_W}" y="{y + 4}" width="{_x(bar.value) - LABEL_W:.1f}" height="{ROW_H - 8}" '
            f'fill="#4c78a8"/>'
        )
        if bar.ci is not None:
            lo, hi = _x(bar.ci[0]), _x(bar.ci[1])
            mid = y + ROW_H / 2
            out.append(f'<line x1="{lo:.1f}" y1="{mid}" x2="{hi:.1f}" y2="{mid}" stroke="#222" stroke-width="1.5"/>')
            for xx in (lo, hi):
                out.append(
                    f'<line x1="{xx:.1f}" y1="{mid - 5}" x2="{xx:.1f}" y2="{mid + 5}" stroke="#222" '
                    f'stroke-width="1.5"/>'
                )
        if bar.chance is not None:
            cx = _x(bar.chance)
            out.append(
                f'<line x1="{cx:.1f}" y1="{y + 1}" x2="{cx:.1f}" y2="{y + ROW_H - 1}" stroke="#d62728" '
                f'stroke-width="2" stroke-dasharray="3,2"/>'
            )
        out.append(f'<text x="{LABEL_W + PLOT_W + 6}" y="{y + 15}">{bar.value:.1f}</text></g>')
    lx = LABEL_W
    out.append(
        f'<rect x="{lx}" y="26" width="14" height="9" fill="#4c78a8"/>'
        f'<text x="{lx + 18}" y="34" fill="#555">accuracy</text>'
        f'<line x1="{lx + 90}" y1="24" x2="{lx + 90}" y2="36" stroke="#d62728" stroke-width="2" '
        f'stroke-dasharray="3,2"/>'
        f'<text x="{lx + 95}" y="34" fill="#555">chance</text>'
        f'<line x1="{lx + 150}" y1="30" x2="{lx + 170}" y2="30" stroke="#222" stroke-width="1.5"/>'
        f'<text x="{lx + 174}" y="34" fill="#555">95% CI</text>'
    )
    out.append("</svg>")
    return "".join(out)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
