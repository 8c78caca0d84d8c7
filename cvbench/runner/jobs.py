"""The jobs of a run: one (task, candidate setting, sample) each, numbered in input order, with
the stable shard assignment and record ids."""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cvbench.core.types import InvalidSample, Sample, TaskSpec
from cvbench.runner.options import RunError
from cvbench.tasks.loading import iter_task_samples


@dataclass(frozen=True)
class Job:
    """One (task, setting, sample) to evaluate, numbered in input order."""

    index: int
    spec: TaskSpec
    setting: str
    item: Sample | InvalidSample
    record_id: str


def in_shard(task: str, sample_id: str, shard: tuple[int, int] | None) -> bool:
    """Stable assignment of a sample (all its settings) to one of N shards."""
    if shard is None:
        return True
    digest = hashlib.sha256(f"{task}/{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % shard[1] == shard[0]


def item_sample_id(item: Sample | InvalidSample) -> str:
    """The sample id; an unreadable record without one is named by its file name and line,
    not its absolute path, so the id is the same wherever the data lives."""
    if isinstance(item, Sample):
        return item.sample_id
    if item.sample_id is not None:
        return item.sample_id
    where = Path(item.source.file).name + (f":{item.source.line}" if item.source.line is not None else "")
    return f"invalid@{where}" + (f" ({item.source.item})" if item.source.item else "")


def record_id(task: str, setting: str, sample_id: str) -> str:
    return f"{task}@{setting}/{sample_id}"


def task_settings(spec: TaskSpec, candidates: Sequence[str] | None) -> tuple[str, ...]:
    """Candidate settings evaluated for a task: MMVM takes `--candidates` (default all)."""
    if spec.benchmark != "mmvm" or not candidates:
        return ("all",)
    unknown = [c for c in candidates if c not in spec.candidate_settings]
    if unknown:
        raise RunError(
            f"task {spec.name!r} has no candidate setting {', '.join(unknown)} "
            f"(settings: {', '.join(spec.candidate_settings)})"
        )
    return tuple(dict.fromkeys(candidates))


def iter_jobs(
    specs: Sequence[TaskSpec],
    settings_by_task: Mapping[str, tuple[str, ...]],
    data_dir: Path | None,
    limit: int | None,
    shard: tuple[int, int] | None,
) -> Generator[Job, None, None]:
    """Every job of the run in input order: per task, per sample (the first `limit`), per setting.
    A repeated sample id becomes an invalid sample, so it never replaces the first one's record."""
    index = 0
    for spec in specs:
        seen: set[str] = set()
        for n, item in enumerate(iter_task_samples(spec, data_dir)):
            if limit is not None and n >= limit:
                break
            sid = item_sample_id(item)
            if sid in seen:
                reason = item.reason if isinstance(item, InvalidSample) else f"duplicate sample_id {sid!r}"
                item = InvalidSample(item.source, reason, None)
                sid = item_sample_id(item)
            seen.add(sid)
            if not in_shard(spec.name, sid, shard):
                continue
            for setting in settings_by_task[spec.name]:
                yield Job(index, spec, setting, item, record_id(spec.name, setting, sid))
                index += 1


def chunked(jobs: Generator[Job, None, None], size: int) -> Generator[list[Job], None, None]:
    """The jobs, `size` at a time (one thread hand-off per chunk, not per job)."""
    chunk: list[Job] = []
    try:
        for job in jobs:
            chunk.append(job)
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk
    finally:
        jobs.close()
