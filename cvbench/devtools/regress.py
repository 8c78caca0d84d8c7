"""The golden suite: a fixed synthetic evaluation whose every deterministic number is committed.

`cvbench regress --suite ci` generates both synthetic benchmarks at a small size from a fixed
seed into a temporary directory, runs the deterministic built-in models through the real
runner (MMVM at the candidate settings 4 and all, CrossViewBench in several overlay styles),
and compares, per run, evaluation and slice: accuracy, correct, n, chance, unparsed / error /
invalid counts, every record's parsed answer, and digests of the answers and of the prompts
(text + image hashes), with the files committed in `tests/golden/ci/`. Any change is a diff;
`--update` rewrites the files on purpose.

Payload building and diffing are pure; running and file I/O are at the edge (`run_ci_suite`,
`check`, `update`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cvbench.devtools.snapshots import build_snapshots
from cvbench.rundir.format import MetricSummary, Results, SampleRecord, iter_records, read_results
from cvbench.runner.options import RunOptions
from cvbench.runner.session import run
from cvbench.tasks.registry import get_task
from cvbench.tasks.synthetic.crossviewbench import generate_crossviewbench
from cvbench.tasks.synthetic.mmvm import generate_mmvm

GOLDEN_SCHEMA = "cvbench.golden/1"
UPDATE_ENV = "CVBENCH_UPDATE_GOLDEN"  # set to 1 to rewrite golden files from pytest

# The suite's data: small, fixed, generated fresh into a temporary directory.
SUITE_DATA_SEED = 1234
SUITE_CVB_PER_TYPE = 2  # CrossViewBench questions per task type (17 types)
SUITE_MMVM_PER_CUE = 2  # MMVM questions per cue (8 cues)
SUITE_TASKS = ("synth-crossviewbench", "synth-mmvm")
SUITE_CANDIDATES = ("4", "all")
SUITE_RUN_SEED = 0
FLOAT_DIGITS = 10  # floats are rounded so that the committed text is stable


class RegressError(RuntimeError):
    """The suite could not run or its golden files cannot be read; the message says why."""


@dataclass(frozen=True)
class SuiteRun:
    """One run of the golden suite; `name` is the golden file's stem."""

    name: str
    model: str
    style: str | None = None  # overlay style; None: each benchmark's default (CrossViewBench mask, MMVM contour)
    mode: str = "auto"
    tasks: tuple[str, ...] = SUITE_TASKS


# mask-heuristic takes native regions (masks), so the overlay styles are exercised with
# first-option: its answers do not change, but every prompt (text + image bytes) is digested.
# The style runs cover CrossViewBench only (MMVM's protocol is contours), to keep the suite fast.
CI_RUNS: tuple[SuiteRun, ...] = (
    SuiteRun("random", "random"),
    SuiteRun("first-option", "first-option"),
    SuiteRun("mask-heuristic", "mask-heuristic"),
    SuiteRun("first-option-contour", "first-option", style="contour", tasks=("synth-crossviewbench",)),
    SuiteRun("first-option-box", "first-option", style="box", tasks=("synth-crossviewbench",)),
    SuiteRun("first-option-marks", "first-option", style="marks", tasks=("synth-crossviewbench",)),
)


# --------------------------------------------------------------------------------------
# Locations
# --------------------------------------------------------------------------------------


def default_golden_dir() -> Path:
    """`tests/golden/` of the source checkout this cvbench is imported from."""
    return Path(__file__).resolve().parents[2] / "tests" / "golden"


def resolve_golden_dir(golden: str | os.PathLike[str] | None) -> Path:
    path = Path(golden) if golden is not None else default_golden_dir()
    if not path.is_dir():
        raise RegressError(
            f"{path}: no golden directory (the golden files live in a source checkout's "
            f"tests/golden/; pass --golden DIR)"
        )
    return path


def update_requested() -> bool:
    return os.environ.get(UPDATE_ENV, "").strip().lower() in ("1", "true", "yes")


# --------------------------------------------------------------------------------------
# Suite data
# --------------------------------------------------------------------------------------


SUITE_DATA_MARKER = "cvbench-suite-data.json"


