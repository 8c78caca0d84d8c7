"""What the viewer shows of one run directory, read incrementally while the run writes it.

`RunWatch.refresh()` reads only the bytes appended to samples.jsonl since the last call (starting
over when the file was replaced, as the runner does when it puts a finished run in order) and
recomputes the metrics only when something changed. Everything returned is JSON-ready.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from cvbench.core.candidates import sort_settings
from cvbench.rundir.config import read_config
from cvbench.rundir.format import CONFIG_FILE, RESULTS_FILE, SAMPLES_FILE, RunDirError, SampleRecord, is_sha256
from cvbench.rundir.results import read_results
from cvbench.runner.runlock import LOCK_FILE
from cvbench.scoring import metrics

T = TypeVar("T")
ERRORS_SHOWN = 50
SAMPLE_FIELDS = (
    "record_id",
    "task",
    "setting",
    "sample_id",
    "slices",
    "answer",
    "parsed",
    "parse_status",
    "parse_reason",
    "correct",
    "mode",
    "response",
    "prompt_text",
    "options",
    "image_sha256",
    "error",
    "invalid",
    "cached",
    "latency_s",
)


def run_dirs_under(paths: list[Path]) -> list[Path]:
    """Each path as given when it is (or will be) a run directory; a folder of runs (e.g. `runs/`)
    expands to every run directory below it."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir() or (path / CONFIG_FILE).exists() or (path / SAMPLES_FILE).exists():
            found.append(path)
            continue
        below = sorted(p.parent for p in path.rglob(CONFIG_FILE))
        found.extend(below or [path])
    return list(dict.fromkeys(found))


def is_locked(run_dir: Path) -> bool:
    """Whether a process holds the run directory's writer lock (a run in progress)."""
    import fcntl

    path = run_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _read_typed(path: Path, read: Callable[[Path], T]) -> tuple[T | None, str | None]:
    """The typed file (config.json or results.json) through its one reader, or None while it does
    not exist yet; a file that does not read is shown as a problem, not hidden (the runner replaces
    both atomically, so a half-written file is never seen)."""
    if not path.exists():
        return None, None
    try:
        return read(path.parent), None
    except (RunDirError, OSError) as exc:
        return None, str(exc)


def _metric_row(name: str, m: dict[str, Any], level: int) -> dict[str, Any]:
    return {
        "name": name,
        "level": level,
        "accuracy": m.get("accuracy"),
        "ci": m.get("ci"),
        "n": m.get("n"),
        "chance": m.get("chance"),
        "unparsed": m.get("unparsed", 0),
        "errors": m.get("errors", 0),
        "invalid": m.get("invalid", 0),
    }


