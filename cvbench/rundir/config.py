"""config.json as a typed value: `RunConfig`, its one reader (`read_config`) and one writer
(`write_config`).

Identity (what must match to resume a run or merge shards) and comparability (what must match for
a paired comparison of two runs) are marked on the fields; `identity`, `config_differences` and
`comparability_differences` are derived from the marks. Free-form blocks (environment, model info,
settings) stay JSON objects: their keys belong to the adapters and the platform, not to this format.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvbench.rundir.io import CONFIG_FILE, CONFIG_SCHEMA, RunDirError, read_json, write_json_atomic
from cvbench.rundir.schema import (
    ABSENT,
    Where,
    absent_field,
    comparable_keys,
    decode_object,
    dict_of,
    differences,
    encode,
    exactly,
    flag,
    identity_keys,
    integer,
    jfield,
    list_of,
    nested,
    obj,
    optional,
    pair_of,
    text,
)

_HINT = "written by another cvbench version; rerun it, or convert it as docs/run-format.md says"


@dataclass(frozen=True)
class ModelBlock:
    id: str = jfield(text, required=True)
    spec: str | None = jfield(optional(text))
    info: Mapping[str, Any] | None = jfield(optional(obj))
    capabilities: Mapping[str, Any] | None = jfield(optional(obj))
    absent: frozenset[str] = absent_field()


@dataclass(frozen=True)
class DatasetEntry:
    benchmark: str | None = jfield(optional(text))
    fingerprint: str | None = jfield(optional(text))
    synthetic: bool | None = jfield(optional(flag))
    settings: tuple[str, ...] | None = jfield(optional(list_of(text)))
    absent: frozenset[str] = absent_field()


@dataclass(frozen=True)
class RunConfig:
    """What a run was asked to do, and where it ran. Never holds a secret (the runner redacts)."""

    schema: str = jfield(exactly(CONFIG_SCHEMA, _HINT), required=True, default=CONFIG_SCHEMA)
    model: ModelBlock = jfield(nested(ModelBlock), required=True, identity=True, factory=lambda: ModelBlock(id=""))  # noqa: RUF009 (jfield is a field specifier)
    created: str | None = jfield(optional(text))
    resumed: tuple[str, ...] | None = jfield(optional(list_of(text)), omit_none=True)
    environment: Mapping[str, Any] | None = jfield(optional(obj))
    command: tuple[str, ...] | None = jfield(optional(list_of(text)))
    model_settings: Mapping[str, Any] | None = jfield(optional(obj), identity=True)
    generation: Mapping[str, Any] | None = jfield(optional(obj), identity=True)
    tasks: tuple[str, ...] | None = jfield(optional(list_of(text)), identity=True)
    candidates: Mapping[str, tuple[str, ...]] | None = jfield(optional(dict_of(list_of(text))))
    mode: str | None = jfield(optional(text), identity=True, comparable=True)
    style: str | None = jfield(optional(text), identity=True, comparable=True)
    seed: int | None = jfield(optional(integer), identity=True, comparable=True)
    limit: int | None = jfield(optional(integer), identity=True, comparable=True)
    shard: tuple[int, int] | None = jfield(optional(pair_of(integer)), identity=True, comparable=True)
    judge: Mapping[str, Any] | None = jfield(optional(obj), identity=True, comparable=True)
    prompt_settings: Mapping[str, Any] | None = jfield(optional(obj), identity=True, comparable=True)
    # identity as a whole; compared per shared task by comparability_differences
    datasets: Mapping[str, DatasetEntry] | None = jfield(optional(dict_of(nested(DatasetEntry))), identity=True)
    protocol: Mapping[str, Any] | None = jfield(optional(obj), identity=True, comparable=True)
    runtime: Mapping[str, Any] | None = jfield(optional(obj))
    statistics: Mapping[str, Any] | None = jfield(optional(obj))
    pricing: Mapping[str, Any] | None = jfield(optional(obj), identity=True)
    image_contract: Mapping[str, Any] | None = jfield(optional(obj), omit_none=True)
    merged_from: tuple[Mapping[str, Any], ...] | None = jfield(optional(list_of(obj)), omit_none=True)
    # {"kind", "row_kind"} of an ablated run (docs/ablations.md); absent when none
    ablation: Mapping[str, Any] | None = jfield(optional(obj), identity=True, omit_none=True)
    absent: frozenset[str] = absent_field()

    @classmethod
    def from_json(cls, data: Any, file: Path | str = CONFIG_FILE) -> RunConfig:
        return decode_object(cls, data, Where(Path(file)))

    def to_json(self) -> dict[str, Any]:
        return encode(self)  # type: ignore[no-any-return]

    # -- what the fields mean ---------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        """The part that decides the records (the answers, and the price their costs are computed
        at): must match to resume a run. The model is identified by its id alone."""
        data = self.to_json()
        out = {k: data.get(k) for k in identity_keys(RunConfig)}
        out["model"] = self.model.id
        return out

    def comparability(self, tasks: Sequence[str] | None = None) -> dict[str, Any]:
        """What must agree for a paired comparison: the comparable fields, and the dataset entries
        of `tasks` (the tasks both runs evaluated; all when None)."""
        data = self.to_json()
        out = {k: data.get(k) for k in comparable_keys(RunConfig)}
        datasets = data.get("datasets") or {}
        for task in sorted(datasets if tasks is None else set(tasks) & set(datasets)):
            out[f"datasets.{task}"] = datasets[task]
        return out

    @property
    def setting_spec(self) -> str:
        """The prompt part of the run spec: 'native' / 'overlay fill' and so on."""
        style = self.style or (self.prompt_settings or {}).get("style")
        mode = self.mode or "auto"
        return f"{mode} {style}" if style and mode != "native" else mode


def config_differences(old: RunConfig, new: RunConfig, ignore: Sequence[str] = ()) -> list[str]:
    """'path: old != new (…)' for every identity value that differs (nested objects by dotted path)."""
    a, b = old.identity(), new.identity()
    for key in ignore:
        a.pop(key, None)
        b.pop(key, None)
    return [f"{path}: {_shown(va)} (existing run) != {_shown(vb)} (this command)" for path, va, vb in differences(a, b)]


def comparability_differences(a: RunConfig, b: RunConfig) -> list[tuple[str, Any, Any]]:
    """(dotted key, value in a, value in b) for every entry that changes what a score means."""
    shared = set(a.datasets or {}) & set(b.datasets or {})
    return differences(a.comparability(sorted(shared)), b.comparability(sorted(shared)))


def _shown(value: Any) -> str:
    return json.dumps(None if value is ABSENT else value, sort_keys=True)


def read_config(run_dir: Path) -> RunConfig:
    """config.json of `run_dir`, checked field by field (errors name the file and field)."""
    path = Path(run_dir) / CONFIG_FILE
    return RunConfig.from_json(read_json(path), path)


def write_config(run_dir: Path, config: RunConfig) -> None:
    write_json_atomic(Path(run_dir) / CONFIG_FILE, config.to_json())


__all__ = [
    "DatasetEntry",
    "ModelBlock",
    "RunConfig",
    "RunDirError",
    "comparability_differences",
    "config_differences",
    "read_config",
    "write_config",
]
