"""Checking and repairing a response cache file (`cvbench cache check` / `cvbench cache repair`).

`inspect_cache` tells a healthy cvbench cache from a damaged one (SQLite's own
`integrity_check`, or the cheaper `quick_check` each time a cache opens), from a foreign SQLite
file and from a cache written by a newer cvbench. `repair_cache` copies every row that can still be
read and decoded into a new file (cache_repair.py).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from cvbench.runner.cache_codec import CACHE_SCHEMA, response_from_json

SQLITE_HEADER = b"SQLite format 3\x00"
OWN_TABLES = frozenset({"responses", "meta", "prompt_digests"})
RESPONSE_COLUMNS = frozenset({"key", "model_id", "created", "response"})
MAX_PROBLEMS = 10  # integrity_check lines shown
PROBE_LIMIT = 10_000  # rowids stepped over one by one past a damaged part of the table, at most


@dataclass(frozen=True)
class CacheHealth:
    path: Path
    kind: str  # "ok" | "new" (empty, no tables yet) | "damaged" | "foreign" | "newer"
    problems: tuple[str, ...]
    schema: int | None = None
    entries: int | None = None

    @property
    def usable(self) -> bool:
        return self.kind in ("ok", "new")

    def summary(self) -> str:
        if self.kind == "ok":
            return f"{self.path}: ok (schema {self.schema}, {self.entries} entries)"
        if self.kind == "new":
            return f"{self.path}: ok (empty, no entries yet)"
        return f"{self.path}: " + "; ".join(self.problems)


def choices(path: Path, kind: str = "damaged") -> str:
    """What the user can do about an unusable cache file (appended to the error that refuses it)."""
    check = f"`cvbench cache check --cache {path}` shows what is wrong"
    if kind != "damaged":  # repair salvages a damaged cvbench cache only
        return check
    return f"{check}; `cvbench cache repair --cache {path}` salvages its readable entries (the damaged file is kept)"


def _read_header(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(len(SQLITE_HEADER))


def inspect_cache(path: str | Path, *, full: bool = True) -> CacheHealth:
    """What state the cache file at `path` is in; `full` runs integrity_check (every index too),
    otherwise quick_check. Reads only (a missing or empty file is "new")."""

    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return CacheHealth(path, "new", ())
    if _read_header(path) != SQLITE_HEADER:
        return CacheHealth(path, "foreign", ("file is not a database",))  # not even the SQLite header
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60.0)
    except sqlite3.DatabaseError as exc:
        return CacheHealth(path, "damaged", (f"cannot open it ({exc})",))
    try:
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            return CacheHealth(path, "damaged", (f"its table list is unreadable ({exc})",))
        if not tables or (tables <= OWN_TABLES and not {"responses", "meta"} <= tables):
            return CacheHealth(path, "new", ())  # empty, or begun by cvbench (the prompt digests opened first)
        if "responses" not in tables or "meta" not in tables:
            listed = ", ".join(sorted(tables))
            return CacheHealth(
                path, "foreign", (f"an SQLite file that is not a cvbench response cache (tables: {listed})",)
            )
        try:
            columns = {r[1] for r in db.execute("PRAGMA table_info(responses)")}
            row = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        except sqlite3.DatabaseError as exc:
            return CacheHealth(path, "damaged", (f"its schema is unreadable ({exc})",))
        if not columns >= RESPONSE_COLUMNS:
            return CacheHealth(
                path,
                "foreign",
                ("its 'responses' table lacks the columns " + ", ".join(sorted(RESPONSE_COLUMNS - columns)),),
            )
        try:
            schema = int(row[0]) if row is not None else None
        except (TypeError, ValueError):
            schema = None
        if schema is None:
            return CacheHealth(path, "foreign", ("no readable schema version in its 'meta' table",))
        if schema > CACHE_SCHEMA:
            newer = (
                f"written by a newer cvbench (cache schema {schema}; this version reads schema {CACHE_SCHEMA} "
                f"and older): upgrade cvbench or pass another --cache"
            )
            return CacheHealth(path, "newer", (newer,), schema)
        try:
            pragma = "integrity_check" if full else "quick_check"
            report = [str(r[0]) for r in db.execute(f"PRAGMA {pragma}({MAX_PROBLEMS})")]
        except sqlite3.DatabaseError as exc:
            report = [str(exc)]
        if report != ["ok"]:
            return CacheHealth(path, "damaged", tuple(f"damaged: {line}" for line in report), schema)
        try:
            entries = int(db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
            undecodable = _count_undecodable(db) if full else 0
        except sqlite3.DatabaseError as exc:
            return CacheHealth(path, "damaged", (f"damaged: {exc}",), schema)
        if undecodable:
            problem = f"damaged: {undecodable} of {entries} entries hold a response that no longer decodes"
            return CacheHealth(path, "damaged", (problem,), schema, entries)
        return CacheHealth(path, "ok", (), schema, entries)
    finally:
        db.close()


def _decodes(key: object, model_id: object, payload: object) -> bool:
    if not (isinstance(key, str) and isinstance(model_id, str) and isinstance(payload, str)):
        return False
    try:
        response_from_json(payload)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def _count_undecodable(db: sqlite3.Connection) -> int:
    return sum(not _decodes(k, m, p) for k, m, p in db.execute("SELECT key, model_id, response FROM responses"))


def salvage_rows(db: sqlite3.Connection) -> tuple[list[tuple[str, str, float, str]], int]:
    """Every row of `responses` that reads and decodes, walking the table by rowid so that a damaged
    stretch is stepped over instead of ending the scan."""
    try:
        top = db.execute("SELECT MAX(rowid) FROM responses").fetchone()[0]
    except sqlite3.DatabaseError:
        top = None
    rows: list[tuple[str, str, float, str]] = []
    bad = 0
    last = 0
    misses = 0
    while True:
        try:
            cursor = db.execute(
                "SELECT rowid, key, model_id, created, response FROM responses WHERE rowid > ? ORDER BY rowid", (last,)
            )
            for rowid, key, model_id, created, payload in cursor:
                last = rowid
                misses = 0
                if _decodes(key, model_id, payload) and isinstance(created, (int, float)):
                    rows.append((key, model_id, float(created), payload))
                else:
                    bad += 1
            return rows, bad
        except sqlite3.DatabaseError:
            # the scan broke past `last`: step over one rowid (a damaged page holds a run of them)
            last += 1
            bad += 1
            misses += 1
            if (top is not None and last > top) or misses > PROBE_LIMIT:
                return rows, bad
