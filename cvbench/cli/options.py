"""Click options built from the one declaration of each option (cvbench/core/options.py).

`prompt_options`, `image_options` and the run-setting options below are decorators shared by `run`,
`render` and `export-lmms`; a bad value fails while the command line is parsed, with the declared
range in the message, before any data is loaded or model resolved.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from cvbench.core import options as declared
from cvbench.core.candidates import CandidateSetting, CandidateSettingError, parse_settings
from cvbench.core.options import OptionDecl, OptionError

F = TypeVar("F", bound=Callable[..., Any])


class OptionValueError(click.UsageError):
    """A declared option's bad value: the usage line, then the declaration's own message. Exit status 1,
    as every configuration error of cvbench (docs/running.md), not click's 2."""

    exit_code = 1


class BadOption(click.BadParameter):
    """A bad --task / --data-dir: exit status 1 like every configuration error."""

    exit_code = 1


class DeclaredType(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click
    """Parses and checks a command-line value through its declaration."""

    def __init__(self, decl: OptionDecl) -> None:
        self.decl = decl
        self.name = decl.kind.__name__

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return self.decl.parse(value) if isinstance(value, str) else self.decl.check(value)
        except OptionError as exc:
            raise OptionValueError(str(exc), ctx) from None

    def get_metavar(self, param: click.Parameter, *args: Any, **kwargs: Any) -> str | None:
        if self.decl.choices:
            return "[" + "|".join(self.decl.choices) + "]"
        return self.decl.metavar or (
            "INTEGER" if self.decl.kind is int else "FLOAT" if self.decl.kind is float else None
        )


def declared_option(decl: OptionDecl, *aliases: str, choices: Sequence[str] | None = None) -> Callable[[F], F]:
    """The click option of `decl` (extra spellings in `aliases`; `choices` narrows its choices)."""
    if choices is not None:
        decl = dataclasses.replace(decl, choices=tuple(choices))
    return click.option(
        decl.flag,
        *aliases,
        decl.name,
        type=DeclaredType(decl),
        default=decl.default,
        show_default=decl.default is not None,
        help=decl.help_text(),
    )


def group(*decls: OptionDecl) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        for decl in reversed(decls):
            func = declared_option(decl)(func)
        return func

    return decorate


# prompt settings: --mode --style --alpha --thickness --seed
prompt_options = group(*declared.PROMPT_OPTIONS)
# image policy: --image-format --jpeg-quality --max-side --max-pixels
image_options = group(*declared.IMAGE_OPTIONS)


# ---------------------------------------------------------------- run settings (shared by run, render, export-lmms)


def _check_data_dir(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise BadOption(
            f"{value} {what}. Create it (synthetic tasks are generated into it on first use):\n"
            f"  mkdir -p {value}\n"
            f"or download a benchmark into it:\n"
            f"  cvbench data download mmvm --dir {value}",
            ctx,
            param,
        )
    return path


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=str),
    default=None,
    callback=_check_data_dir,
    help="Data root, an existing folder (default: $CVBENCH_DATA, else the user cache).",
)


class CandidatesType(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click
    """'4,8,12,all' -> CandidateSettings in display order (checked against the tasks later)."""

    name = "settings"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, tuple):
            return value
        try:
            return parse_settings(str(value))
        except CandidateSettingError as exc:
            raise OptionValueError(f"--candidates: {exc}", ctx) from None


def candidates_option(single: bool = False) -> Callable[[F], F]:
    return click.option(
        "--candidates",
        "candidates",
        type=CandidatesType(),
        default=None,
        metavar="SETTING" if single else "SETTINGS",
        help=(
            "MMVM candidate setting: 4, 8, 12 or all (default: all)."
            if single
            else "MMVM candidate settings, comma separated, e.g. 4,8,12,all (default: all). MMVM tasks only."
        ),
    )


def setting_names(settings: Sequence[CandidateSetting] | None) -> tuple[str, ...] | None:
    return tuple(str(s) for s in settings) if settings else None


def split_csv(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _check_tasks(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    from cvbench.tasks.registry import TaskSpecError, UnknownTaskError, get_task

    names = split_csv(value)
    if value is not None and not names:
        raise BadOption("give at least one task name (`cvbench tasks` lists them)", ctx, param)
    try:
        for name in names:
            get_task(name)
    except (UnknownTaskError, TaskSpecError) as exc:
        raise BadOption(str(exc), ctx, param) from None
    return names


def tasks_option(default: str | None, single: bool = False) -> Callable[[F], F]:
    return click.option(
        "--task",
        "tasks",
        default=default,
        required=default is None,
        show_default=default is not None,
        callback=_check_tasks,
        help="Task name (`cvbench tasks`), e.g. synth-mmvm."
        if single
        else "Comma-separated task names (`cvbench tasks`).",
    )


SHARD_HELP = (
    "I/N: evaluate only shard I of N, counted from 0 (0/4 ... 3/4); a sample and all its settings "
    "fall in one shard. Join the shards with `cvbench merge`."
)


def check_applies_to_tasks(
    task_names: Sequence[str],
    candidates: Sequence[CandidateSetting] | None,
    mode: str,
    style: str | None,
) -> None:
    """Options that no given task can use are usage errors (cvbench/tasks/applicability.py)."""
    from cvbench.tasks.applicability import OptionNotApplicable, check_options_apply
    from cvbench.tasks.registry import get_task

    try:
        check_options_apply([get_task(name) for name in task_names], candidates, mode, style)
    except OptionNotApplicable as exc:
        raise OptionValueError(str(exc)) from None
