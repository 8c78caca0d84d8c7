"""Readable names and the papers' order for results.json slices and candidate settings (pure)."""

from __future__ import annotations

import re

from cvbench.core.types import CATEGORY_NAMES, CUES, TASK_TYPES

_DIM_ORDER = {"category": 0, "task_type": 1, "cue": 2, "bucket": 3}


def slice_label(slice_: str) -> str:
    """A readable name for a results.json slice ("task_type=Q10" -> "Q10 Scale change detection")."""
    if slice_ == "overall":
        return "Overall"
    dim, _, label = slice_.partition("=")
    if dim == "category":
        return CATEGORY_NAMES.get(label, label)
    if dim == "task_type" and label in TASK_TYPES:
        return f"{label} {TASK_TYPES[label][0]}"
    if dim == "cue":
        names = dict(CUES.values())
        return f"{label} {names[label]}" if label in names else label
    if dim == "bucket":
        return f"{label} candidates"
    return f"{dim}: {label}"


def slice_sort_key(slice_: str) -> tuple[int, str, float, str]:
    """Order slices as the papers do: categories, Q1..Q17, cues CL..OM, buckets by size."""
    if slice_ == "overall":
        return (-1, "", 0.0, "")
    dim, _, label = slice_.partition("=")
    rank = _DIM_ORDER.get(dim, 9)
    if dim == "category":
        keys = list(CATEGORY_NAMES)
        return (rank, dim, float(keys.index(label)) if label in keys else 99.0, label)
    if dim == "task_type" and label[1:].isdigit():
        return (rank, dim, float(label[1:]), label)
    if dim == "cue":
        codes = [code for code, _ in CUES.values()]
        return (rank, dim, float(codes.index(label)) if label in codes else 99.0, label)
    m = re.match(r"\d+", label)
    return (rank, dim, float(m.group(0)) if m else 999.0, label)


def setting_sort_key(setting: str) -> float:
    """'4' < '8' < '12' < 'all'."""
    return float(setting) if setting.isdigit() else float("inf")
