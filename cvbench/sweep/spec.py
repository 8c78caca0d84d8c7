"""The sweep file: a declarative matrix expanded into the `RunOptions` of each run.

```toml
out = "runs"                 # root of the run folders (as `cvbench run`: runs/<model>/<tasks...>)
limit = 50                   # every other RunOptions scalar of the table below may be set here
shards = 4                   # each run is evaluated in this many shards, then merged

[[models]]
spec = "openai-compatible:qwen"
base_urls = ["http://node1:8000/v1", "http://node2:8000/v1"]
options = { image_detail = "high" }   # --model-option KEY=VALUE
workers = 2                  # Ray actors serving this model (default 1)
cpus = 1                     # Ray resources per actor (default: 1 GPU for in-process models, else 1 CPU)

[matrix]
tasks = ["mmvm", "crossviewbench"]     # one run per entry; "a,b" for a run over several tasks
candidates = [["4"], ["8"], ["12"], ["all"]]
styles = ["upstream", "mask"]
image_policies = [{}, { max_side = 768 }]
seeds = [0]
ablations = ["none", "images"]       # --ablate; "none": the normal run
modes = ["auto"]
```

Every axis multiplies; candidates apply to runs that hold an MMVM task only (for the others the
axis collapses to one run). Bad input names the file and the field.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cvbench.model_adapters.aliases import find_alias
from cvbench.model_adapters.registry import split_model_spec
from cvbench.prompting.ablation import ABLATIONS
from cvbench.runner.options import RunOptions, default_out_dir, parse_model_option
from cvbench.tasks.registry import get_task

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class SweepSpecError(ValueError):
    """The sweep file cannot be read; the message names the file and the field."""


# top-level scalars: name -> (RunOptions field or "", accepted types)
_TOP: dict[str, tuple[type | tuple[type, ...], str]] = {
    "out": (str, ""),
    "shards": (int, ""),
    "data_dir": (str, "data_dir"),
    "limit": (int, "limit"),
    "concurrency": (int, "concurrency"),
    "cache": (str, "cache"),
    "no_cache": (bool, ""),
    "save_images": (bool, "save_images"),
    "judge": (str, "judge"),
    "alpha": ((int, float), "alpha"),
    "thickness": (int, "thickness"),
    "option_logprobs": (bool, "option_logprobs"),
    "ci_method": (str, "ci_method"),
    "max_error_rate": ((int, float), "max_error_rate"),
    "fail_fast": (int, "fail_fast"),
}
_MODEL_KEYS = {"spec", "base_urls", "options", "max_tokens", "workers", "cpus", "gpus"}
_MATRIX_KEYS = {"tasks", "candidates", "styles", "modes", "seeds", "image_policies", "ablations"}
_POLICY_KEYS = {"image_format": str, "jpeg_quality": int, "max_side": int, "max_pixels": int}
IN_PROCESS_PROVIDERS = frozenset({"vllm", "hf", "crossviewer", "colva", "lmms"})


@dataclass(frozen=True)
class ModelEntry:
    """One [[models]] table: the model of some runs and the Ray actors that serve it."""

    index: int
    spec: str
    base_urls: tuple[str, ...] = ()
    options: tuple[tuple[str, Any], ...] = ()
    max_tokens: int | None = None
    workers: int = 1
    cpus: float | None = None  # None: decided by placement()
    gpus: float | None = None

    def placement(self) -> tuple[float, float]:
        """(cpus, gpus) each actor asks Ray for: a GPU for in-process models, one CPU slot for API
        and server models (their work is waiting on the network)."""
        if self.cpus is not None or self.gpus is not None:
            return (self.cpus if self.cpus is not None else 1.0, self.gpus or 0.0)
        return (1.0, 1.0) if in_process(self.spec, self.base_urls) else (1.0, 0.0)


def in_process(spec: str, base_urls: Sequence[str]) -> bool:
    """Whether the model runs inside the evaluating process (and so needs its GPU)."""

    alias = find_alias(spec.strip())
    if alias is not None:
        if alias.access == "open":
            return not base_urls
        spec = alias.target or ""
    return split_model_spec(spec)[0] in IN_PROCESS_PROVIDERS


@dataclass(frozen=True)
class RunSpec:
    """One run of the sweep: what `cvbench run` would be given, and where it writes."""

    options: RunOptions  # out is the run folder; shard is None (shards are planned separately)
    model: ModelEntry

    @property
    def run_dir(self) -> Path:
        assert self.options.out is not None
        return self.options.out


@dataclass(frozen=True)
class SweepSpec:
    path: Path
    root: Path
    shards: int
    runs: tuple[RunSpec, ...]
    models: tuple[ModelEntry, ...]


def _fail(path: Path, where: str, message: str) -> SweepSpecError:
    return SweepSpecError(f"{path}: {where}: {message}")


def _check(path: Path, where: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    # bool is an int in Python: a flag is not a count, and a count is not a flag
    if isinstance(value, bool) and kind is not bool and not (isinstance(kind, tuple) and bool in kind):
        raise _fail(path, where, f"expected {_kind_name(kind)}, got {value!r}")
    if not isinstance(value, kind):
        raise _fail(path, where, f"expected {_kind_name(kind)}, got {type(value).__name__} {value!r}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(
        {"str": "a string", "int": "an integer", "float": "a number", "bool": "true/false"}.get(k.__name__, k.__name__)
        for k in kinds
    )


def _list(path: Path, where: str, value: Any) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise _fail(path, where, f"expected a non-empty list, got {value!r}")
    return value


def _unknown(path: Path, where: str, data: Mapping[str, Any], known: set[str] | Mapping[str, Any]) -> None:
    extra = sorted(set(data) - set(known))
    if extra:
        raise _fail(path, where, f"unknown key {extra[0]!r} (known: {', '.join(sorted(known))})")


def parse_model(path: Path, index: int, data: Any) -> ModelEntry:
    where = f"models[{index}]"
    if not isinstance(data, dict):
        raise _fail(path, where, "expected a table")
    _unknown(path, where, data, _MODEL_KEYS)
    if "spec" not in data:
        raise _fail(path, where, "missing 'spec' (the model, as `cvbench run --model` takes it)")
    spec = _check(path, f"{where}.spec", data["spec"], str)
    urls = tuple(_check(path, f"{where}.base_urls[{i}]", u, str) for i, u in enumerate(data.get("base_urls", [])))
    options_raw = _check(path, f"{where}.options", data.get("options", {}), dict)
    options = tuple(sorted((str(k), v) for k, v in options_raw.items()))
    for key, value in options:  # the same values `--model-option KEY=VALUE` can carry
        _check(path, f"{where}.options.{key}", value, (str, int, float, bool))
    max_tokens = data.get("max_tokens")
    if max_tokens is not None:
        _check(path, f"{where}.max_tokens", max_tokens, int)
    workers = _check(path, f"{where}.workers", data.get("workers", 1), int)
    if workers < 1:
        raise _fail(path, f"{where}.workers", "must be at least 1")
    res = {k: float(_check(path, f"{where}.{k}", data[k], (int, float))) for k in ("cpus", "gpus") if k in data}
    return ModelEntry(index, spec, urls, options, max_tokens, workers, res.get("cpus"), res.get("gpus"))


def model_option_pairs(entry: ModelEntry) -> tuple[tuple[str, Any], ...]:
    """The options as `--model-option KEY=VALUE` gives them (values parsed the same way), so the
    run folder and identity equal the `cvbench run` command's."""
    return tuple(parse_model_option(f"{k}={str(v).lower() if isinstance(v, bool) else v}") for k, v in entry.options)


