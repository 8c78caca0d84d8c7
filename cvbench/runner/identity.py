"""Which part of config.json decides a run's records, so that a resume, a merge and a shard agree."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

IDENTITY_KEYS = (
    "model",
    "model_settings",
    "generation",
    "tasks",
    "mode",
    "style",
    "seed",
    "limit",
    "shard",
    "judge",
    "prompt_settings",
    "datasets",
    "protocol",
    "pricing",
    "ablation",
)


def identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of config.json that decides the records (the answers, and the price their costs
    are computed at): must match to resume a run."""
    model = dict(config.get("model") or {})
    return {k: (model.get("id") if k == "model" else config.get(k)) for k in IDENTITY_KEYS}


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any], ignore: Sequence[str] = ()) -> list[str]:
    """'path: old != new' for every identity value that differs (nested dicts by dotted path)."""
    a, b = identity(old), identity(new)
    out: list[str] = []
    for k in IDENTITY_KEYS:
        if k not in ignore:
            _diff(k, a[k], b[k], out)
    return out


def _diff(path: str, a: Any, b: Any, out: list[str]) -> None:
    if a == b:
        return
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b), key=str):
            _diff(f"{path}.{key}", a.get(key), b.get(key), out)
        return
    out.append(
        f"{path}: {json.dumps(a, sort_keys=True)} (existing run) != {json.dumps(b, sort_keys=True)} (this command)"
    )
