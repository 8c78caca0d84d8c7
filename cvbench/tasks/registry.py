"""Task specs: declarative TOML files (cvbench/tasks/specs/*.toml) parsed into `TaskSpec`.

A new benchmark variant is a new file, never new code: drop a `<name>.toml` into the
package's `specs/` folder, or into a folder listed in `$CVBENCH_TASK_DIRS` (os.pathsep
separated), or ship it in an installed package through the entry point group `cvbench.tasks`
(docs/plugins.md). Every field is validated; an error names the file (or entry point) and the field.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cvbench.core.suggest import did_you_mean
from cvbench.core.types import BENCHMARKS, TaskSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SPECS_DIR = Path(__file__).resolve().parent / "specs"
TASK_DIRS_ENV = "CVBENCH_TASK_DIRS"
ENTRY_POINT_GROUP = "cvbench.tasks"

# source format -> the benchmark it holds
SOURCES: dict[str, str] = {"crossviewbench-jsonl": "crossviewbench", "mmvm-tsv": "mmvm"}
# slice dimensions each benchmark's samples carry
SLICE_DIMS: dict[str, tuple[str, ...]] = {"crossviewbench": ("category", "task_type"), "mmvm": ("cue", "bucket")}
MODES: dict[str, tuple[str, ...]] = {
    "crossviewbench": ("auto", "overlay", "native"),
    "mmvm": ("auto", "overlay", "native", "prerendered"),
}

_REQUIRED: dict[str, type] = {
    "name": str,
    "benchmark": str,
    "description": str,
    "source": str,
    "data_file": str,
    "data_subdir": str,
    "synthetic": bool,
    "slice_dims": list,
}
_OPTIONAL: dict[str, type] = {"candidate_settings": list, "default_mode": str, "obtain_hint": str}


class TaskSpecError(ValueError):
    """A task spec file that cannot be used; the message names the file and the field."""


class UnknownTaskError(KeyError):
    """No task of that name; the message lists the known tasks."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def parse_task_spec(path: Path) -> TaskSpec:
    """Read and validate one spec file."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TaskSpecError(f"{path}: cannot read task spec ({exc})") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TaskSpecError(f"{path}: not valid TOML ({exc})") from exc
    return task_spec_from_mapping(raw, str(path))


def task_spec_from_mapping(raw: Mapping[str, Any], where: str) -> TaskSpec:
    """Validate a parsed spec table (`where` names the file in error messages)."""

    def fail(field: str, why: str) -> TaskSpecError:
        return TaskSpecError(f"{where}: field '{field}': {why}")

    unknown = sorted(set(raw) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        known = ", ".join([*_REQUIRED, *_OPTIONAL])
        raise TaskSpecError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))} (known fields: {known})")
    for key, kind in {**_REQUIRED, **_OPTIONAL}.items():
        if key not in raw:
            if key in _REQUIRED:
                raise fail(key, "missing (required)")
            continue
        if not isinstance(raw[key], kind):
            raise fail(key, f"must be a {kind.__name__}, got {type(raw[key]).__name__} {raw[key]!r}")
    for key in ("name", "benchmark", "source", "data_file", "data_subdir"):
        if not raw[key].strip():
            raise fail(key, "must not be empty")

    name: str = raw["name"]
    if not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise fail("name", f"{name!r} may hold only letters, digits, '-', '_' and '.'")
    benchmark: str = raw["benchmark"]
    if benchmark not in BENCHMARKS:
        raise fail("benchmark", f"{benchmark!r} is not one of {', '.join(BENCHMARKS)}")
    source: str = raw["source"]
    if source not in SOURCES:
        raise fail("source", f"{source!r} is not one of {', '.join(SOURCES)}")
    if SOURCES[source] != benchmark:
        raise fail("source", f"{source!r} holds {SOURCES[source]} data, but benchmark is {benchmark!r}")
    for key in ("data_file", "data_subdir"):
        value: str = raw[key]
        if "/" in value or "\\" in value or value in (".", "..") or value.startswith("."):
            raise fail(key, f"{value!r} must be a plain file or folder name")

    slice_dims = _string_list(raw["slice_dims"], "slice_dims", fail)
    allowed = SLICE_DIMS[benchmark]
    for dim in slice_dims:
        if dim not in allowed:
            raise fail("slice_dims", f"{dim!r} is not a slice dimension of {benchmark} (allowed: {', '.join(allowed)})")
    if len(set(slice_dims)) != len(slice_dims):
        raise fail("slice_dims", f"repeated dimension in {slice_dims}")

    settings = _string_list(raw.get("candidate_settings", ["all"]), "candidate_settings", fail)
    if not settings:
        raise fail("candidate_settings", "must name at least one setting")
    for setting in settings:
        if setting == "all":
            continue
        if benchmark != "mmvm":
            raise fail("candidate_settings", f"{benchmark} has only the setting 'all', got {setting!r}")
        if not (setting.isdigit() and int(setting) >= 2 and str(int(setting)) == setting):
            raise fail("candidate_settings", f"{setting!r} must be 'all' or a whole number of candidates >= 2")
    if len(set(settings)) != len(settings):
        raise fail("candidate_settings", f"repeated setting in {settings}")

    mode = raw.get("default_mode", "auto")
    if mode not in MODES[benchmark]:
        raise fail("default_mode", f"{mode!r} is not one of {', '.join(MODES[benchmark])} for {benchmark}")

    return TaskSpec(
        name=name,
        benchmark=benchmark,
        description=raw["description"].strip(),
        source=source,
        data_file=raw["data_file"],
        data_subdir=raw["data_subdir"],
        synthetic=raw["synthetic"],
        slice_dims=tuple(slice_dims),
        candidate_settings=tuple(settings),
        default_mode=mode,
        obtain_hint=raw.get("obtain_hint", "").strip(),
        spec_file=where,
    )


def _string_list(value: list[Any], field: str, fail: Any) -> list[str]:
    bad = [v for v in value if not isinstance(v, str)]
    if bad:
        raise fail(field, f"must be a list of strings, got {bad[0]!r}")
    return list(value)


def spec_dirs() -> list[Path]:
    """The package's specs folder, then every folder in $CVBENCH_TASK_DIRS."""
    extra = [Path(p).expanduser() for p in os.environ.get(TASK_DIRS_ENV, "").split(os.pathsep) if p.strip()]
    return [SPECS_DIR, *extra]