def _task_lists(path: Path, raw: list[Any]) -> list[tuple[str, ...]]:
    out = []
    for i, item in enumerate(raw):
        text = _check(path, f"matrix.tasks[{i}]", item, str)
        names = tuple(t.strip() for t in text.split(",") if t.strip())
        if not names:
            raise _fail(path, f"matrix.tasks[{i}]", "empty task list")
        out.append(names)
    return out


def _candidates(path: Path, raw: list[Any]) -> list[tuple[str, ...] | None]:
    out: list[tuple[str, ...] | None] = []
    for i, item in enumerate(raw):
        where = f"matrix.candidates[{i}]"
        if isinstance(item, str):
            item = [item]
        values = tuple(_check(path, f"{where}[{j}]", c, str) for j, c in enumerate(_list(path, where, item)))
        out.append(values)
    return out


def _policies(path: Path, raw: list[Any]) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(raw):
        where = f"matrix.image_policies[{i}]"
        _check(path, where, item, dict)
        _unknown(path, where, item, _POLICY_KEYS)
        out.append({k: _check(path, f"{where}.{k}", v, _POLICY_KEYS[k]) for k, v in item.items()})
    return out


def has_mmvm_task(tasks: Sequence[str]) -> bool:

    try:
        return any(get_task(name).benchmark == "mmvm" for name in tasks)
    except KeyError:
        return True  # unknown task: the run itself reports it, with the known names


