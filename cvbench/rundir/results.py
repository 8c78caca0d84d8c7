"""results.json as a typed value: `Results` (overall, per evaluation, per slice `MetricSummary`),
its one reader (`read_results`) and one writer (`write_results`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvbench.rundir.io import RESULTS_FILE, RESULTS_SCHEMA, read_json, write_json_atomic
from cvbench.rundir.schema import (
    Where,
    absent_field,
    decode_object,
    dict_of,
    encode,
    exactly,
    integer,
    jfield,
    nested,
    number,
    obj,
    one_of,
    optional,
    pair_of,
    text,
)

_HINT = "written by another cvbench version; rerun `cvbench report` after converting it (docs/run-format.md)"
STATUSES = ("complete", "partial", "cancelled")


@dataclass(frozen=True)
class MetricSummary:
    """One slice's accuracy with its interval and what went into it (see docs/run-format.md, METRIC)."""

    accuracy: float | None = jfield(optional(number), required=True)
    correct: int = jfield(integer, required=True, default=0)
    n: int = jfield(integer, required=True, default=0)
    accuracy_answered: float | None = jfield(optional(number))
    n_answered: int | None = jfield(optional(integer))
    ci: tuple[float, float] | None = jfield(optional(pair_of(number)))
    ci_method: str | None = jfield(optional(text))
    wilson: tuple[float, float] | None = jfield(optional(pair_of(number)))
    n_clusters: int | None = jfield(optional(integer))
    chance: float | None = jfield(optional(number))
    unparsed: int | None = jfield(optional(integer))
    unparsed_rate: float | None = jfield(optional(number))
    errors: int | None = jfield(optional(integer))
    error_rate: float | None = jfield(optional(number))
    invalid: int | None = jfield(optional(integer))
    invalid_rate: float | None = jfield(optional(number))
    judged: int | None = jfield(optional(integer))
    ties: int | None = jfield(optional(integer))
    upstream_compatible: Mapping[str, Any] | None = jfield(optional(obj))
    absent: frozenset[str] = absent_field()


@dataclass(frozen=True)
class Evaluation:
    """One (task, candidate setting) of a run."""

    overall: MetricSummary = jfield(nested(MetricSummary), required=True, factory=MetricSummary)  # noqa: RUF009 (jfield is a field specifier)
    task: str | None = jfield(optional(text))
    benchmark: str | None = jfield(optional(text))
    setting: str | None = jfield(optional(text))
    slices: Mapping[str, MetricSummary] | None = jfield(optional(dict_of(nested(MetricSummary))))
    usage: Mapping[str, Any] | None = jfield(optional(obj))
    absent: frozenset[str] = absent_field()


@dataclass(frozen=True)
class ResultsModel:
    id: str = jfield(text, required=True, default="")
    display_name: str | None = jfield(optional(text))
    access: str | None = jfield(optional(text))
    params_b: float | None = jfield(optional(number))
    provider: str | None = jfield(optional(text))
    ablation: Mapping[str, Any] | None = jfield(optional(obj))  # {"kind", "row_kind"} (docs/ablations.md)
    absent: frozenset[str] = absent_field()

    @property
    def name(self) -> str:
        return self.display_name or self.id


@dataclass(frozen=True)
class Results:
    schema: str = jfield(exactly(RESULTS_SCHEMA, _HINT), required=True, default=RESULTS_SCHEMA)
    status: str = jfield(one_of(*STATUSES), required=True, default="complete")
    model: ResultsModel = jfield(nested(ResultsModel), required=True, factory=ResultsModel)  # noqa: RUF009 (jfield is a field specifier)
    overall: MetricSummary = jfield(nested(MetricSummary), required=True, factory=MetricSummary)  # noqa: RUF009 (jfield is a field specifier)
    evaluations: Mapping[str, Evaluation] = jfield(dict_of(nested(Evaluation)), required=True, default=None)
    seed: int | None = jfield(optional(integer))
    intervals: Mapping[str, Any] | None = jfield(optional(obj))
    slices: Mapping[str, MetricSummary] | None = jfield(optional(dict_of(nested(MetricSummary))))
    usage: Mapping[str, Any] | None = jfield(optional(obj))
    run: Mapping[str, Any] | None = jfield(optional(obj))
    absent: frozenset[str] = absent_field()

    @classmethod
    def from_json(cls, data: Any, file: Path | str = RESULTS_FILE) -> Results:
        return decode_object(cls, data, Where(Path(file)))

    def to_json(self) -> dict[str, Any]:
        return encode(self)  # type: ignore[no-any-return]

    def evaluation(self, task: str, setting: str) -> Evaluation | None:
        return self.evaluations.get(f"{task}@{setting}")

    def metric(self, task: str, setting: str, slice_: str) -> MetricSummary | None:
        """'overall' or '<dim>=<label>' of one evaluation; None when the run has no such slice."""
        ev = self.evaluation(task, setting)
        if ev is None:
            return None
        return ev.overall if slice_ == "overall" else (ev.slices or {}).get(slice_)


def evaluation_task(key: str, ev: Evaluation) -> tuple[str, str]:
    """(task, setting) of an evaluation, from its fields or else its '<task>@<setting>' key."""
    task, _, setting = key.partition("@")
    return ev.task or task, ev.setting or setting or "all"


def read_results(run_dir: Path) -> Results:
    path = Path(run_dir) / RESULTS_FILE
    return Results.from_json(read_json(path), path)


def write_results(run_dir: Path, results: Results) -> None:
    write_json_atomic(Path(run_dir) / RESULTS_FILE, results.to_json())
