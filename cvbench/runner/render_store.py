"""The render store: rendered prompts kept on disk, shared by every run and model, so a prompt is
rendered once for all models that would receive the same pixels and text.

Key: `prompt_cache.prompt_key` (sample, task, setting, source location, every image file's
identity, the dataset fingerprint, the prompt settings with the image policy and the provider's
image contract, the model's capabilities, and the code/pixel-library identity). Two models with
the same capabilities and image policy on the same task and settings share every entry; a model
that sees other pixels (another policy, stacked views) gets other keys.

Value: the prompt's text fields as JSON and its images' encoded bytes and pixel identities
(exactly what the model receives, so a stored prompt has the same content digest, request key
and record as a freshly rendered one). Prompts with native regions (decoded arrays and masks)
are not stored: rendering them is decoding, which is what the store would have to do again.

Bounded: entries carry their size and last use; when the file's entries exceed `max_bytes`
the least recently used are deleted down to 90% of it. Crash-safe: SQLite in WAL mode, one
transaction per entry, and a SHA-256 of each value checked on every read; a value that fails
the check is deleted and treated as a miss (the prompt is rendered again), never served.

Location: `$CVBENCH_RENDER_STORE` (a file path, or `off`), else `renders.sqlite` beside the
response cache. Size limit: `$CVBENCH_RENDER_STORE_MAX_MB` (default 4096).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvbench.core.types import Option, Prompt, PromptImage, RenderedPrompt, TaskFacts

SCHEMA = "cvbench.render-store/2"
BUSY_TIMEOUT_S = 60.0
DEFAULT_MAX_BYTES = 4096 * 1024 * 1024
EVICT_TO = 0.9
RESUM_EVERY = 64  # puts between re-reading the total size (other processes write too)
_HEADER = struct.Struct(">I")


class RenderStoreError(RuntimeError):
    pass


def render_store_path(cache_path: str | Path | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """Where the store lives: `$CVBENCH_RENDER_STORE` (`off` disables it), else beside the
    response cache; None when there is neither (`--no-cache` without the variable)."""
    env = (environ if environ is not None else os.environ).get("CVBENCH_RENDER_STORE")
    if env:
        return None if env.strip().lower() == "off" else Path(env).expanduser()
    return Path(cache_path).expanduser().with_name("renders.sqlite") if cache_path is not None else None


def max_bytes_from_env(environ: Mapping[str, str] | None = None) -> int:
    raw = (environ if environ is not None else os.environ).get("CVBENCH_RENDER_STORE_MAX_MB")
    if not raw:
        return DEFAULT_MAX_BYTES
    try:
        mb = int(raw)
    except ValueError:
        raise RenderStoreError(f"CVBENCH_RENDER_STORE_MAX_MB must be a whole number of MB, got {raw!r}") from None
    if mb < 1:
        raise RenderStoreError(f"CVBENCH_RENDER_STORE_MAX_MB must be >= 1, got {mb}")
    return mb * 1024 * 1024


def storable(rendered: RenderedPrompt) -> bool:
    return rendered.prompt.native is None


def encode_prompt(rendered: RenderedPrompt, protocol: Any) -> bytes:
    """The stored value: a length-prefixed JSON header, then the images' bytes in order."""
    prompt = rendered.prompt
    header = {
        "schema": SCHEMA,
        "sample_id": prompt.sample_id,
        "text": prompt.text,
        "system": prompt.system,
        "options": [[o.letter, o.text] for o in prompt.options],
        "mode": prompt.mode,
        "setting": prompt.setting,
        "task": [prompt.task.benchmark, prompt.task.task_type] if prompt.task is not None else None,
        "answer": rendered.answer,
        "protocol": protocol,
        "images": [[i.mime, i.width, i.height, i.label, i.pixel_identity, len(i.data)] for i in prompt.images],
    }
    head = json.dumps(header, ensure_ascii=False, sort_keys=True).encode()
    return b"".join([_HEADER.pack(len(head)), head, *(i.data for i in prompt.images)])


def decode_prompt(value: bytes) -> RenderedPrompt:
    (n,) = _HEADER.unpack_from(value, 0)
    header = json.loads(value[_HEADER.size : _HEADER.size + n])
    if header.get("schema") != SCHEMA:
        raise RenderStoreError(f"unknown render-store entry schema {header.get('schema')!r}")
    pos = _HEADER.size + n
    images = []
    for mime, width, height, label, identity, size in header["images"]:
        images.append(PromptImage(bytes(value[pos : pos + size]), mime, width, height, label, identity))
        pos += size
    if pos != len(value):
        raise RenderStoreError("render-store entry has trailing bytes")
    task = header["task"]
    prompt = Prompt(
        sample_id=header["sample_id"],
        text=header["text"],
        images=tuple(images),
        options=tuple(Option(letter, text) for letter, text in header["options"]),
        mode=header["mode"],
        setting=header["setting"],
        system=header["system"],
        native=None,
        task=TaskFacts(task[0], task[1]) if task is not None else None,
    )
    return RenderedPrompt(prompt, header["answer"], header["protocol"])