@dataclass(frozen=True)
class Matrix:
    tasks: tuple[tuple[str, ...], ...]
    candidates: tuple[tuple[str, ...], ...]
    styles: tuple[str | None, ...]
    modes: tuple[str, ...]
    policies: tuple[dict[str, Any], ...]
    seeds: tuple[int, ...]
    ablations: tuple[str | None, ...]


def _strings(path: Path, where: str, raw: Any) -> tuple[str, ...]:
    return tuple(_check(path, f"{where}[{i}]", v, str) for i, v in enumerate(_list(path, where, raw)))


def parse_matrix(path: Path, data: Any) -> Matrix:
    matrix = _check(path, "matrix", data, dict)
    _unknown(path, "matrix", matrix, _MATRIX_KEYS)
    if "tasks" not in matrix:
        raise _fail(path, "matrix", "missing 'tasks' (a list: one run per entry)")
    styles = _strings(path, "matrix.styles", matrix.get("styles", ["default"]))
    seeds = _list(path, "matrix.seeds", matrix.get("seeds", [0]))
    ablations = _strings(path, "matrix.ablations", matrix.get("ablations", ["none"]))
    for i, name in enumerate(ablations):
        if name != "none" and name not in ABLATIONS:
            raise _fail(path, f"matrix.ablations[{i}]", f"unknown ablation {name!r} (none, {', '.join(ABLATIONS)})")
    return Matrix(
        tasks=tuple(_task_lists(path, _list(path, "matrix.tasks", matrix["tasks"]))),
        candidates=tuple(
            c or ("all",)
            for c in _candidates(path, _list(path, "matrix.candidates", matrix.get("candidates", [["all"]])))
        ),
        styles=tuple(None if s == "default" else s for s in styles),
        modes=_strings(path, "matrix.modes", matrix.get("modes", ["auto"])),
        policies=tuple(_policies(path, _list(path, "matrix.image_policies", matrix.get("image_policies", [{}])))),
        seeds=tuple(_check(path, f"matrix.seeds[{i}]", v, int) for i, v in enumerate(seeds)),
        ablations=tuple(None if a == "none" else a for a in ablations),
    )


def base_options(path: Path, top: dict[str, Any], argv: Sequence[str]) -> RunOptions:
    """The options every run shares (the top-level scalars of the file)."""
    fields: dict[str, Any] = {"argv": tuple(argv), "progress": False}
    for key, value in top.items():
        field = _TOP[key][1]
        if field:
            fields[field] = Path(value) if field in ("data_dir", "cache") else value
    if top.get("no_cache"):
        if "cache" in top:
            raise _fail(path, "no_cache", "cache and no_cache exclude each other")
        fields["use_cache"] = False
    return RunOptions(**fields)


def expand(root: Path, base: RunOptions, models: Sequence[ModelEntry], m: Matrix) -> tuple[RunSpec, ...]:
    """Every combination, in file order; combinations that name the same run folder (candidate
    settings of a run without an MMVM task) are one run."""
    runs: dict[Path, RunSpec] = {}
    for model, tasks, cands, style, mode, policy, seed, ablation in itertools.product(
        models, m.tasks, m.candidates, m.styles, m.modes, m.policies, m.seeds, m.ablations
    ):
        candidates = cands if cands != ("all",) and has_mmvm_task(tasks) else None
        options = replace(
            base,
            model=model.spec,
            tasks=tasks,
            candidates=candidates,
            style=style,
            mode=mode,
            seed=seed,
            ablation=ablation,
            base_urls=model.base_urls,
            max_tokens=model.max_tokens,
            model_options=model_option_pairs(model),
            **policy,
        )
        run_dir = root / default_out_dir(options).relative_to("runs")
        runs.setdefault(run_dir, RunSpec(replace(options, out=run_dir), model))
    return tuple(runs.values())


def load_sweep(path: Path, argv: Sequence[str] = ()) -> SweepSpec:
    """Read and expand a sweep file. Paths in it are relative to the current directory, as on the
    `cvbench run` command line."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SweepSpecError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SweepSpecError(f"{path}: not valid TOML ({exc})") from None
    _unknown(path, "top level", data, set(_TOP) | {"models", "matrix"})
    top = {k: _check(path, k, v, _TOP[k][0]) for k, v in data.items() if k in _TOP}
    models = tuple(parse_model(path, i, m) for i, m in enumerate(_list(path, "models", data.get("models"))))
    matrix = parse_matrix(path, data.get("matrix", {}))
    shards = top.get("shards", 1)
    if shards < 1:
        raise _fail(path, "shards", "must be at least 1")
    root = Path(top.get("out", "runs"))
    runs = expand(root, base_options(path, top, argv), models, matrix)
    return SweepSpec(path, root, shards, runs, models)
