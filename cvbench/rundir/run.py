"""A run directory read as a whole: typed config and results, records on demand, images by digest."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cvbench.rundir.config import RunConfig, read_config
from cvbench.rundir.io import CONFIG_FILE, IMAGES_DIR, RunDirError, is_sha256
from cvbench.rundir.records import SampleRecord, iter_records
from cvbench.rundir.results import Results, read_results


@dataclass(frozen=True)
class RunData:
    path: Path
    config: RunConfig
    results: Results

    def records(self) -> Iterator[SampleRecord]:
        return iter_records(self.path)

    def image_path(self, sha256: str) -> Path | None:
        if not is_sha256(sha256):  # the name becomes a path: nothing else may reach the filesystem
            return None
        folder = self.path / IMAGES_DIR / sha256[:2]
        for ext in ("png", "jpg", "jpeg", "webp"):
            p = folder / f"{sha256}.{ext}"
            if p.exists():
                return p
        return None


def load_run(run_dir: str | os.PathLike[str]) -> RunData:
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDirError(f"{path}: not a directory")
    return RunData(path=path, config=read_config(path), results=read_results(path))


def find_run_dirs(paths: list[Path] | tuple[Path, ...]) -> list[Path]:
    """Run directories at or below each path (the default layout is runs/<model>/<tasks>/), in
    the order given, each folder sorted by name. A path with no run below it is an error."""
    found: list[Path] = []
    for root in paths:
        root = Path(root)
        if (root / CONFIG_FILE).is_file():
            found.append(root)
            continue
        if not root.is_dir():
            raise RunDirError(f"{root}: not a directory")
        below = sorted(p.parent for p in root.rglob(CONFIG_FILE) if not _hidden(p.relative_to(root)))
        if not below:
            raise RunDirError(f"{root / CONFIG_FILE}: not found, and no run directory below {root}")
        found.extend(below)
    return list(dict.fromkeys(found))


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)
