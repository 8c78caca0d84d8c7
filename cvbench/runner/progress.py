"""Live progress for a run (a rich bar: percent done, ETA, running accuracy in %), and the summary
printed after it: a results table that fits the terminal (80 columns and up: names wrap, numbers are
never cut), usage, resume count and the commands to look at the run. Silent bar when not a TTY."""

from __future__ import annotations

import os
import shlex
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from typing_extensions import Self

from cvbench.core.candidates import sort_settings

DESCRIPTION_MAX = 28  # characters of the model id shown beside the bar
WIDE = 110  # from this width on the failure counts get a column each
LOG_WIDTH = 120  # output that goes to a file or pipe without $COLUMNS


class RunProgress:
    """Counts finished records (new and resumed) and shows accuracy so far."""

    def __init__(self, console: Console | None = None, enabled: bool | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = self.console.is_terminal if enabled is None else enabled
        self.done = 0
        self.correct = 0
        self.errors = 0
        self.invalid = 0
        self.resumed = 0
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=None),
            TaskProgressColumn(),
            MofNCompleteColumn(),
            TextColumn("acc {task.fields[acc]}"),
            TextColumn("err {task.fields[err]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.enabled,
            transient=False,
            expand=False,
        )
        self._task: Any = None

    def __enter__(self) -> Self:
        self._progress.__enter__()
        self._task = self._progress.add_task("run", total=None, acc="-", err=0)
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)  # type: ignore[arg-type]

    def set_total(self, total: int) -> None:
        self._progress.update(self._task, total=total)

    def describe(self, text: str) -> None:
        if len(text) > DESCRIPTION_MAX:
            text = text[: DESCRIPTION_MAX - 1] + "…"
        self._progress.update(self._task, description=text)

    def advance(self, correct: bool, status: str, resumed: bool = False) -> None:
        if resumed:  # already finished in an earlier session: moves the bar, not the running accuracy
            if self.resumed == 0:
                self.log("resuming: samples finished in an earlier session are kept, not sent again")
            self.resumed += 1
            self._progress.update(self._task, advance=1)
            return
        self.done += 1
        self.correct += int(correct)
        self.errors += int(status == "error")
        self.invalid += int(status == "invalid")
        self._progress.update(self._task, advance=1, acc=f"{100 * self.correct / self.done:.1f}%", err=self.errors)

    def log(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False)


def _fmt_metric(m: dict[str, Any], wide: bool) -> list[str]:
    ci = m.get("ci")
    chance = m.get("chance")
    acc = m.get("accuracy")
    cells = [
        "-" if acc is None else f"{100 * acc:.1f}",
        "-" if not ci else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]",
        str(m["n"]),
        "-" if chance is None else f"{100 * chance:.1f}",
    ]
    failures = [str(m.get("unparsed", 0)), str(m.get("errors", 0)), str(m.get("invalid", 0))]
    return cells + (failures if wide else ["/".join(failures)])


def _evaluation_order(evaluations: dict[str, Any]) -> list[str]:
    """Evaluation keys (`task@setting`) by task, then setting in the one order (4, 8, 12, all)."""
    by_task: dict[str, list[str]] = {}
    for key in evaluations:
        task, _, setting = key.rpartition("@")
        by_task.setdefault(task or key, []).append(setting if task else "")
    ordered = []
    for task, settings in by_task.items():
        for setting in sort_settings(settings):
            ordered.append(f"{task}@{setting}" if setting else task)
    return [k for k in ordered if k in evaluations]


