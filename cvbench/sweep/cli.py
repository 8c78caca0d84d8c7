"""The `cvbench sweep` command (registered on the main CLI by one line there)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("sweep")
@click.argument("sweep_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: the runs one after another here; ray: on a Ray cluster (pip install 'cvbench[ray]').",
)
@click.option(
    "--ray-address",
    default=None,
    metavar="ADDR",
    help="Ray cluster to join (e.g. 10.0.0.1:6379 or auto; default: a cluster of this machine for this sweep).",
)
@click.option("--dry-run", is_flag=True, help="Print the runs and the estimated request count; run nothing.")
@click.option(
    "--status-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Progress as JSON, rewritten as the sweep goes (default: <out>/.sweep/<sweep name>.status.json, "
    "out of the way of `runs/*`).",
)
def sweep_command(
    sweep_file: Path, executor: str, ray_address: str | None, dry_run: bool, status_file: Path | None
) -> None:
    """Run a matrix of runs (models x tasks x settings) from SWEEP_FILE; rerun it to resume.

    Each run is what `cvbench run` would do with the same options: the same run folder, identity
    and records. The file format is in docs/scaling.md."""
    from cvbench.sweep.spec import SweepSpecError, load_sweep

    if ray_address and executor != "ray":
        raise click.ClickException("--ray-address needs --executor ray")
    try:
        sweep = load_sweep(sweep_file, argv=tuple(sys.argv))
    except SweepSpecError as exc:
        raise click.ClickException(str(exc)) from None
    if dry_run:
        from cvbench.sweep.plan import estimate, matrix_lines

        estimates = [estimate(run, sweep.shards) for run in sweep.runs]
        for line in matrix_lines(sweep.runs, estimates, sweep.shards):
            click.echo(line)
        return
    from cvbench.sweep.progress import SweepProgress

    progress = SweepProgress(sweep.runs, status_file or sweep.root / ".sweep" / f"{sweep_file.stem}.status.json")
    try:
        if executor == "ray":
            from cvbench.sweep.ray_executor import SweepExecutorError, run_ray

            try:
                outcome = run_ray(sweep, progress, ray_address)
            except SweepExecutorError as exc:
                raise click.ClickException(str(exc)) from None
        else:
            from cvbench.sweep.local import run_local

            outcome = run_local(sweep, progress)
    except KeyboardInterrupt:  # the workers' finished records are kept; the same command resumes
        click.echo(f"cancelled: rerun `cvbench sweep {sweep_file}` to resume", err=True)
        sys.exit(130)
    progress.emit("sweep ended")
    for run_dir, status in outcome.statuses.items():
        why = outcome.failures.get(run_dir)
        click.echo(f"{status:9} {run_dir}" + (f"  ({why})" if why else ""))
    if outcome.exit_code:
        click.echo("not every run is complete: rerun the same sweep to resume", err=True)
        sys.exit(outcome.exit_code)