@dataclass(frozen=True)
class StoreStats:
    path: Path
    entries: int
    bytes: int
    max_bytes: int


class RenderStore:
    """One store file; thread-safe, and several processes may share it (SQLite WAL)."""

    def __init__(self, path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = Path(path).expanduser()
        self.max_bytes = max_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS renders (key TEXT PRIMARY KEY, value BLOB NOT NULL, "
                "checksum TEXT NOT NULL, size INTEGER NOT NULL, used REAL NOT NULL)"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS renders_used ON renders (used)")
        except sqlite3.DatabaseError as exc:
            raise RenderStoreError(
                f"render store {self.path}: {exc}; delete the file or set CVBENCH_RENDER_STORE"
            ) from None
        # the stored bytes, summed at the first put: SUM(size) reads every row's overflow pages
        # (size follows the value), the whole file, which a run that only reads never needs
        self._total: int | None = None
        self._puts = 0

    def _sum(self) -> int:
        return int(self._db.execute("SELECT COALESCE(SUM(size), 0) FROM renders").fetchone()[0])

    def get(self, key: str) -> RenderedPrompt | None:
        with self._lock:
            row = self._db.execute("SELECT value, checksum FROM renders WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            value, checksum = bytes(row[0]), row[1]
            if hashlib.sha256(value).hexdigest() != checksum:
                self._db.execute("DELETE FROM renders WHERE key = ?", (key,))
                return None
            self._db.execute("UPDATE renders SET used = ? WHERE key = ?", (time.time(), key))
        try:
            return decode_prompt(value)
        except (RenderStoreError, ValueError, KeyError, struct.error):
            with self._lock:
                self._db.execute("DELETE FROM renders WHERE key = ?", (key,))
            return None

    def put(self, key: str, prompt: RenderedPrompt, protocol: Any) -> bool:
        """Store a rendered prompt; False (nothing stored) for prompts with native regions or
        larger than the whole store."""
        if not storable(prompt):
            return False
        value = encode_prompt(prompt, protocol)
        if len(value) > self.max_bytes:
            return False
        checksum = hashlib.sha256(value).hexdigest()
        with self._lock:
            total = self._sum() if self._total is None else self._total
            self._db.execute(
                "INSERT OR REPLACE INTO renders (key, value, checksum, size, used) VALUES (?, ?, ?, ?, ?)",
                (key, value, checksum, len(value), time.time()),
            )
            self._total = total = total + len(value)
            self._puts += 1
            if self._puts % RESUM_EVERY == 0 or total > self.max_bytes:
                self._total = total = self._sum()
            if total > self.max_bytes:
                self._evict(total)
        return True

    def _evict(self, total: int) -> None:
        target = int(self.max_bytes * EVICT_TO)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            freed = 0
            over = total - target
            victims = []
            for key, size in self._db.execute("SELECT key, size FROM renders ORDER BY used ASC"):
                if freed >= over:
                    break
                victims.append((key,))
                freed += int(size)
            self._db.executemany("DELETE FROM renders WHERE key = ?", victims)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._total = self._sum()

    def stats(self) -> StoreStats:
        with self._lock:
            n, size = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM renders").fetchone()
        return StoreStats(self.path, int(n), int(size), self.max_bytes)

    def clear(self) -> int:
        with self._lock:
            n = self._db.execute("DELETE FROM renders").rowcount
            self._total = 0
        with self._lock:
            self._db.execute("VACUUM")
        return int(n)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_render_store(cache_path: str | Path | None, environ: Mapping[str, str] | None = None) -> RenderStore | None:
    """The run's store (see `render_store_path`), or None when it is off."""
    path = render_store_path(cache_path, environ)
    return RenderStore(path, max_bytes_from_env(environ)) if path is not None else None


def store_report(cache_path: str | Path | None, clear: bool = False) -> str:
    """`cvbench cache renders`: the store's location, entries, size and limit; cleared first with `clear`."""
    path = render_store_path(cache_path)
    if path is None:
        return "render store: off (CVBENCH_RENDER_STORE=off)"
    if not path.exists():
        return f"{path}: no render store yet (0 prompts)"
    store = RenderStore(path, max_bytes_from_env())
    try:
        removed = store.clear() if clear else None
        stats = store.stats()
    finally:
        store.close()
    line = (
        f"{stats.path}: {stats.entries} rendered prompts, {stats.bytes / 1e6:.2f} MB "
        f"(limit {stats.max_bytes / 1e6:.0f} MB, least recently used evicted first)"
    )
    return (f"{path}: removed {removed} rendered prompts\n" if removed is not None else "") + line
