"""What of a run directory may be published: no absolute local path (home, cache, data folders).

Data paths become relative to the data root (`synth-mmvm/mllm_match_eval_full.tsv:12`); any
other absolute path keeps only its last two parts (`…/runs/gpt-4o`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cvbench.rundir.config import RunConfig

_ABSOLUTE = re.compile(r"(?<![\w:/.])(?:~|[A-Za-z]:)?[/\\](?:[^\s/\\:\"',;]+[/\\])+[^\s/\\:\"',;]*")


def data_root(config: RunConfig) -> str | None:
    value = (config.runtime or {}).get("data_dir")
    return str(value).rstrip("/\\") if value else None


def portable_path(text: str, root: str | None) -> str:
    """`text` with the data root cut off its paths and other absolute paths shortened."""
    if root and root in text:
        text = text.replace(root + "/", "").replace(root + "\\", "").replace(root, "<data root>")
    return _ABSOLUTE.sub(_shorten, text)


def _shorten(match: re.Match[str]) -> str:
    parts = [p for p in re.split(r"[/\\]", match.group(0)) if p]
    return "…/" + "/".join(parts[-2:]) if len(parts) > 2 else match.group(0)


def portable_value(value: Any, root: str | None) -> Any:
    if isinstance(value, str):
        return portable_path(value, root)
    if isinstance(value, Mapping):
        return {k: portable_value(v, root) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable_value(v, root) for v in value]
    return value


def portable_config(config: RunConfig) -> dict[str, Any]:
    """config.json as published in a report or on the site."""
    data: dict[str, Any] = portable_value(config.to_json(), data_root(config))
    return data
