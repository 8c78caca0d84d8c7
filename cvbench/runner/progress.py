"""Live progress for a run: a rich bar with ETA and running accuracy; silent when not a TTY."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from typing_extensions import Self


class RunProgress:
    """Counts finished records (new and resumed) and shows accuracy so far."""

    def __init__(self, console: Console | None = None, enabled: bool | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = self.console.is_terminal if enabled is None else enabled
        self.done = 0
        self.correct = 0
        self.errors = 0
        self.invalid = 0
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("acc {task.fields[acc]}"),
            TextColumn("err {task.fields[err]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.enabled,
            transient=False,
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
        self._progress.update(self._task, description=text)

    def advance(self, correct: bool, status: str, resumed: bool = False) -> None:
        if resumed:  # already finished in an earlier session: moves the bar, not the running accuracy
            self._progress.update(self._task, advance=1)
            return
        self.done += 1
        self.correct += int(correct)
        self.errors += int(status == "error")
        self.invalid += int(status == "invalid")
        self._progress.update(self._task, advance=1, acc=f"{self.correct / self.done:.3f}", err=self.errors)

    def log(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False)


def _fmt_metric(m: dict[str, Any]) -> list[str]:
    ci = m.get("ci")
    chance = m.get("chance")
    acc = m.get("accuracy")
    return [
        "-" if acc is None else f"{100 * acc:.1f}",
        "-" if not ci else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]",
        str(m["n"]),
        "-" if chance is None else f"{100 * chance:.1f}",
        str(m["unparsed"]),
        str(m["errors"]),
        str(m["invalid"]),
    ]


def summary_table(results: dict[str, Any]) -> Table:
    """Overall, per evaluation and per slice: accuracy (%), interval, n, chance, failures."""
    model = results.get("model") or {}
    method = (results.get("intervals") or {}).get("method")
    table = Table(
        title=f"{model.get('display_name') or model.get('id')} - {results.get('status')}",
        title_justify="left",
        caption=f"95% CI: {method} (docs/running.md)" if method else None,
        caption_justify="left",
    )
    for col in ("evaluation / slice", "acc %", "95% CI", "n", "chance %", "unparsed", "errors", "invalid"):
        table.add_column(col, justify="left" if col.startswith("eval") else "right", no_wrap=True)
    table.add_row("overall", *_fmt_metric(results["overall"]), style="bold")
    for key, ev in results.get("evaluations", {}).items():
        table.add_row(key, *_fmt_metric(ev["overall"]), style="bold")
        for name, m in ev.get("slices", {}).items():
            table.add_row(f"  {name}", *_fmt_metric(m))
    return table


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


def print_summary(results: dict[str, Any], run_dir: Any, console: Console | None = None) -> None:
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=160)  # a log file: keep slice names whole
    console.print(summary_table(results))
    usage = usage_line(results.get("usage"))
    if usage is not None:
        console.print(usage, markup=False, highlight=False)
    intervals = results.get("intervals") or {}
    console.print(
        f"intervals: {intervals.get('method', '?')} over {intervals.get('cluster', 'clusters')}; "
        f"run directory: {run_dir}",
        markup=False,
        highlight=False,
    )
