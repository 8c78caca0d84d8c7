"""`cvbench tasks` and `cvbench samples` (cvbench.tasks)."""

from __future__ import annotations

from pathlib import Path

import click

from cvbench.cli.app import CvbenchError, cli
from cvbench.cli.options import data_dir_option


@cli.command("tasks")
def tasks_command() -> None:
    """List the tasks with their slices and candidate settings."""
    from cvbench.tasks.registry import TaskSpecError, load_task_specs
    from cvbench.tasks.slices import slice_labels

    try:
        specs = load_task_specs()
    except TaskSpecError as exc:
        raise CvbenchError(str(exc)) from None
    for spec in specs.values():
        kind = "synthetic, generated on first use" if spec.synthetic else "official data"
        click.echo(f"{spec.name}  [{spec.benchmark}; {kind}; settings {','.join(spec.candidate_settings)}]")
        click.echo(f"    {spec.description}")
        for dim, labels in slice_labels(spec).items():
            click.echo(f"    slices {dim}: {', '.join(labels)}")


def parse_filters(items: tuple[str, ...], dims: tuple[str, ...]) -> dict[str, set[str]]:
    """('cue=CL', 'cue=RP', 'category=indoor') -> {'cue': {'CL', 'RP'}, 'category': {'indoor'}}."""
    wanted: dict[str, set[str]] = {}
    for item in items:
        for part in item.split(","):
            dim, sep, label = part.partition("=")
            dim, label = dim.strip(), label.strip()
            if not sep or not dim or not label:
                raise CvbenchError(f"--filter {part!r}: expected DIMENSION=LABEL, e.g. {dims[0]}=..." if dims else "")
            if dim not in dims:
                raise CvbenchError(f"--filter {part!r}: this task's slice dimensions are {', '.join(dims)}")
            wanted.setdefault(dim, set()).add(label)
    return wanted


@cli.command("samples")
@click.argument("task")
@data_dir_option
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="DIM=LABEL",
    help="Only samples in this slice, e.g. cue=CL or task_type=Q5 (repeatable; the same dimension twice "
    "means either label, different dimensions must all match).",
)
@click.option("--invalid", "show_invalid", is_flag=True, help="Also list records that cannot be loaded, with why.")
def samples_command(task: str, data_dir: Path | None, filters: tuple[str, ...], show_invalid: bool) -> None:
    """List the sample ids of TASK with their slices (ids for `cvbench render --sample`)."""
    from cvbench.cli.datagen import prepare_synthetic_data
    from cvbench.core.types import Sample
    from cvbench.tasks.files import DataFormatError
    from cvbench.tasks.loading import DataNotFoundError, iter_task_samples
    from cvbench.tasks.registry import TaskSpecError, UnknownTaskError, get_task
    from cvbench.tasks.slices import SliceError, sample_slices

    try:
        spec = get_task(task)
    except (UnknownTaskError, TaskSpecError) as exc:
        raise CvbenchError(str(exc)) from None
    wanted = parse_filters(filters, spec.slice_dims)
    shown = total = 0
    try:
        prepare_synthetic_data((task,), data_dir, None)
        for item in iter_task_samples(spec, data_dir):
            total += 1
            if not isinstance(item, Sample):
                if show_invalid:
                    click.echo(f"{item.sample_id or '-'}\tinvalid: {item.reason}")
                continue
            try:
                slices = sample_slices(item, spec, "all")
            except SliceError as exc:
                if show_invalid:
                    click.echo(f"{item.sample_id}\tinvalid: {exc}")
                continue
            if any(not labels & set(slices.get(dim, ())) for dim, labels in wanted.items()):
                continue
            shown += 1
            text = "  ".join(f"{dim}={'+'.join(labels)}" for dim, labels in slices.items())
            click.echo(f"{item.sample_id}\t{text}")
    except (DataNotFoundError, DataFormatError) as exc:
        raise CvbenchError(str(exc)) from None
    click.echo(f"{shown} of {total} samples of {spec.name}", err=True)
