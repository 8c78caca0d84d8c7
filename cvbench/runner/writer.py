"""The samples file of a run directory: the single writer of samples.jsonl, resuming from what
is there, putting it in job order, and the content-addressed images the model saw."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cvbench.core.types import PromptImage
from cvbench.rundir.format import (
    SAMPLES_FILE,
    RunDirError,
    SampleRecord,
    image_relpath,
    iter_records,
    unique_temp_path,
    write_bytes_atomic,
)
from cvbench.runner.records import RecordWriter
from cvbench.scoring import metrics as metrics_mod

IMAGE_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def load_existing(run_dir: Path) -> tuple[list[str], int]:
    """Prepare `samples.jsonl` for a resume: drop a torn last line and error records (they are
    retried), keep the rest. Returns (finished record ids, dropped error records)."""
    path = run_dir / SAMPLES_FILE
    if not path.exists():
        return [], 0
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    kept: list[bytes] = []
    ids: list[str] = []
    seen: set[str] = set()
    dropped = 0
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            if lineno == len(lines):  # the torn final write of a crash (no newline after it)
                continue
            raise RunDirError(
                f"{path}:{lineno}: invalid JSON in the middle of the file; "
                f"move the run directory away or repair that line"
            ) from None
        rid = data.get("record_id")
        if not isinstance(rid, str):
            raise RunDirError(f"{path}:{lineno}: record without a record_id")
        if rid in seen:
            raise RunDirError(f"{path}:{lineno}: duplicate record_id {rid!r}")
        if data.get("parse_status") == "error":
            dropped += 1
            continue
        seen.add(rid)
        ids.append(rid)
        kept.append(line)
    new = b"".join(line + b"\n" for line in kept)
    if new != raw:
        write_bytes_atomic(path, new)
    return ids, dropped


def save_prompt_images(run_dir: Path, images: Sequence[PromptImage]) -> None:
    """Write each image once, content-addressed, via a temporary file and rename."""
    for image in images:
        ext = IMAGE_EXTENSIONS.get(image.mime, "bin")
        path = run_dir / image_relpath(image.sha256, ext)
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, image.data, fsync=False)  # content-addressed: a rerun rewrites a lost one


class SamplesWriter:
    """The single writer of samples.jsonl. Each record is appended the moment it is handed over
    (completion order) and flushed to the operating system at once, so a crash of the process
    loses only the records still in flight, never finished ones stuck behind a slow request.
    fsync runs at most every FSYNC_INTERVAL_S and on close (one fsync per record cost ~6 ms each,
    longer than a cached sample takes): a power loss can lose the last fraction of a second of
    records, as it can lose the response cache's last commits (SQLite WAL, synchronous=NORMAL); a
    rerun recomputes them from the cache.

    The writer keeps each line's job index, offset and length (a few ints per record, not the
    lines): `rewrite_in_job_order()` then puts a finished file into job order by copying the
    lines across, so two runs of the same command still compare line by line.

    A failed write (disk full, I/O error, read-only file system) cuts the file back to its last
    whole line, keeps `error` and calls `on_error`; later records are not written (the runner
    stops, and a rerun resumes from the cache)."""

    FSYNC_INTERVAL_S = 0.5

    def __init__(self, path: Path, secrets: Sequence[str], on_error: Callable[[], None] | None = None) -> None:
        self.path = path
        # unbuffered: nothing half-written waits in a buffer after a failure; closed by close()
        self._fh = open(path, "ab", buffering=0)  # noqa: SIM115
        self.error: OSError | None = None
        self._on_error = on_error
        self._end = self._fh.tell()  # lines already there (a resumed run) stay first
        self._start = self._end
        self.records = RecordWriter(secrets)  # shared with the threads that serialise cache hits
        self._scored: list[tuple[int, metrics_mod.ScoredRecord]] = []
        self._spans: list[tuple[int, int, int]] = []  # (job index, byte offset, byte length) of each line written
        self._last_index = -1
        self.in_job_order = True
        self._synced_at = time.monotonic()
        self._unsynced = False
        self.written = 0

    def put(self, index: int, record: SampleRecord | tuple[str, metrics_mod.ScoredRecord] | None) -> None:
        """Hand over job `index`'s record (None: nothing to write, e.g. resumed; a tuple: the
        record already made into its line by `written_record`)."""
        self.put_many([(index, record)])

    def put_many(self, items: Sequence[tuple[int, SampleRecord | tuple[str, metrics_mod.ScoredRecord] | None]]) -> None:
        """Append several jobs' records at once (one write and one flush)."""
        if self.error is not None:
            return
        chunks: list[bytes] = []
        state = (self._end, len(self._spans), self._last_index, self.in_job_order)
        for index, rec in items:
            if rec is None:
                continue
            line, scored = rec if isinstance(rec, tuple) else self.records.written(rec)
            data = (line + "\n").encode("utf-8")
            self._spans.append((index, self._end, len(data)))
            self._scored.append((index, scored))
            self._end += len(data)
            if index < self._last_index:
                self.in_job_order = False
            self._last_index = max(self._last_index, index)
            chunks.append(data)
        if chunks:
            pending = memoryview(b"".join(chunks))
            try:
                while pending:
                    pending = pending[self._fh.write(pending) or 0 :]
            except OSError as exc:
                self._fail(exc, state)
                return
            self._unsynced = True
            self.written += len(chunks)
        if self._unsynced and time.monotonic() - self._synced_at >= self.FSYNC_INTERVAL_S:
            self.sync()

    def _fail(self, exc: OSError, state: tuple[int, int, int, bool] | None) -> None:
        if state is not None:  # forget the lines of the failed write and cut away what part of them landed
            self._end, n_spans, self._last_index, self.in_job_order = state
            del self._spans[n_spans:], self._scored[n_spans:]
            with contextlib.suppress(OSError):  # iter_records and load_existing skip a torn last line
                os.ftruncate(self._fh.fileno(), self._end)
        self.error = OSError(exc.errno, exc.strerror or str(exc), str(self.path))
        if self._on_error is not None:
            self._on_error()

    @property
    def scored(self) -> list[metrics_mod.ScoredRecord]:
        """What the metrics read of each line written, in job order."""
        pairs = self._scored if self.in_job_order else sorted(self._scored, key=lambda pair: pair[0])
        return [scored for _, scored in pairs]

    def sync(self) -> None:
        if self._unsynced and self.error is None:
            try:
                os.fsync(self._fh.fileno())
            except OSError as exc:
                self._fail(exc, None)
            self._unsynced = False
        self._synced_at = time.monotonic()

    def close(self) -> None:
        if not self._fh.closed:
            self.sync()
        self._fh.close()

    def rewrite_in_job_order(self) -> None:
        """After `close()`: rewrite the file with this writer's lines in job order (lines that were
        there before it opened stay first), streaming line by line; atomic (temp file + rename)."""
        if self.in_job_order:
            return
        tmp = unique_temp_path(self.path)
        try:
            with open(self.path, "rb") as src, open(tmp, "wb") as dst:
                dst.write(src.read(self._start))  # lines there before this writer opened (none when the runner asks)
                for _, offset, length in sorted(self._spans):
                    src.seek(offset)
                    dst.write(src.read(length))
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)  # the file in completion order stays whole
            raise OSError(exc.errno, exc.strerror or str(exc), str(self.path)) from exc
        self.in_job_order = True


def reorder_samples(run_dir: Path, order: Sequence[str]) -> None:
    """Rewrite samples.jsonl in job order (after a resume the retried records sit at the end)."""
    path = run_dir / SAMPLES_FILE
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    by_id = {json.loads(ln)["record_id"]: ln for ln in lines}
    rank = {rid: i for i, rid in enumerate(order)}
    ordered = sorted(by_id, key=lambda rid: (rank.get(rid, len(rank)), rid))
    if ordered == [json.loads(ln)["record_id"] for ln in lines]:
        return
    write_bytes_atomic(path, "".join(by_id[rid] + "\n" for rid in ordered).encode("utf-8"))


def read_records(run_dir: Path) -> list[SampleRecord]:
    return list(iter_records(run_dir))