def suite_data_identity() -> dict[str, Any]:
    """What decides the suite's data: its parameters and the synthetic generator's source code."""
    import cvbench.tasks.synthetic.crossviewbench as cvb_generator

    h = hashlib.sha256()
    for path in sorted(Path(cvb_generator.__file__).parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return {
        "seed": SUITE_DATA_SEED,
        "crossviewbench_per_type": SUITE_CVB_PER_TYPE,
        "mmvm_per_cue": SUITE_MMVM_PER_CUE,
        "generator_sha256": h.hexdigest(),
    }


def generate_suite_data(root: Path) -> Path:
    """Both synthetic benchmarks, small and from a fixed seed, under `root` (a data root).

    Data already under `root` is reused only when its marker file says it was made with the same
    parameters by the same generator source; otherwise it is regenerated."""

    identity = suite_data_identity()
    marker = root / SUITE_DATA_MARKER
    specs = [get_task(task) for task in SUITE_TASKS]
    if marker.is_file():
        try:
            if json.loads(marker.read_text(encoding="utf-8")) == identity and all(
                (root / s.data_subdir / s.data_file).is_file() for s in specs
            ):
                return root
        except json.JSONDecodeError:
            pass
    root.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    for spec in specs:
        folder = root / spec.data_subdir
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        if spec.benchmark == "crossviewbench":
            generate_crossviewbench(folder, per_type=SUITE_CVB_PER_TYPE, seed=SUITE_DATA_SEED)
        else:
            generate_mmvm(folder, per_cue=SUITE_MMVM_PER_CUE, seed=SUITE_DATA_SEED)
        if not (folder / spec.data_file).is_file():
            raise RegressError(f"the synthetic generator wrote no {spec.data_file} into {folder}")
    marker.write_text(dump_json(identity), encoding="utf-8")
    return root


# --------------------------------------------------------------------------------------
# Golden payloads (pure)
# --------------------------------------------------------------------------------------

METRIC_KEYS = ("accuracy", "correct", "n", "chance", "unparsed", "errors", "invalid")


def _stable(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, FLOAT_DIGITS)
    return value


def _metric(metric: MetricSummary) -> dict[str, Any]:
    return {k: _stable(getattr(metric, k)) for k in METRIC_KEYS}


def answer_line(record: SampleRecord) -> str:
    """One record's outcome as committed: `<parsed or -> <right|wrong> <parse status>`."""
    return f"{record.parsed or '-'} {'right' if record.correct else 'wrong'} {record.parse_status}"


def answers_digest(records: Iterable[SampleRecord]) -> str:
    h = hashlib.sha256()
    for r in sorted(records, key=lambda r: r.record_id):
        h.update(json.dumps([r.record_id, r.parsed, r.parse_status, r.correct, r.answer]).encode())
    return h.hexdigest()


def prompts_digest(records: Iterable[SampleRecord]) -> str:
    h = hashlib.sha256()
    for r in sorted(records, key=lambda r: r.record_id):
        h.update(json.dumps([r.record_id, r.mode, r.prompt_text, r.image_sha256, r.options]).encode())
    return h.hexdigest()


def golden_payload(
    run: SuiteRun, results: Results | Mapping[str, Any], records: Sequence[SampleRecord]
) -> dict[str, Any]:
    """Everything deterministic about one suite run, in a stable, diffable shape."""
    if not isinstance(results, Results):
        results = Results.from_json(results)
    by_eval: dict[str, list[SampleRecord]] = {}
    for r in records:
        by_eval.setdefault(f"{r.task}@{r.setting}", []).append(r)
    evaluations: dict[str, Any] = {}
    for key, entry in sorted(results.evaluations.items()):
        recs = by_eval.get(key, [])
        evaluations[key] = {
            "overall": _metric(entry.overall),
            "slices": {name: _metric(m) for name, m in sorted((entry.slices or {}).items())},
            "answers_digest": answers_digest(recs),
            "prompts_digest": prompts_digest(recs),
            "answers": {r.sample_id: answer_line(r) for r in sorted(recs, key=lambda r: r.sample_id)},
        }
    missing = sorted(set(by_eval) - set(evaluations))
    if missing:
        raise RegressError(f"run {run.name}: records of {', '.join(missing)} have no entry in results.json")
    return {
        "schema": GOLDEN_SCHEMA,
        "suite": "ci",
        "run": {"name": run.name, "model": run.model, "style": run.style, "mode": run.mode, "tasks": list(run.tasks)},
        "data": {
            "seed": SUITE_DATA_SEED,
            "crossviewbench_per_type": SUITE_CVB_PER_TYPE,
            "mmvm_per_cue": SUITE_MMVM_PER_CUE,
            "candidates": list(SUITE_CANDIDATES),
            "run_seed": SUITE_RUN_SEED,
        },
        "status": results.status,
        "model_id": results.model.id,
        "overall": _metric(results.overall),
        "evaluations": evaluations,
    }


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    """Leaves by path: mappings by key, lists by index (or by `sample_id` for lists of prompts)."""

    def join(key: str) -> str:
        return f"{prefix} > {key}" if prefix else key

    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k in value:
            out.update(_flatten(value[k], join(str(k))))
        return out if out else {prefix: {}}
    if isinstance(value, list) and value:
        out = {}
        for i, item in enumerate(value):
            tag = f"sample {item['sample_id']}" if isinstance(item, Mapping) and "sample_id" in item else f"[{i}]"
            out.update(_flatten(item, join(tag)))
        out[join("length")] = len(value)
        return out
    return {prefix: value}


def _show(value: Any, other: Any, width: int = 160) -> str:
    """A value for a diff line; long strings are cut around their first difference from `other`."""
    text = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, str) or len(text) <= width:
        return text
    start = 0
    if isinstance(other, str):
        while start < min(len(value), len(other)) and value[start] == other[start]:
            start += 1
    lo = max(0, start - width // 3)
    cut = value[lo : lo + width]
    return ("..." if lo else "") + json.dumps(cut, ensure_ascii=False) + ("..." if lo + width < len(value) else "")


def diff_payloads(name: str, expected: Mapping[str, Any] | None, actual: Mapping[str, Any] | None) -> list[str]:
    """Human-readable differences `<file>: <path>: golden X -> now Y`; empty when equal."""
    if expected is None and actual is None:
        return []
    if expected is None:
        return [f"{name}: no committed golden file (new case: run with --update to create it)"]
    if actual is None:
        return [f"{name}: committed golden file has no case in the suite any more (run with --update to remove it)"]
    flat_e, flat_a = _flatten(expected, ""), _flatten(actual, "")
    lines = []
    for key in sorted(set(flat_e) | set(flat_a)):
        e, a = flat_e.get(key, "<absent>"), flat_a.get(key, "<absent>")
        if e != a:
            lines.append(f"{name}: {key}: golden {_show(e, a)} -> now {_show(a, e)}")
    return lines


def dump_json(payload: Any) -> str:
    return json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------------------
# Running the suite, checking and updating (the I/O edge)
# --------------------------------------------------------------------------------------


def run_ci_suite(work_dir: Path, runs: Sequence[SuiteRun] = CI_RUNS) -> dict[str, dict[str, Any]]:
    """Run every suite run through the real runner in `work_dir`; golden payloads by file stem."""

    data = generate_suite_data(work_dir / "data")
    payloads: dict[str, dict[str, Any]] = {}
    for suite_run in runs:
        out = work_dir / "runs" / suite_run.name
        if out.exists():  # always a fresh run: a kept directory from an earlier check must not resume
            shutil.rmtree(out)
        options = RunOptions(
            model=suite_run.model,
            tasks=suite_run.tasks,
            data_dir=data,
            # candidate settings are MMVM's; a CrossViewBench-only run refuses them
            candidates=SUITE_CANDIDATES if any(t.endswith("mmvm") for t in suite_run.tasks) else None,
            style=suite_run.style,
            mode=suite_run.mode,
            seed=SUITE_RUN_SEED,
            concurrency=4,
            out=out,
            use_cache=False,
            save_images=False,
            progress=False,
            argv=("cvbench", "regress", "--suite", "ci"),
        )
        outcome = run(options)
        if outcome.status != "complete":
            raise RegressError(f"suite run {suite_run.name} ended {outcome.status} (see {out})")
        payloads[suite_run.name] = golden_payload(suite_run, read_results(out), list(iter_records(out)))
    return payloads


@dataclass(frozen=True)
class RegressResult:
    suite: str
    golden_dir: Path
    cases: tuple[str, ...]
    diff: tuple[str, ...]  # empty: everything matches
    updated: tuple[str, ...] = ()  # files written by --update
    environment_diff: tuple[str, ...] = ()  # pixel-library versions that differ from the recorded ones

    @property
    def passed(self) -> bool:
        return not self.diff


def read_golden(folder: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        try:
            out[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RegressError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg}); regenerate it with --update") from None
    return out


def compare_or_update(suite: str, folder: Path, payloads: Mapping[str, dict[str, Any]], update: bool) -> RegressResult:
    """Check `payloads` against the golden files in `folder`, or rewrite them when `update`."""
    committed = read_golden(folder)
    diff: list[str] = []
    for name in sorted(set(committed) | set(payloads)):
        diff.extend(diff_payloads(f"{folder.name}/{name}.json", committed.get(name), payloads.get(name)))
    if not update:
        return RegressResult(suite, folder, tuple(sorted(payloads)), tuple(diff))
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, payload in sorted(payloads.items()):
        path = folder / f"{name}.json"
        text = dump_json(payload)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(str(path))
    for name in sorted(set(committed) - set(payloads)):
        (folder / f"{name}.json").unlink()
        written.append(f"{folder / name}.json (removed)")
    return RegressResult(suite, folder, tuple(sorted(payloads)), tuple(diff), tuple(written))


SUITES = ("ci", "prompts", "all")


ENVIRONMENT_FILE = "environment.json"
PIXEL_PACKAGES = ("numpy", "opencv-python-headless", "pillow", "pycocotools")


def pixel_environment() -> dict[str, str]:
    """The Python version and the versions of the libraries that touch pixels or masks."""
    from importlib import metadata

    env = {"python": ".".join(str(v) for v in sys.version_info[:2])}
    for name in PIXEL_PACKAGES:
        try:
            env[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            env[name] = "-"
    return env


def environment_differences(recorded: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    """'name: recorded -> current' for every package whose version differs."""
    return [
        f"{name}: {recorded.get(name, '-')} (golden files) -> {current.get(name, '-')} (here)"
        for name in sorted(set(recorded) | set(current))
        if recorded.get(name) != current.get(name)
    ]


def _recorded_environment(golden_dir: Path) -> dict[str, str] | None:
    path = golden_dir / ENVIRONMENT_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RegressError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg}); regenerate it with --update") from None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None


def regress(
    suite: str,
    *,
    update: bool = False,
    golden: str | os.PathLike[str] | None = None,
    work_dir: str | os.PathLike[str] | None = None,
) -> list[RegressResult]:
    """Run a suite (`ci`, `prompts` or `all`) and check or update its golden files."""
    if suite not in SUITES:
        raise RegressError(f"unknown suite {suite!r} (suites: {', '.join(SUITES)})")
    golden_dir = resolve_golden_dir(golden)
    results = []
    with tempfile.TemporaryDirectory(prefix="cvbench-regress-") as tmp:
        work = Path(work_dir) if work_dir is not None else Path(tmp)
        if suite in ("ci", "all"):
            results.append(compare_or_update("ci", golden_dir / "ci", run_ci_suite(work / "ci"), update))
        if suite in ("prompts", "all"):
            data = generate_suite_data(work / "ci" / "data")
            results.append(compare_or_update("prompts", golden_dir / "prompts", build_snapshots(data), update))
    current = pixel_environment()
    if update:
        golden_dir.mkdir(parents=True, exist_ok=True)
        (golden_dir / ENVIRONMENT_FILE).write_text(dump_json(current), encoding="utf-8")
        return results
    recorded = _recorded_environment(golden_dir)
    if recorded is not None:
        differing = tuple(environment_differences(recorded, current))
        results = [replace(r, environment_diff=differing) if not r.passed else r for r in results]
    return results
