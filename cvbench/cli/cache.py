"""`cvbench merge` and `cvbench cache` (cvbench.runner)."""

from __future__ import annotations

import click

from cvbench.cli.app import CvbenchError, cli


@cli.command("merge")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True, path_type=str))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=str), help="Merged run directory.")
def merge_command(run_dirs: tuple[str, ...], out: str) -> None:
    """Join shards of one run (same configuration apart from --shard) into one run directory."""
    from pathlib import Path

    from cvbench.rundir.format import RunDirError
    from cvbench.runner.merge import merge_runs
    from cvbench.runner.options import RunError
    from cvbench.runner.progress import print_summary

    try:
        results = merge_runs([Path(d) for d in run_dirs], Path(out))
    except (RunError, RunDirError) as exc:
        raise CvbenchError(str(exc)) from None
    print_summary(results, Path(out))


@cli.group("cache")
def cache_group() -> None:
    """The response cache: stats, clearing, checking and repair."""


def cache_error_text(exc: Exception) -> str:
    choices = getattr(exc, "choices", None)  # CacheUnusableError: what the user can do
    return f"{exc}; {choices}" if choices else str(exc)


@cache_group.command("stats")
@click.option("--cache", "cache_path", type=click.Path(dir_okay=False, path_type=str), default=None)
def cache_stats_command(cache_path: str | None) -> None:
    """Entries, size and per-model counts of the response cache."""
    from pathlib import Path

    from cvbench.core.locations import default_response_cache
    from cvbench.runner.cache import CacheError, ResponseCache

    path = Path(cache_path) if cache_path else default_response_cache()
    if not path.exists():
        click.echo(f"{path}: no cache yet (0 entries)")
        return
    try:
        with ResponseCache(path) as cache:
            stats = cache.stats()
    except CacheError as exc:
        raise CvbenchError(cache_error_text(exc)) from None
    click.echo(f"{stats.path}: {stats.entries} entries, {stats.file_bytes / 1e6:.2f} MB on disk")
    for m in stats.per_model:
        click.echo(f"  {m.model_id}: {m.entries} entries, {m.bytes / 1e6:.2f} MB")


@cache_group.command("clear")
@click.option("--cache", "cache_path", type=click.Path(dir_okay=False, path_type=str), default=None)
@click.option("--model", "model_id", default=None, help="Only this model id (as in `cache stats`).")
def cache_clear_command(cache_path: str | None, model_id: str | None) -> None:
    """Delete cached responses (all, or one model's)."""
    from pathlib import Path

    from cvbench.core.locations import default_response_cache
    from cvbench.runner.cache import CacheError, ResponseCache

    path = Path(cache_path) if cache_path else default_response_cache()
    if not path.exists():
        click.echo(f"{path}: no cache (nothing to clear)")
        return
    try:
        with ResponseCache(path) as cache:
            n = cache.clear(model_id)
    except CacheError as exc:
        raise CvbenchError(cache_error_text(exc)) from None
    click.echo(f"{path}: removed {n} entries" + (f" of {model_id}" if model_id else ""))


@cache_group.command("renders")
@click.option("--cache", "cache_path", type=click.Path(dir_okay=False, path_type=str), default=None)
@click.option("--clear", is_flag=True, help="Delete every rendered prompt.")
def cache_renders_command(cache_path: str | None, clear: bool) -> None:
    """The render store (rendered prompts shared by every run and model): size, or --clear."""
    from pathlib import Path

    from cvbench.core.locations import default_response_cache
    from cvbench.runner.render_store import RenderStoreError, store_report

    try:
        click.echo(store_report(Path(cache_path) if cache_path else default_response_cache(), clear))
    except RenderStoreError as exc:
        raise CvbenchError(str(exc)) from None


@cache_group.command("check")
@click.option("--cache", "cache_path", type=click.Path(dir_okay=False, path_type=str), default=None)
def cache_check_command(cache_path: str | None) -> None:
    """Check the response cache file (SQLite integrity_check, schema version); exit 1 if it is
    damaged, foreign or from a newer cvbench."""
    from pathlib import Path

    from cvbench.core.locations import default_response_cache
    from cvbench.runner.cache_check import inspect_cache

    path = Path(cache_path) if cache_path else default_response_cache()
    health = inspect_cache(path, full=True)
    if health.usable:
        click.echo(health.summary())
        return
    click.echo(f"{path}: {health.kind}", err=True)
    for problem in health.problems:
        click.echo(f"  {problem}", err=True)
    if health.kind == "damaged":
        raise CvbenchError(
            f"{path} is not usable: `cvbench cache repair --cache {path}` salvages its readable "
            f"entries (the damaged file is kept), or pass another --cache"
        )
    raise CvbenchError(f"{path} is not usable: move it away or pass another --cache")


@cache_group.command("repair")
@click.option("--cache", "cache_path", type=click.Path(dir_okay=False, path_type=str), default=None)
def cache_repair_command(cache_path: str | None) -> None:
    """Salvage the readable entries of a damaged response cache into a new file at the same path;
    the damaged file is kept beside it as <name>.damaged-<time>. Run it while no run uses the cache."""
    from pathlib import Path

    from cvbench.core.locations import default_response_cache
    from cvbench.runner.cache_repair import CacheRepairError, repair_cache

    path = Path(cache_path) if cache_path else default_response_cache()
    try:
        report = repair_cache(path)
    except CacheRepairError as exc:
        raise CvbenchError(str(exc)) from None
    click.echo(
        f"{report.path}: salvaged {report.salvaged} entries, {report.unreadable} unreadable stepped over; "
        f"the damaged file is kept at {report.kept_as}"
    )
