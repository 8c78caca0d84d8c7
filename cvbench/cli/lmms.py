"""`cvbench export-lmms`: an lmms-eval task folder (cvbench.integrations)."""

from __future__ import annotations

from pathlib import Path

import click

from cvbench.cli.app import CvbenchError, cli
from cvbench.cli.options import (
    candidates_option,
    check_applies_to_tasks,
    data_dir_option,
    declared_option,
    setting_names,
    tasks_option,
)
from cvbench.core import options as declared
from cvbench.core.candidates import CandidateSetting


@cli.command("export-lmms")
@tasks_option(None)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=str),
    required=True,
    help="Folder to write (empty, new, or an earlier export, which is replaced).",
)
@candidates_option()
@declared_option(declared.STYLE)
@declared_option(declared.MODE, choices=("auto", "overlay", "prerendered"))
@data_dir_option
@declared_option(declared.SEED)
@declared_option(declared.LIMIT)
@click.option("--single-image", is_flag=True, help="Stack the views into one image (single-image models).")
@click.option(
    "--max-tokens",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="max_new_tokens in the task configs.",
)
@click.option("--group", default="cvbench_suite", show_default=True, help="Name of the lmms-eval group of all tasks.")
def export_lmms_command(
    tasks: tuple[str, ...],
    out_dir: str,
    candidates: tuple[CandidateSetting, ...] | None,
    style: str | None,
    mode: str,
    data_dir: Path | None,
    seed: int,
    limit: int | None,
    single_image: bool,
    max_tokens: int,
    group: str,
) -> None:
    """Write an lmms-eval task folder (load it with `lmms_eval --include_path OUT`)."""
    from cvbench.integrations.lmms_export import ExportError, LmmsExportOptions, export_lmms
    from cvbench.tasks.loading import DataNotFoundError

    check_applies_to_tasks(tasks, candidates, mode, style)
    options = LmmsExportOptions(
        tasks=tasks,
        out=Path(out_dir),
        candidates=setting_names(candidates),
        style=style,
        mode=mode,
        data_dir=data_dir,
        seed=seed,
        limit=limit,
        single_image=single_image,
        max_tokens=max_tokens,
        group=group,
    )
    try:
        summary = export_lmms(options)
    except (ExportError, DataNotFoundError, OSError) as exc:
        raise CvbenchError(str(exc)) from None
    for task in summary.tasks:
        invalid = f", {task.invalid} invalid" if task.invalid else ""
        click.echo(
            f"{task.name}: {task.docs} documents{invalid}, {len(task.metrics)} metrics "
            f"({task.task}, candidates {task.setting})"
        )
    names = ",".join(t.name for t in summary.tasks)
    click.echo(f"wrote {summary.out} (group {summary.group})")
    click.echo(
        f"run: python -m lmms_eval --include_path {summary.out} --tasks {summary.group} --model ... "
        f"(or --tasks {names})"
    )
