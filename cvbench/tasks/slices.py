"""Slice labels of a sample: the groups its score counts toward (pure functions).

CrossViewBench: `category` and `task_type`. MMVM: `cue` (multi-label: a question counts
toward every cue in its list) and `bucket`, the NATIVE candidate-count bucket, which does not
change with the candidate setting, so the 4/8/12/all rows of one bucket hold the same questions.
"""

from __future__ import annotations

from cvbench.core.types import CATEGORY_NAMES, CUE_CODES, TASK_TYPES, Sample, TaskSpec

# (label, smallest count, largest count or None for open-ended), in display order
CANDIDATE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("2-4", 2, 4),
    ("5-8", 5, 8),
    ("9-12", 9, 12),
    ("13+", 13, None),
)


class SliceError(ValueError):
    """A sample that lacks what one of its task's slice dimensions needs."""


def candidate_bucket(candidate_count: int) -> str:
    """'2-4' | '5-8' | '9-12' | '13+' for a native candidate count (at least 2)."""
    for label, low, high in CANDIDATE_BUCKETS:
        if candidate_count >= low and (high is None or candidate_count <= high):
            return label
    raise SliceError(f"candidate count {candidate_count} is below 2; no MMVM bucket holds it")


def slice_labels(spec: TaskSpec) -> dict[str, list[str]]:
    """Every label of every slice dimension of the task, in display order."""
    every: dict[str, list[str]] = {
        "category": list(CATEGORY_NAMES),
        "task_type": list(TASK_TYPES),
        "cue": list(CUE_CODES),
        "bucket": [label for label, _, _ in CANDIDATE_BUCKETS],
    }
    return {dim: every[dim] for dim in spec.slice_dims}


def sample_slices(sample: Sample, spec: TaskSpec, setting: str) -> dict[str, list[str]]:
    """The labels this sample counts toward under one candidate setting, per dimension."""
    if setting not in spec.candidate_settings:
        raise SliceError(
            f"task {spec.name!r} has no candidate setting {setting!r} (settings: {', '.join(spec.candidate_settings)})"
        )
    out: dict[str, list[str]] = {}
    for dim in spec.slice_dims:
        out[dim] = _labels(sample, dim)
    return out


def _labels(sample: Sample, dim: str) -> list[str]:
    where = f"{sample.source} [{sample.sample_id}]"
    if dim == "task_type":
        if sample.task_type not in TASK_TYPES:
            raise SliceError(f"{where}: task_type {sample.task_type!r} is not one of Q1..Q17")
        return [sample.task_type]
    if dim == "category":
        if sample.category not in CATEGORY_NAMES:
            raise SliceError(f"{where}: category {sample.category!r} is not one of {', '.join(CATEGORY_NAMES)}")
        return [sample.category]
    if dim == "cue":
        unknown = [c for c in sample.cues if c not in CUE_CODES]
        if unknown or not sample.cues:
            raise SliceError(f"{where}: cues {list(sample.cues)!r} must be a non-empty list of {', '.join(CUE_CODES)}")
        return list(dict.fromkeys(sample.cues))
    if dim == "bucket":
        if sample.candidate_count is None:
            raise SliceError(f"{where}: no candidate_count, so no bucket")
        try:
            return [candidate_bucket(sample.candidate_count)]
        except SliceError as exc:
            raise SliceError(f"{where}: {exc}") from exc
    raise SliceError(f"unknown slice dimension {dim!r}")