def slice_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each evaluation (settings in the order 4, 8, 12, all) and its slices, as table rows."""
    evaluations = results.get("evaluations") or {}
    by_task: dict[str, list[str]] = {}
    for key in evaluations:
        task, _, setting = key.rpartition("@")
        by_task.setdefault(task, []).append(setting)
    rows = []
    for task, settings in by_task.items():
        for setting in sort_settings(settings):
            key = f"{task}@{setting}"
            ev = evaluations[key]
            rows.append(_metric_row(key, ev.get("overall") or {}, 0))
            rows.extend(_metric_row(name, m, 1) for name, m in (ev.get("slices") or {}).items())
    return rows


@dataclass
class RunWatch:
    """One run directory, followed as it grows."""

    path: Path
    records: list[SampleRecord] = field(default_factory=list)
    _offset: int = 0
    _inode: int | None = None
    _partial: bytes = b""
    _metrics: dict[str, Any] | None = None
    _metrics_count: int = -1
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _read_new(self) -> bool:
        path = self.path / SAMPLES_FILE
        try:
            stat = path.stat()
        except OSError:
            changed = bool(self.records)
            self.records, self._offset, self._partial, self._inode = [], 0, b"", None
            return changed
        if stat.st_ino != self._inode or stat.st_size < self._offset:  # replaced (put in order) or truncated
            self.records, self._offset, self._partial, self._inode = [], 0, b"", stat.st_ino
        if stat.st_size == self._offset:
            return False
        with open(path, "rb") as fh:
            fh.seek(self._offset)
            data = fh.read(stat.st_size - self._offset)
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()  # an unfinished last line waits for its newline
        by_id = {r.record_id: i for i, r in enumerate(self.records)}
        for line in lines:
            if not line.strip():
                continue
            try:
                record = SampleRecord.from_dict(json.loads(line))
            except (ValueError, TypeError):
                continue  # a line no reader accepts; `cvbench report` names it
            if not all(is_sha256(s) for s in record.image_sha256):
                continue
            if record.record_id in by_id:  # a retried error record: the newer line wins
                self.records[by_id[record.record_id]] = record
            else:
                by_id[record.record_id] = len(self.records)
                self.records.append(record)
        return True

    def refresh(self) -> None:
        with self._lock:
            self._read_new()

    def snapshot(self) -> dict[str, Any]:
        """Progress, slice table, errors: the run as it is now."""
        with self._lock:
            self._read_new()
            typed_config, config_problem = _read_typed(self.path / CONFIG_FILE, read_config)
            typed_results, results_problem = _read_typed(self.path / RESULTS_FILE, read_results)
            config = typed_config.to_json() if typed_config is not None else {}
            results = typed_results.to_json() if typed_results is not None else None
            live = is_locked(self.path)
            table: dict[str, Any] | None = results
            if results is None or live or not results.get("status"):
                table = self._live_metrics(config)
            model = config.get("model") or {}
            run = (results or {}).get("run") or {}
            done = len(self.records)
            expected = run.get("expected_records") if not live else None
            errors = [r for r in self.records if r.parse_status in ("error", "invalid")]
            return {
                "path": str(self.path),
                "exists": self.path.is_dir(),
                "problems": [p for p in (config_problem, results_problem) if p],
                "model": model.get("spec") or model.get("id"),
                "tasks": config.get("tasks") or [],
                "live": live,
                "status": "running"
                if live
                else ((results or {}).get("status") or ("waiting" if not config else "stopped")),
                "done": done,
                "expected": expected,
                "correct": sum(1 for r in self.records if r.correct),
                "error_count": sum(1 for r in self.records if r.parse_status == "error"),
                "invalid_count": sum(1 for r in self.records if r.parse_status == "invalid"),
                "method": ((table or {}).get("intervals") or {}).get("method"),
                "slices": slice_rows(table or {}),
                "errors": [
                    {
                        "record_id": r.record_id,
                        "kind": (r.error or {}).get("kind") if r.parse_status == "error" else "invalid",
                        "message": (r.error or {}).get("message") if r.parse_status == "error" else r.invalid,
                    }
                    for r in errors[-ERRORS_SHOWN:]
                ],
            }

    def _live_metrics(self, config: dict[str, Any]) -> dict[str, Any] | None:
        if not self.records:
            return None
        if self._metrics_count != len(self.records) or self._metrics is None:
            statistics = config.get("statistics") or {}
            self._metrics = metrics.compute_results(
                [metrics.scored_record(r) for r in self.records],
                run_seed=int(config.get("seed") or 0),
                model=config.get("model") or {},
                status="running",
                ci_method="wilson_design_effect",  # fast and stable while the run grows; final: the run's own
                n_resamples=int(statistics.get("resamples") or 2000),
            )
            self._metrics_count = len(self.records)
        return self._metrics

    def samples(self, offset: int, limit: int, query: str = "", status: str = "") -> dict[str, Any]:
        """A page of records, newest last, filtered by a text in the id/slices and by outcome."""
        with self._lock:
            self._read_new()
            chosen = [r for r in self.records if _matches(r, query, status)]
        page = chosen[offset : offset + limit]
        return {
            "total": len(chosen),
            "offset": offset,
            "records": [{k: getattr(r, k) for k in SAMPLE_FIELDS} for r in page],
        }

    def image(self, sha256: str) -> tuple[Path, str] | None:
        """The stored image file of a record (by digest only: no other path reaches the filesystem)."""
        if not is_sha256(sha256):
            return None
        folder = self.path / "images" / sha256[:2]
        for ext, mime in (("png", "image/png"), ("jpg", "image/jpeg"), ("jpeg", "image/jpeg"), ("webp", "image/webp")):
            candidate = folder / f"{sha256}.{ext}"
            if candidate.is_file():
                return candidate, mime
        return None


def _status(live: bool, results: dict[str, Any] | None, config: dict[str, Any]) -> str:
    if live:
        return "running"
    if results is not None and results.get("status"):
        return str(results["status"])
    return "stopped" if config else "waiting"


def _matches(record: SampleRecord, query: str, status: str) -> bool:
    if status == "correct" and not record.correct:
        return False
    if status == "wrong" and (record.correct or record.parse_status in ("error", "invalid")):
        return False
    if status in ("error", "invalid", "unparsed") and record.parse_status != status:
        return False
    if not query:
        return True
    text = record.record_id + " " + " ".join(f"{d}={v}" for d, vs in record.slices.items() for v in vs)
    return all(part in text.lower() for part in query.lower().split())