def entry_point_specs() -> list[TaskSpec]:
    """Task specs from installed plugins: each entry point of the group `cvbench.tasks` names
    (`module:attr`) either a folder of spec files (a path or str), or a callable returning such a folder
    or an iterable of spec tables (mappings with the fields of a spec file)."""
    from importlib.metadata import entry_points

    found: list[TaskSpec] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        where = f"entry point {ep.name!r} ({ep.value}) of {dist.name if dist is not None else 'a package'}"
        try:
            target = ep.load()
        except Exception as exc:  # a broken plugin must name itself, not break with a bare traceback
            raise TaskSpecError(f"{where}: cannot be loaded ({type(exc).__name__}: {exc})") from exc
        value = target() if callable(target) else target
        if isinstance(value, (str, os.PathLike)):
            folder = Path(value)
            if not folder.is_dir():
                raise TaskSpecError(f"{where}: {folder} is not a folder of task spec files")
            found.extend(parse_task_spec(path) for path in sorted(folder.glob("*.toml")))
            continue
        if isinstance(value, Mapping) or not isinstance(value, Iterable):
            raise TaskSpecError(f"{where}: must give a folder of spec files or an iterable of spec tables")
        for n, table in enumerate(value):
            if not isinstance(table, Mapping):
                raise TaskSpecError(f"{where}: item {n} is a {type(table).__name__}, not a spec table")
            found.append(task_spec_from_mapping(table, f"{where} item {n}"))
    return found


def load_task_specs(dirs: Iterable[Path] | None = None) -> dict[str, TaskSpec]:
    """All task specs by name, sorted by name: the package's, $CVBENCH_TASK_DIRS', the plugins'
    (only when `dirs` is not given). Two declarations of one name is an error."""
    specs: dict[str, TaskSpec] = {}

    def add(spec: TaskSpec, where: str) -> None:
        if spec.name in specs:
            raise TaskSpecError(
                f"{where}: field 'name': task {spec.name!r} is already defined in {specs[spec.name].spec_file}"
            )
        specs[spec.name] = spec

    for folder in spec_dirs() if dirs is None else list(dirs):
        if not folder.is_dir():
            raise TaskSpecError(f"{folder}: task spec folder does not exist (from ${TASK_DIRS_ENV}?)")
        for path in sorted(folder.glob("*.toml")):
            add(parse_task_spec(path), str(path))
    if dirs is None:
        for spec in entry_point_specs():
            add(spec, spec.spec_file)
    return dict(sorted(specs.items()))


def get_task(name: str) -> TaskSpec:
    """The spec of one task; an unknown name lists the known tasks."""
    specs = load_task_specs()
    if name not in specs:
        hint = did_you_mean(name, specs)
        raise UnknownTaskError(f"unknown task {name!r}.{hint} (known tasks: {', '.join(specs) or 'none'})")
    return specs[name]
