"""The MMVM candidate setting as a type: "4", "8", "12" ... or "all", parsed and checked in one place.

Everything that takes a setting from a person (the CLI's `--candidates`, `RunOptions`, `render`,
`export-lmms`) goes through `parse_settings` and `check_for_task`, so the same bad value gets the
same message everywhere, and settings always come out in one order: by candidate count, "all" last.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cvbench.core.types import TaskSpec

ALL = "all"
MIN_CANDIDATES = 2


class CandidateSettingError(ValueError):
    """A candidate setting that is not a setting, or not one the task offers."""


@dataclass(frozen=True, order=False)
class CandidateSetting:
    """`count` candidates shown to the model; None: all of the sample's candidates."""

    count: int | None = None

    @classmethod
    def parse(cls, text: str) -> CandidateSetting:
        value = str(text).strip().lower()
        if value == ALL:
            return cls(None)
        if not value.isdigit() or str(int(value)) != value or int(value) < MIN_CANDIDATES:
            raise CandidateSettingError(
                f"candidate setting {text!r} must be 'all' or a whole number of candidates >= {MIN_CANDIDATES}"
            )
        return cls(int(value))

    def __str__(self) -> str:
        return ALL if self.count is None else str(self.count)

    @property
    def sort_key(self) -> tuple[int, int]:
        return (1, 0) if self.count is None else (0, self.count)


def sort_settings(settings: Iterable[str]) -> tuple[str, ...]:
    """Setting names in the one display order (4, 8, 12, all), duplicates dropped; names that are
    not settings keep their place after the settings (never dropped)."""
    parsed: list[tuple[tuple[int, int], str]] = []
    other: list[str] = []
    for name in dict.fromkeys(settings):
        try:
            parsed.append((CandidateSetting.parse(name).sort_key, name))
        except CandidateSettingError:
            other.append(name)
    return tuple(name for _, name in sorted(parsed)) + tuple(other)


def parse_settings(text: str | Sequence[str] | None) -> tuple[CandidateSetting, ...] | None:
    """'4,8,all' (or a sequence of names) -> settings in display order; None or empty -> None."""
    if text is None:
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    names = [str(item).strip() for item in items if str(item).strip()]
    if not names:
        return None
    settings = {CandidateSetting.parse(name) for name in names}
    return tuple(sorted(settings, key=lambda s: s.sort_key))


def check_for_task(spec: TaskSpec, settings: Sequence[CandidateSetting] | None) -> tuple[str, ...]:
    """The settings a task is evaluated under: those asked for (each one the task must offer), or
    "all" when none were asked for or the task has no other setting (CrossViewBench in a run that
    also holds MMVM tasks; `check_applies` refuses a run where no task takes the option)."""
    if not settings or spec.candidate_settings == (ALL,):
        return (ALL,)
    unknown = [str(s) for s in settings if str(s) not in spec.candidate_settings]
    if unknown:
        offered = ", ".join(spec.candidate_settings)
        raise CandidateSettingError(
            f"task {spec.name!r} has no candidate setting {', '.join(unknown)} (settings: {offered})"
        )
    return tuple(str(s) for s in settings)


def check_applies(specs: Sequence[TaskSpec], settings: Sequence[CandidateSetting] | None) -> None:
    """`--candidates` other than 'all' on tasks none of which has candidate settings is an error:
    it would be ignored while still naming the run directory."""
    if not settings or all(s.count is None for s in settings):
        return
    if any(spec.candidate_settings != (ALL,) for spec in specs):
        return
    names = ", ".join(repr(spec.name) for spec in specs)
    asked = ",".join(str(s) for s in settings)
    raise CandidateSettingError(
        f"--candidates {asked} does not apply to {names}: only MMVM tasks have candidate settings "
        f"(CrossViewBench questions come with their own fixed options); drop --candidates"
    )
