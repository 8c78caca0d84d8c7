"""The response cache: SQLite in WAL mode, keyed by `Request.cache_key()`.

Every successful response is committed the moment it arrives (one short autocommit
statement), so a crash loses nothing already answered and a rerun re-sends nothing. Failed
responses (`Response.error`) are refused: an error is never replayed as an answer. Several
processes may share one file: WAL lets readers run beside one writer, and a busy timeout
makes concurrent writers wait instead of failing.

A file that is there already is checked when it opens (SQLite's quick_check, the schema version,
that it is a cvbench cache at all): a damaged, foreign or newer file is refused with the choices
(cvbench/runner/cache_check.py), never used and never replaced by an empty cache. A read or write
that fails later (a page damaged while running, a full disk) is a CacheError naming the file.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from typing_extensions import Self

from cvbench.core.types import Response
from cvbench.runner.cache_check import choices, inspect_cache
from cvbench.runner.cache_codec import (
    CACHE_SCHEMA,
    response_from_json,
    response_to_json,
)

BUSY_TIMEOUT_S = 60.0
LOOKUP_CHUNK = 500  # keys per `IN (...)` query: below SQLite's old 999-variable limit


def rows_for_keys(db: sqlite3.Connection, query: str, keys: Sequence[str]) -> list[tuple[str, str]]:
    """Run `query` (with `{marks}` where the `IN (...)` placeholders go) over the distinct `keys`,
    LOOKUP_CHUNK at a time; the rows of all chunks."""
    rows: list[tuple[str, str]] = []
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), LOOKUP_CHUNK):
        part = unique[start : start + LOOKUP_CHUNK]
        rows.extend(db.execute(query.format(marks=",".join("?" * len(part))), part))
    return rows


class CacheError(RuntimeError):
    pass


class CacheUnusableError(CacheError):
    """An existing cache file that is refused at open; `choices` says what the user can do."""

    def __init__(self, message: str, choices: str) -> None:
        super().__init__(message)
        self.choices = choices


@dataclass(frozen=True)
class ModelCacheStats:
    model_id: str
    entries: int
    bytes: int


@dataclass(frozen=True)
class CacheStats:
    path: Path
    entries: int
    file_bytes: int  # database file plus its WAL
    per_model: tuple[ModelCacheStats, ...]


class ResponseCache:
    """A SQLite response cache. Thread-safe; open one per process."""

    def __init__(self, path: str | Path, check: bool = True) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        if check:
            health = inspect_cache(self.path, full=False)
            if not health.usable:
                raise CacheUnusableError(
                    f"{self.path}: not a usable cvbench response cache ({'; '.join(health.problems)})",
                    choices(self.path, health.kind),
                )
        try:
            self._db = sqlite3.connect(
                str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise CacheError(f"{self.path}: could not switch the response cache to WAL mode (got {mode!r})")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses ("
                " key TEXT PRIMARY KEY, model_id TEXT NOT NULL, created REAL NOT NULL, response TEXT NOT NULL)"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS responses_model ON responses(model_id)")
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(CACHE_SCHEMA),))
        except sqlite3.DatabaseError as exc:
            raise CacheError(f"{self.path}: not a usable cvbench response cache ({exc})") from exc

    def _failed(self, exc: Exception) -> CacheError:
        if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc):
            return CacheError(f"{self.path}: cannot write the response cache ({exc}); free space and rerun")
        return CacheError(f"{self.path}: the response cache failed ({type(exc).__name__}: {exc}); {choices(self.path)}")

    def _decode(self, payload: object) -> Response:
        try:
            if not isinstance(payload, str):
                raise TypeError(f"payload of type {type(payload).__name__}")
            return response_from_json(payload)
        except (ValueError, TypeError, AttributeError) as exc:  # a damaged row is never served as an answer
            raise self._failed(exc) from exc

    def get(self, key: str) -> Response | None:
        try:
            with self._lock:
                row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise self._failed(exc) from exc
        return self._decode(row[0]) if row else None

    def get_many(self, keys: Sequence[str]) -> dict[str, Response]:
        """The cached responses of `keys` (absent keys are missing from the result): one query per
        LOOKUP_CHUNK keys instead of one per key."""
        try:
            with self._lock:
                rows = rows_for_keys(self._db, "SELECT key, response FROM responses WHERE key IN ({marks})", keys)
        except sqlite3.DatabaseError as exc:
            raise self._failed(exc) from exc
        return {key: self._decode(payload) for key, payload in rows}

    def put(self, key: str, model_id: str, response: Response) -> None:
        """Store a successful response (committed at once). Refuses failures."""
        if response.error is not None:
            raise CacheError("refusing to cache a failed response")
        payload = response_to_json(response)
        try:
            with self._lock:
                self._db.execute(
                    "INSERT OR REPLACE INTO responses (key, model_id, created, response) VALUES (?, ?, ?, ?)",
                    (key, model_id, time.time(), payload),
                )
        except sqlite3.DatabaseError as exc:
            raise self._failed(exc) from exc

    def insert_rows(self, rows: Sequence[tuple[str, str, float, str]]) -> None:
        """Store (key, model_id, created, response payload) rows as they are, in one transaction
        (`cvbench cache repair` moving salvaged rows)."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO responses (key, model_id, created, response) VALUES (?, ?, ?, ?)", rows
            )
            self._db.execute("COMMIT")

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM responses WHERE key = ?", (key,)).fetchone() is not None

    def stats(self) -> CacheStats:
        with self._lock:
            rows = self._db.execute(
                "SELECT model_id, COUNT(*), SUM(LENGTH(response) + LENGTH(key)) FROM responses "
                "GROUP BY model_id ORDER BY model_id"
            ).fetchall()
        per_model = tuple(ModelCacheStats(m, int(n), int(b or 0)) for m, n, b in rows)
        size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())
        return CacheStats(self.path, sum(m.entries for m in per_model), size, per_model)

    def clear(self, model_id: str | None = None) -> int:
        """Delete all entries, or those of one model id; returns how many were removed."""
        with self._lock:
            if model_id is None:
                n = self._db.execute("DELETE FROM responses").rowcount
                # the prompt digests (cvbench.runner.prompt_cache) are model-independent: only a full clear drops them
                has_digests = self._db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'prompt_digests'"
                ).fetchone()
                digests = self._db.execute("DELETE FROM prompt_digests").rowcount if has_digests else 0
            else:
                n = self._db.execute("DELETE FROM responses WHERE model_id = ?", (model_id,)).rowcount
                digests = 0
            if n or digests:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._db.execute("VACUUM")
        return int(n)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