def summary_table(results: dict[str, Any], width: int = 80) -> Table:
    """Per evaluation and per slice: accuracy (%), interval, n, chance, failures. The name
    column wraps; every number column keeps its full width."""
    model = results.get("model") or {}
    method = (results.get("intervals") or {}).get("method")
    wide = width >= WIDE
    failure_cols = ["unparsed", "errors", "invalid"] if wide else ["unp/err/inv"]
    caption = f"95% CI: {method} (docs/running.md)" if method else ""
    if not wide:
        caption += ("; " if caption else "") + "unp/err/inv: unparsed / model errors / invalid samples"
    table = Table(
        title=f"{model.get('display_name') or model.get('id')} - {results.get('status')}",
        title_justify="left",
        caption=caption or None,
        caption_justify="left",
        box=None,
        pad_edge=False,
        show_edge=False,
        header_style="bold",
    )
    # each evaluation (task@setting) has its own overall; a pool across benchmarks or candidate
    # settings (which counts an MMVM question once per setting) would mean nothing
    rows: list[tuple[str, list[str], str | None]] = []
    evaluations = results.get("evaluations", {})
    for key in _evaluation_order(evaluations):
        ev = evaluations[key]
        rows.append((key, _fmt_metric(ev["overall"], wide), "bold"))
        for name, m in ev.get("slices", {}).items():
            rows.append((f"  {name}", _fmt_metric(m, wide), None))
    headers = ["acc %", "95% CI", "n", "chance %", *failure_cols]
    table.add_column("evaluation / slice", justify="left", overflow="fold", ratio=1, min_width=12)
    for i, header in enumerate(headers):
        need = max([len(header)] + [len(cells[i]) for _, cells, _ in rows])
        table.add_column(header, justify="right", no_wrap=True, min_width=need)
    for name, cells, style in rows:
        table.add_row(name, *cells, style=style)
    return table


def next_steps(run_dir: Any) -> list[str]:
    """The commands that look at a finished run."""
    where = shlex.quote(str(run_dir))
    return [f"cvbench report {where}", f"cvbench view {where}"]


def print_next_steps(run_dir: Any, console: Console | None = None) -> None:
    console = console or summary_console()
    console.print(
        "next: a report (report.md, report.html), or browse the samples in a local viewer:",
        markup=False,
        highlight=False,
    )
    for line in next_steps(run_dir):
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)


def summary_console() -> Console:
    """stdout at $COLUMNS when set (tests, scripts), else the terminal's width, else LOG_WIDTH."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return Console(width=int(columns))
    console = Console()
    return console if console.is_terminal else Console(width=LOG_WIDTH)


def usage_line(usage: dict[str, Any] | None) -> str | None:
    """ "usage: 1,200 responses (300 cached), 1,234,567 input / 8,900 output tokens, cost $3.21"; None
    when nothing was answered. The cost shows only when it is known for every response."""
    if not usage or not usage.get("responses"):
        return None
    text = f"usage: {usage['responses']:,} responses ({usage.get('cached', 0):,} cached)"
    if usage.get("input_tokens") or usage.get("output_tokens"):  # baselines and some servers count none
        text += f", {usage.get('input_tokens', 0):,} input / {usage.get('output_tokens', 0):,} output tokens"
    if usage.get("cost_usd") is not None:
        text += f", cost ${usage['cost_usd']:,.2f}"
    elif usage.get("cost_usd_known_part") is not None:
        text += (
            f", cost ${usage['cost_usd_known_part']:,.2f} for the responses with a known cost "
            f"({usage.get('responses_without_cost', 0):,} without)"
        )
    return text


def resume_line(run: dict[str, Any] | None) -> str | None:
    """ "resumed: 120 samples were already done (kept, not sent again); 46 new" when the run resumed."""
    resumed = int((run or {}).get("resumed_records") or 0)
    if not resumed:
        return None
    new = int((run or {}).get("new_records") or 0)
    return f"resumed: {resumed:,} samples were already done (kept, not sent again); {new:,} new this session"


def print_summary(results: dict[str, Any], run_dir: Any, console: Console | None = None) -> None:
    console = console or summary_console()
    console.print(summary_table(results, console.width))
    resumed = resume_line(results.get("run"))
    if resumed is not None:
        console.print(resumed, markup=False, highlight=False)
    usage = usage_line(results.get("usage"))
    if usage is not None:
        console.print(usage, markup=False, highlight=False)
    intervals = results.get("intervals") or {}
    console.print(
        f"intervals: {intervals.get('method', '?')} over {intervals.get('cluster', 'clusters')}",
        markup=False,
        highlight=False,
    )
    # a path is never broken across lines: it must stay copyable
    console.print(f"run directory: {run_dir}", markup=False, highlight=False, soft_wrap=True)
