"""`cvbench view`: a local viewer over run directories that follows a run while it runs (cvbench.viewer)."""

from __future__ import annotations

from pathlib import Path

import click

from cvbench.cli.app import CvbenchError, cli


@cli.command("view")
@click.argument("run_dirs", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port on 127.0.0.1 (0: any free port).",
)
@click.option(
    "--poll", "poll_ms", type=click.IntRange(200, 60_000), default=1000, show_default=True, help="Page refresh, ms."
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default web browser.")
def view_command(run_dirs: tuple[Path, ...], port: int, poll_ms: int, open_browser: bool) -> None:
    """Serve a viewer of RUN_DIR... on 127.0.0.1: progress, slice table with intervals, errors and a
    sample browser, updated while a run writes the directory (start it before or during `cvbench run`).
    A folder of runs (e.g. runs/) shows every run below it. Ctrl+C stops it."""
    from cvbench.viewer.server import ViewerServer
    from cvbench.viewer.state import run_dirs_under

    paths = run_dirs_under(list(run_dirs) or [Path("runs")])
    if not paths:
        raise CvbenchError("no run directories given (cvbench view RUN_DIR...)")
    try:
        server = ViewerServer(paths, port=port, poll_ms=poll_ms)
    except OSError as exc:
        raise CvbenchError(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); pass another --port, or --port 0"
        ) from None
    for path in paths:
        note = "" if path.is_dir() else " (does not exist yet: shown when the run starts)"
        click.echo(f"run: {path}{note}")
    click.echo(f"viewer: {server.url}  (Ctrl+C to stop)", err=False)
    if open_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
