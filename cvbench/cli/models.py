"""`cvbench models` (cvbench.model_adapters): one line per provider and alias; --verbose for the tables
with every reason and fix."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from typing import Any

import click

from cvbench.cli.app import cli

NAME_MAX = 22


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def compact_lines(rows: Sequence[Any], width: int) -> list[str]:
    """Pure: the compact listing. A row that runs here shows what it is (aliases: what it runs as); one
    that cannot shows the first thing to do about it."""
    name_width = min(NAME_MAX, max((len(r.name) for r in rows), default=8))
    lines: list[str] = []
    for kind, title in (
        ("provider", "Providers (--model PROVIDER:MODEL)"),
        ("alias", "Aliases (--model ALIAS)"),
    ):
        lines.append(title)
        for row in (r for r in rows if r.kind == kind):
            mark = "yes" if row.can_run else "no "
            if row.can_run:
                text = f"-> {row.runs_as}" if row.kind == "alias" and row.runs_as else row.description
            else:
                text = (row.fixes or row.problems or ("cannot run here",))[0]
            name = _shorten(row.name, name_width).ljust(name_width)
            lines.append(_shorten(f"  {mark} {name}  {text}", width))
    lines.append(_shorten("cvbench models --verbose: every reason and fix; --json for scripts", width))
    return lines


@cli.command("models")
@click.option(
    "--base-url",
    "base_urls",
    multiple=True,
    metavar="URL",
    help="OpenAI-compatible endpoint(s) to consider for open models (else $CVBENCH_VLLM_URL).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document instead of tables.")
@click.option("-v", "--verbose", is_flag=True, help="Full tables: what each is, why it cannot run here, how to fix.")
def models_command(base_urls: tuple[str, ...], as_json: bool, verbose: bool) -> None:
    """List providers and model aliases, and whether each can run here (--verbose: how to fix it)."""
    from cvbench.cli.app import CvbenchError
    from cvbench.model_adapters.availability import models_json, models_report, render_models_tables
    from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError, load_entry_point_providers

    try:
        load_entry_point_providers()  # installed plugins are listed too
    except ModelResolutionError as exc:
        raise CvbenchError(str(exc)) from None
    options = ModelOptions(base_urls=base_urls)
    if as_json:
        click.echo(models_json(options))
    elif verbose:
        render_models_tables(options)
    else:
        width = shutil.get_terminal_size((80, 24)).columns
        for line in compact_lines(models_report(options), width):
            click.echo(line)
