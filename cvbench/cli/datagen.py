"""First-use generation of the synthetic sets, with a progress bar (files written of files expected)."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def expected_files(task: str) -> int | None:
    """How many files the shipped manifest lists for a built-in synthetic set (None: not built in)."""
    from cvbench.tasks.synthetic.manifest import SHIPPED_MANIFEST

    try:
        sets = json.loads(SHIPPED_MANIFEST.read_text(encoding="utf-8")).get("sets", {})
    except (OSError, ValueError):
        return None
    entry = sets.get(task)
    return len(entry) if isinstance(entry, dict) else None


def _count_staged(folder: Path) -> int:
    return sum(
        1
        for staging in folder.parent.glob(f".{folder.name}.generating-*")
        for path in staging.rglob("*")
        if path.is_file()
    )


def _generate(spec: Any, data_dir: Path | None, error: list[BaseException]) -> None:
    from cvbench.tasks.loading import ensure_task_data

    try:
        ensure_task_data(spec, data_dir)
    except BaseException as exc:  # re-raised in the main thread
        error.append(exc)


def prepare_synthetic_data(tasks: Sequence[str], data_dir: Path | None, show: bool | None) -> None:
    """Generate each missing synthetic set now (instead of inside the run) so its progress shows."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from cvbench.tasks.loading import ensure_task_data, task_data_dir
    from cvbench.tasks.registry import get_task

    console = Console(stderr=True)
    for name in tasks:
        spec = get_task(name)
        if not spec.synthetic:
            continue
        folder = task_data_dir(spec, data_dir)
        if (folder / spec.data_file).is_file():
            continue
        total = expected_files(spec.name)
        enabled = console.is_terminal if show is None else show
        if not enabled:
            print(f"generating {spec.name} in {folder} (first use) ...", file=sys.stderr, flush=True)
            ensure_task_data(spec, data_dir)
            continue
        error: list[BaseException] = []
        thread = threading.Thread(target=_generate, args=(spec, data_dir, error), name="cvbench-synth", daemon=True)
        columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task(f"generating {spec.name} (first use)", total=total)
            thread.start()
            while thread.is_alive():
                thread.join(0.2)
                bar.update(task, completed=_count_staged(folder))
            bar.update(task, completed=total)
        if error:
            raise error[0]
