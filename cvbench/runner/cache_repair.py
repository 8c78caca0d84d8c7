"""`cvbench cache repair`: copy every row of a damaged response cache that can still be read and
decoded into a new file, and keep the damaged one beside it under another name. The user's file is
never dropped, and a damaged row is never served as an answer.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cvbench.runner.cache import ResponseCache
from cvbench.runner.cache_check import inspect_cache, salvage_rows


class CacheRepairError(RuntimeError):
    pass


@dataclass(frozen=True)
class RepairReport:
    path: Path
    salvaged: int
    unreadable: int  # rows stepped over: unreadable pages, or a payload that no longer decodes
    kept_as: Path  # the damaged file, renamed


def repair_cache(path: str | Path) -> RepairReport:
    """Copy the readable rows of a damaged cache into a new file at `path`; the damaged file is
    renamed to `<path>.damaged-<UTC time>` (its WAL alongside), never deleted."""
    path = Path(path)
    health = inspect_cache(path)
    if health.kind in ("ok", "new"):
        raise CacheRepairError(f"{path}: the cache is healthy; nothing to repair")
    if health.kind in ("foreign", "newer"):
        raise CacheRepairError(
            f"{health.summary()}; `cache repair` only salvages a damaged cvbench cache: "
            f"move the file away or pass another --cache"
        )
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.repair.") as work:
        copy = Path(work) / "damaged.db"  # read a copy: opening the damaged file itself could rewrite its WAL
        shutil.copyfile(path, copy)
        if Path(f"{path}-wal").exists():
            shutil.copyfile(f"{path}-wal", f"{copy}-wal")
        try:
            db = sqlite3.connect(str(copy), timeout=60.0)
            # lets SQLite read a file shorter than its header says (a truncated copy) instead of refusing it
            db.execute("PRAGMA writable_schema = ON")
            try:
                rows, bad = salvage_rows(db)
            finally:
                db.close()
        except sqlite3.DatabaseError:
            rows, bad = [], 0
        fresh = Path(work) / "repaired.db"
        with ResponseCache(fresh, check=False) as cache:
            cache.insert_rows(rows)
        kept = path.with_name(f"{path.name}.damaged-{stamp}")
        path.rename(kept)
        for suffix in ("-wal", "-shm"):
            side = Path(f"{path}{suffix}")
            if side.exists():
                side.rename(Path(f"{kept}{suffix}"))
        shutil.move(str(fresh), str(path))
    return RepairReport(path, len(rows), bad, kept)
