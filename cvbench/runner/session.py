"""The runner: samples -> prompts -> cached, concurrent model calls -> parsed records -> results.

- Streams samples from the loaders (never a list of all images); prompts are built in a
  thread pool, off the event loop; model calls run concurrently (asyncio, `concurrency`).
- The response cache is consulted first; every successful response is committed as it arrives.
- One writer appends each record to `samples.jsonl` the moment it finishes (flushed at once,
  fsync every 0.5 s); when the run ends the file is put into input order, so two runs of the same
  command compare line by line.
- A rerun whose answers are cached skips rendering through the prompt-digest cache
  (cvbench/runner/prompt_cache.py).
- Resume: the same command with the same `--out` skips every finished record (error records are
  retried), truncates a torn last line, and refuses a run directory of a different configuration.
- SIGINT/SIGTERM: no new samples are taken, in-flight ones finish and are written, results are
  written with status "cancelled" and the exit code is 130; the same command resumes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import hashlib
import json
import math
import os
import re
import signal
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from cvbench.core import options as declared
from cvbench.core.candidates import CandidateSettingError, check_for_task, parse_settings
from cvbench.core.locations import default_response_cache
from cvbench.core.provenance import environment
from cvbench.core.redaction import is_secret_key, redact, redact_argv, secret_values
from cvbench.core.types import (
    GenerationConfig,
    InvalidSample,
    ModelAdapter,
    ModelError,
    ParsedAnswer,
    Prompt,
    PromptImage,
    Request,
    Response,
    Sample,
    TaskSpec,
)
from cvbench.rundir.format import (
    CONFIG_FILE,
    RESULTS_FILE,
    SAMPLES_FILE,
    RunDirError,
    SampleRecord,
    image_relpath,
    read_json,
    unique_temp_path,
    write_bytes_atomic,
    write_json_atomic,
)
from cvbench.runner.cache import CacheError, CacheUnusableError, ResponseCache
from cvbench.runner.failfast import (
    DEFAULT_MAX_ERROR_RATE,
    DEFAULT_WINDOW,
    EXIT_FAILED,
    FailureWatch,
    error_rate,
    verdict,
)
from cvbench.runner.pricing import Price, response_cost
from cvbench.runner.progress import RunProgress
from cvbench.runner.prompt_cache import DigestedPrompt, PromptDigestCache, prompt_key
from cvbench.runner.runlock import RunDirBusyError, RunDirLock
from cvbench.scoring import metrics as metrics_mod
from cvbench.scoring.parsing import (
    answer_from_scores,
    judge_prompt_text,
    parse_answer,
    parse_judge,
)

CONFIG_SCHEMA = "cvbench.config/1"
DEFAULT_TASKS = ("synth-crossviewbench", "synth-mmvm")
DEFAULT_MODEL = "mask-heuristic"
EXIT_CANCELLED = 130
JUDGE_MAX_TOKENS = 16
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
# The loader allocates ~300 containers per record (decoded JSON) that die at once; with the default
# young-generation threshold (700) the collector runs after every few records and its passes cost
# about a quarter of a cache-hit rerun. Raised while the samples loop runs, restored after.
GC_YOUNG_THRESHOLD = 20_000
JOB_CHUNK = 256  # jobs taken from the loader, looked up in the caches and handed to the writer at once

# what the caches know of a sample: (prompt-digest key, the stored prompt, the cached response);
# the prompt and response only when both are cached
Known = tuple[str | None, DigestedPrompt | None, Response | None]


class RunError(RuntimeError):
    """A run that cannot start or continue; the message says why and what to do."""


class ConfigMismatchError(RunError):
    pass


@dataclass(frozen=True)
class RunOptions:
    """Everything `cvbench run` takes. Paths are resolved by the caller (the CLI)."""

    model: str = DEFAULT_MODEL
    tasks: tuple[str, ...] = DEFAULT_TASKS
    data_dir: Path | None = None
    limit: int | None = None
    candidates: tuple[str, ...] | None = None  # MMVM settings; None: each task's "all"
    style: str | None = declared.STYLE.default
    mode: str = declared.MODE.default
    seed: int = declared.SEED.default
    concurrency: int = declared.CONCURRENCY.default
    shard: tuple[int, int] | None = None  # (index, count)
    out: Path | None = None
    cache: Path | None = None  # None with use_cache: the user cache file
    use_cache: bool = True
    judge: str | None = None
    base_urls: tuple[str, ...] = ()
    max_tokens: int | None = None  # None: the alias's recommendation, else DEFAULT_MAX_TOKENS
    option_logprobs: bool = False
    save_images: bool = True
    argv: tuple[str, ...] = ()
    ci_method: str = "wilson_design_effect"
    n_resamples: int = 2000
    progress: bool | None = None  # None: only when stderr is a terminal
    model_options: tuple[tuple[str, Any], ...] = ()  # --model-option KEY=VALUE, passed to the adapter
    alpha: float = declared.ALPHA.default  # overlay fill opacity (styles mask, marks)
    thickness: int = declared.THICKNESS.default  # overlay line width at <= 1024 px (scaled up beyond)
    image_format: str | None = None  # png | jpeg; None: the provider's default (jpeg for API providers), else png
    jpeg_quality: int = declared.JPEG_QUALITY.default
    max_side: int | None = None  # resize policy: longest side
    max_pixels: int | None = None  # resize policy: total pixels
    price: Price | None = None  # USD per million input/output tokens: each record's usage.cost_usd
    fail_fast: int = DEFAULT_WINDOW  # stop when this many first requests all fail fatally (0: never)
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE  # a finished run above it has failed (exit 3)

    def __post_init__(self) -> None:
        # ranges and candidate settings are declared and checked once (cvbench/core/options.py, candidates.py)
        try:
            declared.check_fields(self, declared.ALL_OPTIONS)
            settings = parse_settings(self.candidates)
        except (declared.OptionError, CandidateSettingError) as exc:
            raise ValueError(str(exc)) from None
        object.__setattr__(self, "candidates", tuple(map(str, settings)) if settings else None)


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    status: str  # "complete" | "partial" | "cancelled"
    results: dict[str, Any]
    new_records: int
    resumed_records: int
    failure: str | None = None  # why the run failed (stopped early, or too many errors)

    @property
    def exit_code(self) -> int:
        if self.failure is not None:
            return EXIT_FAILED
        return EXIT_CANCELLED if self.status == "cancelled" else 0


@dataclass(frozen=True)
class Job:
    """One (task, setting, sample) to evaluate, numbered in input order."""

    index: int
    spec: TaskSpec
    setting: str
    item: Sample | InvalidSample
    record_id: str


# ------------------------------------------------------------------------------ pure helpers


def parse_shard(text: str) -> tuple[int, int]:
    """'0/4' -> (0, 4)."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise ValueError(f"--shard must be I/N with 0 <= I < N (shards are counted from 0: 0/4 ... 3/4), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def in_shard(task: str, sample_id: str, shard: tuple[int, int] | None) -> bool:
    """Stable assignment of a sample (all its settings) to one of N shards."""
    if shard is None:
        return True
    digest = hashlib.sha256(f"{task}/{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % shard[1] == shard[0]


def item_sample_id(item: Sample | InvalidSample) -> str:
    """The sample id; an unreadable record without one is named by its file name and line,
    not its absolute path, so the id is the same wherever the data lives."""
    if isinstance(item, Sample):
        return item.sample_id
    if item.sample_id is not None:
        return item.sample_id
    where = Path(item.source.file).name + (f":{item.source.line}" if item.source.line is not None else "")
    return f"invalid@{where}" + (f" ({item.source.item})" if item.source.item else "")


def record_id(task: str, setting: str, sample_id: str) -> str:
    return f"{task}@{setting}/{sample_id}"


def task_settings(spec: TaskSpec, candidates: Sequence[str] | None) -> tuple[str, ...]:
    """Candidate settings evaluated for a task: MMVM takes `--candidates` (default all)."""
    try:
        return check_for_task(spec, parse_settings(candidates))
    except CandidateSettingError as exc:
        raise RunError(str(exc)) from None


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def default_out_dir(options: RunOptions) -> Path:
    """`runs/<model>/<tasks>[-...]`: the same command names the same folder, so it resumes."""
    parts = ["+".join(options.tasks)]
    if options.candidates:
        parts.append("c" + "-".join(options.candidates))
    if options.limit is not None:
        parts.append(f"limit{options.limit}")
    if options.seed:
        parts.append(f"seed{options.seed}")
    if options.mode != "auto":
        parts.append(options.mode)
    if options.style:
        parts.append(options.style)
    if options.alpha != RunOptions.alpha:
        parts.append(f"alpha{options.alpha:g}")
    if options.thickness != RunOptions.thickness:
        parts.append(f"thick{options.thickness}")
    if options.image_format != RunOptions.image_format:
        parts.append(f"{options.image_format}{options.jpeg_quality}")
    if options.max_side is not None:
        parts.append(f"side{options.max_side}")
    if options.max_pixels is not None:
        parts.append(f"px{options.max_pixels}")
    if options.model_options:
        digest = hashlib.sha256(json.dumps(sorted(options.model_options), default=str).encode()).hexdigest()
        parts.append("opts" + digest[:8])
    if options.shard is not None:
        parts.append(f"shard{options.shard[0]}of{options.shard[1]}")
    # redacted first: a password in an lmms spec's base_url must not become a folder name
    return Path("runs") / slug(str(redact(options.model))) / slug("_".join(parts))


_PLAIN_SCALARS = (str, int, bool, type(None))


def jsonable(value: Any) -> Any:
    """A JSON-ready copy (dataclasses, tuples, numpy scalars/arrays, paths)."""
    kind = type(value)  # exact built-in types first: they are most values and cannot be dataclasses
    if kind in _PLAIN_SCALARS:
        return value
    if kind is dict:
        return {str(k): jsonable(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [jsonable(v) for v in value]
    if kind is float:
        return None if math.isnan(value) else value
    if is_dataclass(value) and not isinstance(value, type):
        return jsonable(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy scalars and arrays
        return jsonable(value.tolist())
    if isinstance(value, float) and value != value:
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


RETRY_ENV = {
    "CVBENCH_TIMEOUT_S": ("timeout_s", float),
    "CVBENCH_MAX_RETRIES": ("max_retries", int),
    "CVBENCH_BUDGET_S": ("budget_s", float),
    "CVBENCH_RETRY_BASE_DELAY_S": ("retry_base_delay_s", float),
    "CVBENCH_RETRY_MAX_DELAY_S": ("retry_max_delay_s", float),
}


DEFAULT_MAX_TOKENS = 1024


def effective_max_tokens(options: RunOptions) -> int:
    """--max-tokens when given, else the model alias's recommendation, else DEFAULT_MAX_TOKENS."""
    if options.max_tokens is not None:
        return options.max_tokens
    from cvbench.model_adapters.registry import recommended_max_tokens

    return recommended_max_tokens(options.model) or DEFAULT_MAX_TOKENS


def parse_model_option(item: str) -> tuple[str, Any]:
    """'KEY=VALUE' -> (KEY, VALUE), VALUE read as JSON when it is valid JSON (numbers, true, lists), else text."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--model-option {item!r}: expected KEY=VALUE")
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def retry_settings_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """API retry overrides from the environment (per-attempt timeout, retries, budget, backoff);
    only the variables that are set. A value that is not a non-negative number is an error."""
    out: dict[str, Any] = {}
    for name, (key, kind) in RETRY_ENV.items():
        raw = environ.get(name, "").strip()
        if not raw:
            continue
        try:
            value = kind(raw)
        except ValueError:
            raise RunError(f"${name}={raw!r}: expected a {'whole ' if kind is int else ''}number") from None
        if value < 0 or (key in ("timeout_s", "budget_s") and value == 0):
            raise RunError(f"${name}={raw!r}: must be {'> 0' if key in ('timeout_s', 'budget_s') else '>= 0'}")
        out[key] = value
    return out


def attempt_statistics(records: Sequence[metrics_mod.AnyRecord]) -> dict[str, int]:
    """How hard the model calls were: attempts over the records fetched from the model (cache
    hits and invalid samples excluded), and how many needed more than one."""
    fetched = [r for r in records if r.attempts > 0 and not r.cached]
    return {
        "attempts": sum(r.attempts for r in fetched),
        "retried_requests": sum(1 for r in fetched if r.attempts > 1),
        "max_attempts": max((r.attempts for r in fetched), default=0),
    }


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


# ------------------------------------------------------------------------------ record building


def invalid_record(
    job: Job,
    reason: str,
    *,
    sample: Sample | None = None,
    slices: dict[str, list[str]] | None = None,
    prompt: Prompt | None = None,
) -> SampleRecord:
    item = job.item
    source = str(item.source)
    opts = prompt.options if prompt is not None else (sample.options if sample is not None else ())
    return SampleRecord(
        record_id=job.record_id,
        task=job.spec.name,
        benchmark=job.spec.benchmark,
        setting=job.setting,
        sample_id=item_sample_id(item),
        cluster=(sample.cluster if sample is not None else item_sample_id(item)),
        slices=slices or {},
        n_options=len(opts),
        answer=(prompt.answer if prompt else (sample.answer if sample else None)),
        prompt_text=prompt.text if prompt else "",
        image_sha256=[i.sha256 for i in prompt.images] if prompt else [],
        options=[[o.letter, o.text] for o in opts],
        mode=prompt.mode if prompt else "",
        parse_status="invalid",
        parse_reason="invalid sample",
        invalid=reason,
        source=source,
    )


def score_response(response: Response, prompt: Prompt) -> ParsedAnswer:
    if response.error is not None:
        return ParsedAnswer(None, "error", response.error.kind)
    if response.option_scores:
        tie_rule = (response.details or {}).get("tie_rule")
        return answer_from_scores(
            response.option_scores, prompt.options, tie_break="first" if tie_rule == "first" else None
        )
    return parse_answer(response.text, prompt.options)


def answered_record(
    job: Job,
    sample: Sample,
    slices: dict[str, list[str]],
    prompt: Prompt,
    response: Response,
    parsed: ParsedAnswer,
    cached: bool,
    judge: dict[str, Any] | None,
    price: Price | None = None,
) -> SampleRecord:
    error = None
    if response.error is not None:
        error = {
            "kind": response.error.kind,
            "message": response.error.message,
            "status": response.error.status,
            "retryable": response.error.retryable,
        }
    usage = {
        "input_tokens": response.usage.input_tokens,
        "output_tokens": response.usage.output_tokens,
        "cost_usd": response_cost(response.usage, price) if response.error is None else response.usage.cost_usd,
    }
    return SampleRecord(
        record_id=job.record_id,
        task=job.spec.name,
        benchmark=job.spec.benchmark,
        setting=job.setting,
        sample_id=sample.sample_id,
        cluster=sample.cluster,
        slices=slices,
        n_options=len(prompt.options),
        answer=prompt.answer,
        prompt_text=prompt.text,
        image_sha256=[i.sha256 for i in prompt.images],
        options=[[o.letter, o.text] for o in prompt.options],
        mode=prompt.mode,
        response=response.text,
        parsed=parsed.letter,
        parse_status=parsed.status,
        parse_reason=parsed.reason,
        correct=parsed.letter is not None and parsed.letter == prompt.answer,
        error=error,
        usage=usage,
        latency_s=round(float(response.latency_s), 6),
        attempts=int(response.attempts),
        cached=cached,
        option_scores=jsonable(dict(response.option_scores)) if response.option_scores is not None else None,
        protocol=jsonable({**prompt.protocol, **({"model": dict(response.details)} if response.details else {})}),
        source=str(sample.source),
        judge=judge,
        reasoning=response.reasoning,
    )


def redact_response(response: Response, secrets: Sequence[str]) -> Response:
    """The response as it may be stored (cache): secrets removed from its text, since a server
    or proxy may echo the credentials it was sent."""
    from dataclasses import replace

    text = redact(response.text, secrets) if response.text is not None else None
    reasoning = redact(response.reasoning, secrets) if response.reasoning is not None else None
    if text == response.text and reasoning == response.reasoning:
        return response
    return replace(response, text=text, reasoning=reasoning)


def redact_record(record: SampleRecord, secrets: Sequence[str]) -> str:
    return RecordWriter(secrets).written(record)[0]


class RecordWriter:
    """Turns records into their samples.jsonl lines: `redact(jsonable(asdict(record)))` as JSON,
    in one walk over the record instead of three. Strings repeat across records (options, slice
    labels, protocol values), so the redacted form of each is remembered; `redact` is a pure
    function of the string and the secrets, fixed for a run."""

    _MEMO_LIMIT = 50_000  # strings remembered (cleared when full: memory stays bounded)

    def __init__(self, secrets: Sequence[str]) -> None:
        self._secrets = list(secrets)
        self._strings: dict[str, str] = {}
        self._keys: dict[str, bool] = {}
        self._fields = tuple(f.name for f in fields(SampleRecord))

    def written(self, record: SampleRecord) -> tuple[str, metrics_mod.ScoredRecord]:
        """The record's line (secrets removed) and what the metrics read of that line: the same
        values as reading the file back, without reading it."""
        data = self._clean({name: getattr(record, name) for name in self._fields})
        return json.dumps(data, ensure_ascii=False, sort_keys=True), metrics_mod.scored_record(data)

    def _clean(self, value: Any) -> Any:
        kind = type(value)
        if kind is str:
            out = self._strings.get(value)
            if out is None:
                if len(self._strings) >= self._MEMO_LIMIT:
                    self._strings.clear()
                out = self._strings[value] = redact(value, self._secrets)
            return out
        if kind is int or kind is bool or value is None:
            return value
        if kind is float:
            return None if math.isnan(value) else value
        if kind is dict:
            out_dict = {}
            for k, v in value.items():
                key = str(k)
                secret = self._keys.get(key)
                if secret is None:
                    secret = self._keys[key] = is_secret_key(key)
                if not secret:
                    out_dict[key] = self._clean(v)
            return out_dict
        if kind is list or kind is tuple:
            return [self._clean(v) for v in value]
        return redact(jsonable(value), self._secrets)  # dataclasses, paths, numpy values, sets


def written_record(record: SampleRecord, secrets: Sequence[str]) -> tuple[str, metrics_mod.ScoredRecord]:
    return RecordWriter(secrets).written(record)


# ------------------------------------------------------------------------------ run directory I/O


def load_existing(run_dir: Path) -> tuple[list[str], int]:
    """Prepare `samples.jsonl` for a resume: drop a torn last line and error records (they are
    retried), keep the rest. Returns (finished record ids, dropped error records)."""
    path = run_dir / SAMPLES_FILE
    if not path.exists():
        return [], 0
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    kept: list[bytes] = []
    ids: list[str] = []
    seen: set[str] = set()
    dropped = 0
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            if lineno == len(lines):  # the torn final write of a crash (no newline after it)
                continue
            raise RunDirError(
                f"{path}:{lineno}: invalid JSON in the middle of the file; "
                f"move the run directory away or repair that line"
            ) from None
        rid = data.get("record_id")
        if not isinstance(rid, str):
            raise RunDirError(f"{path}:{lineno}: record without a record_id")
        if rid in seen:
            raise RunDirError(f"{path}:{lineno}: duplicate record_id {rid!r}")
        if data.get("parse_status") == "error":
            dropped += 1
            continue
        seen.add(rid)
        ids.append(rid)
        kept.append(line)
    new = b"".join(line + b"\n" for line in kept)
    if new != raw:
        write_bytes_atomic(path, new)
    return ids, dropped


def save_prompt_images(run_dir: Path, images: Sequence[PromptImage]) -> None:
    """Write each image once, content-addressed, via a temporary file and rename."""
    for image in images:
        ext = _EXTENSIONS.get(image.mime, "bin")
        path = run_dir / image_relpath(image.sha256, ext)
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, image.data, fsync=False)  # content-addressed: a rerun rewrites a lost one


class SamplesWriter:
    """The single writer of samples.jsonl. Each record is appended the moment it is handed over
    (completion order) and flushed to the operating system at once, so a crash of the process
    loses only the records still in flight, never finished ones stuck behind a slow request.
    fsync runs at most every FSYNC_INTERVAL_S and on close (one fsync per record cost ~6 ms each,
    longer than a cached sample takes): a power loss can lose the last fraction of a second of
    records, as it can lose the response cache's last commits (SQLite WAL, synchronous=NORMAL); a
    rerun recomputes them from the cache.

    The writer keeps each line's job index, offset and length (a few ints per record, not the
    lines): `rewrite_in_job_order()` then puts a finished file into job order by copying the
    lines across, so two runs of the same command still compare line by line.

    A failed write (disk full, I/O error, read-only file system) cuts the file back to its last
    whole line, keeps `error` and calls `on_error`; later records are not written (the runner
    stops, and a rerun resumes from the cache)."""

    FSYNC_INTERVAL_S = 0.5

    def __init__(self, path: Path, secrets: Sequence[str], on_error: Callable[[], None] | None = None) -> None:
        self.path = path
        self._fh = open(path, "ab", buffering=0)  # unbuffered: nothing half-written waits in a buffer after a failure
        self.error: OSError | None = None
        self._on_error = on_error
        self._end = self._fh.tell()  # lines already there (a resumed run) stay first
        self._start = self._end
        self.records = RecordWriter(secrets)  # shared with the threads that serialise cache hits
        self._scored: list[tuple[int, metrics_mod.ScoredRecord]] = []
        self._spans: list[tuple[int, int, int]] = []  # (job index, byte offset, byte length) of each line written
        self._last_index = -1
        self.in_job_order = True
        self._synced_at = time.monotonic()
        self._unsynced = False
        self.written = 0

    def put(self, index: int, record: SampleRecord | tuple[str, metrics_mod.ScoredRecord] | None) -> None:
        """Hand over job `index`'s record (None: nothing to write, e.g. resumed; a tuple: the
        record already made into its line by `written_record`)."""
        self.put_many([(index, record)])

    def put_many(self, items: Sequence[tuple[int, SampleRecord | tuple[str, metrics_mod.ScoredRecord] | None]]) -> None:
        """Append several jobs' records at once (one write and one flush)."""
        if self.error is not None:
            return
        chunks: list[bytes] = []
        state = (self._end, len(self._spans), self._last_index, self.in_job_order)
        for index, rec in items:
            if rec is None:
                continue
            line, scored = rec if isinstance(rec, tuple) else self.records.written(rec)
            data = (line + "\n").encode("utf-8")
            self._spans.append((index, self._end, len(data)))
            self._scored.append((index, scored))
            self._end += len(data)
            if index < self._last_index:
                self.in_job_order = False
            self._last_index = max(self._last_index, index)
            chunks.append(data)
        if chunks:
            pending = memoryview(b"".join(chunks))
            try:
                while pending:
                    pending = pending[self._fh.write(pending) or 0 :]
            except OSError as exc:
                self._fail(exc, state)
                return
            self._unsynced = True
            self.written += len(chunks)
        if self._unsynced and time.monotonic() - self._synced_at >= self.FSYNC_INTERVAL_S:
            self.sync()

    def _fail(self, exc: OSError, state: tuple[int, int, int, bool] | None) -> None:
        if state is not None:  # forget the lines of the failed write and cut away what part of them landed
            self._end, n_spans, self._last_index, self.in_job_order = state
            del self._spans[n_spans:], self._scored[n_spans:]
            try:
                os.ftruncate(self._fh.fileno(), self._end)
            except OSError:
                pass  # iter_records and load_existing skip a torn last line
        self.error = OSError(exc.errno, exc.strerror or str(exc), str(self.path))
        if self._on_error is not None:
            self._on_error()

    @property
    def scored(self) -> list[metrics_mod.ScoredRecord]:
        """What the metrics read of each line written, in job order."""
        pairs = self._scored if self.in_job_order else sorted(self._scored, key=lambda pair: pair[0])
        return [scored for _, scored in pairs]

    def sync(self) -> None:
        if self._unsynced and self.error is None:
            try:
                os.fsync(self._fh.fileno())
            except OSError as exc:
                self._fail(exc, None)
            self._unsynced = False
        self._synced_at = time.monotonic()

    def close(self) -> None:
        if not self._fh.closed:
            self.sync()
        self._fh.close()

    def rewrite_in_job_order(self) -> None:
        """After `close()`: rewrite the file with this writer's lines in job order (lines that were
        there before it opened stay first), streaming line by line; atomic (temp file + rename)."""
        if self.in_job_order:
            return
        tmp = unique_temp_path(self.path)
        try:
            with open(self.path, "rb") as src, open(tmp, "wb") as dst:
                dst.write(src.read(self._start))  # lines there before this writer opened (none when the runner asks)
                for _, offset, length in sorted(self._spans):
                    src.seek(offset)
                    dst.write(src.read(length))
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)  # the file in completion order stays whole
            raise OSError(exc.errno, exc.strerror or str(exc), str(self.path)) from exc
        self.in_job_order = True


def reorder_samples(run_dir: Path, order: Sequence[str]) -> None:
    """Rewrite samples.jsonl in job order (after a resume the retried records sit at the end)."""
    path = run_dir / SAMPLES_FILE
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    by_id = {json.loads(ln)["record_id"]: ln for ln in lines}
    rank = {rid: i for i, rid in enumerate(order)}
    ordered = sorted(by_id, key=lambda rid: (rank.get(rid, len(rank)), rid))
    if ordered == [json.loads(ln)["record_id"] for ln in lines]:
        return
    write_bytes_atomic(path, "".join(by_id[rid] + "\n" for rid in ordered).encode("utf-8"))


def read_records(run_dir: Path) -> list[SampleRecord]:
    from cvbench.rundir.format import iter_records

    return list(iter_records(run_dir))


# ------------------------------------------------------------------------------ the run


class Runner:
    """One `cvbench run`: set up with `prepare()`, then `execute()`."""

    def __init__(self, options: RunOptions, *, resolve_model: Callable[..., ModelAdapter] | None = None) -> None:
        if options.concurrency < 1:
            raise RunError("--concurrency must be at least 1")
        if options.limit is not None and options.limit < 0:
            raise RunError("--limit must be >= 0")
        self.options = options
        self.run_dir = Path(options.out) if options.out is not None else default_out_dir(options)
        self._resolve_model = resolve_model
        self._stop = False
        self._hard_stop = False
        self._secrets = secret_values()

    # -- setup ---------------------------------------------------------------------------

    def _load_specs(self) -> list[TaskSpec]:
        from cvbench.tasks.registry import get_task

        specs = []
        for name in self.options.tasks:
            try:
                specs.append(get_task(name))
            except KeyError as exc:
                raise RunError(str(exc)) from None
        if len({s.name for s in specs}) != len(specs):
            raise RunError(f"task listed twice in --task {','.join(self.options.tasks)}")
        return specs

    def _model_options(self) -> Any:
        from cvbench.model_adapters.registry import ModelOptions

        retry = retry_settings_from_env(os.environ)
        extra = {k: retry[k] for k in ("retry_base_delay_s", "retry_max_delay_s") if k in retry}
        extra.update(dict(self.options.model_options))
        return ModelOptions(
            base_urls=tuple(self.options.base_urls),
            concurrency=self.options.concurrency,
            seed=self.options.seed,
            extra=extra,
            **{k: retry[k] for k in ("timeout_s", "max_retries", "budget_s") if k in retry},
        )

    def _resolve(self, spec: str) -> ModelAdapter:
        if self._resolve_model is not None:
            return self._resolve_model(spec, self._model_options())
        from cvbench.model_adapters.registry import ModelResolutionError
        from cvbench.model_adapters.resolve import resolve_model

        try:
            return resolve_model(spec, self._model_options())
        except (ModelResolutionError, ImportError) as exc:
            raise RunError(str(exc)) from None

    def _prompt_settings(self, contract: Any = None) -> Any:
        from cvbench.model_adapters.image_policy import run_image_policy
        from cvbench.prompting.build import PromptSettings

        o = self.options
        kwargs: dict[str, Any] = {"mode": o.mode, "seed": o.seed, "alpha": o.alpha, "thickness": o.thickness}
        if o.style is not None:
            kwargs["style"] = o.style
        try:
            kwargs["image"] = run_image_policy(contract, o.image_format, o.jpeg_quality, o.max_side, o.max_pixels)
            return PromptSettings(**kwargs)
        except ValueError as exc:
            raise RunError(str(exc)) from None

    def build_config(
        self,
        specs: Sequence[TaskSpec],
        adapter: ModelAdapter,
        judge: ModelAdapter | None,
        settings_by_task: Mapping[str, tuple[str, ...]],
        prompt_settings: Any,
        generation: GenerationConfig,
    ) -> dict[str, Any]:
        from cvbench.tasks.loading import dataset_fingerprint

        o = self.options
        datasets = {}
        for spec in specs:
            datasets[spec.name] = {
                "benchmark": spec.benchmark,
                "fingerprint": dataset_fingerprint(spec, o.data_dir),
                "synthetic": spec.synthetic,
                "settings": list(settings_by_task[spec.name]),
            }
        from cvbench.prompting.protocols import crossviewbench as cvb_protocol
        from cvbench.prompting.protocols import mmvm as mmvm_protocol

        protocol = {"crossviewbench": cvb_protocol.PROTOCOL_ID, "mmvm": mmvm_protocol.PROTOCOL_ID}
        config = {
            "schema": CONFIG_SCHEMA,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "environment": environment(),
            "command": redact_argv(list(o.argv), self._secrets) if o.argv else None,
            "model": {
                "id": adapter.info.model_id,
                "info": jsonable(adapter.info),
                "capabilities": jsonable(adapter.capabilities),
                "spec": o.model,
            },
            "model_settings": jsonable(dict(adapter.settings())),
            "generation": jsonable(generation.as_dict()),
            "tasks": [s.name for s in specs],
            "candidates": {name: list(v) for name, v in settings_by_task.items()},
            "mode": o.mode,
            "style": o.style,
            "seed": o.seed,
            "limit": o.limit,
            "shard": list(o.shard) if o.shard else None,
            "judge": (
                {"spec": o.judge, "id": judge.info.model_id, "settings": jsonable(dict(judge.settings()))}
                if judge is not None
                else None
            ),
            "prompt_settings": jsonable(prompt_settings.as_dict()),
            "datasets": datasets,
            "protocol": protocol,
            "runtime": {
                "concurrency": o.concurrency,
                "cache": str(o.cache) if o.use_cache and o.cache else ("default" if o.use_cache else None),
                "save_images": o.save_images,
                "data_dir": str(o.data_dir) if o.data_dir else None,
                "retry_env": retry_settings_from_env(os.environ),
            },
            "statistics": {"ci_method": o.ci_method, "resamples": o.n_resamples},
            "pricing": o.price.as_dict() if o.price is not None else None,
        }
        contract = getattr(adapter, "image_contract", None)
        if contract is not None:  # the provider's image limits shape every image sent: part of the identity
            config["image_contract"] = contract.as_dict()
        return redact(config, self._secrets)

    # -- execution -----------------------------------------------------------------------

    def execute(self) -> RunOutcome:
        return asyncio.run(self._execute())

    async def _execute(self) -> RunOutcome:
        o = self.options
        specs = self._load_specs()
        settings_by_task = {s.name: task_settings(s, o.candidates) for s in specs}
        adapter = self._resolve(o.model)
        try:
            shared_settings = self._prompt_settings(getattr(adapter, "image_contract", None))
        except BaseException:
            await adapter.aclose()
            raise
        prompt_settings = {s.name: shared_settings for s in specs}
        judge: ModelAdapter | None = None
        generation = GenerationConfig(
            temperature=0.0, max_tokens=effective_max_tokens(o), seed=o.seed, option_logprobs=o.option_logprobs
        )
        try:
            judge = self._resolve(o.judge) if o.judge else None
            config = self.build_config(specs, adapter, judge, settings_by_task, shared_settings, generation)
            try:  # one writer per run directory, held until this run ends (see cvbench/runner/runlock.py)
                lock = RunDirLock.acquire(self.run_dir)
            except RunDirBusyError as exc:
                raise RunError(str(exc)) from None
            try:
                self._open_run_dir(config)
                return await self._run(specs, settings_by_task, prompt_settings, adapter, judge, generation, config)
            finally:
                lock.release()
        finally:
            await adapter.aclose()
            if judge is not None:
                await judge.aclose()

    def _open_run_dir(self, config: dict[str, Any]) -> None:
        config_path = self.run_dir / CONFIG_FILE
        if config_path.exists():
            old = read_json(config_path)
            diffs = config_differences(old, config)
            if diffs:
                raise ConfigMismatchError(
                    f"{self.run_dir} holds a run with a different configuration:\n  "
                    + "\n  ".join(diffs)
                    + "\nuse another --out, or the original options to resume it"
                )
            config["resumed"] = list(old.get("resumed") or []) + [config["created"]]
            config["created"] = old.get("created")
        elif (self.run_dir / SAMPLES_FILE).exists():
            raise RunError(f"{self.run_dir} has {SAMPLES_FILE} but no {CONFIG_FILE}: not a cvbench run directory")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(config_path, config)

    def _iter_jobs(
        self, specs: Sequence[TaskSpec], settings_by_task: Mapping[str, tuple[str, ...]]
    ) -> Generator[Job, None, None]:
        from cvbench.tasks.loading import iter_task_samples

        index = 0
        for spec in specs:
            seen: set[str] = set()
            for n, item in enumerate(iter_task_samples(spec, self.options.data_dir)):
                if self.options.limit is not None and n >= self.options.limit:
                    break
                sid = item_sample_id(item)
                if sid in seen:  # a repeated id must not share (and so replace) the first one's record
                    reason = item.reason if isinstance(item, InvalidSample) else f"duplicate sample_id {sid!r}"
                    item = InvalidSample(item.source, reason, None)
                    sid = item_sample_id(item)
                seen.add(sid)
                if not in_shard(spec.name, sid, self.options.shard):
                    continue
                for setting in settings_by_task[spec.name]:
                    yield Job(index, spec, setting, item, record_id(spec.name, setting, sid))
                    index += 1

    def _iter_job_chunks(
        self, specs: Sequence[TaskSpec], settings_by_task: Mapping[str, tuple[str, ...]], size: int
    ) -> Generator[list[Job], None, None]:
        """The jobs in input order, `size` at a time (one thread hand-off per chunk, not per job)."""
        chunk: list[Job] = []
        jobs = self._iter_jobs(specs, settings_by_task)
        try:
            for job in jobs:
                chunk.append(job)
                if len(chunk) >= size:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk
        finally:
            jobs.close()

    def _count_jobs(self, specs: Sequence[TaskSpec], settings_by_task: Mapping[str, tuple[str, ...]]) -> int:
        return sum(1 for _ in self._iter_jobs(specs, settings_by_task))

    def _request_stop(self) -> None:
        self._stop = True

    def _install_signals(
        self, loop: asyncio.AbstractEventLoop, progress: RunProgress, inflight: set[asyncio.Task[Any]]
    ) -> Callable[[], None]:
        def on_signal() -> None:
            if self._stop:
                self._hard_stop = True
                for task in list(inflight):
                    task.cancel()
                return
            self._stop = True
            progress.log("stopping: finishing in-flight samples (signal again to abandon them)")

        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, on_signal)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / platform
                pass

        def remove() -> None:
            for sig in installed:
                loop.remove_signal_handler(sig)

        return remove

    async def _run(
        self,
        specs: Sequence[TaskSpec],
        settings_by_task: Mapping[str, tuple[str, ...]],
        prompt_settings: Mapping[str, Any],
        adapter: ModelAdapter,
        judge: ModelAdapter | None,
        generation: GenerationConfig,
        config: dict[str, Any],
    ) -> RunOutcome:
        from cvbench.model_adapters.image_policy import build_fitted_prompt
        from cvbench.prompting.build import PromptError
        from cvbench.tasks.slices import SliceError, sample_slices

        o = self.options
        loop = asyncio.get_running_loop()
        finished_ids, retried = load_existing(self.run_dir)
        finished = set(finished_ids)
        try:
            cache = ResponseCache(o.cache or default_response_cache()) if o.use_cache else None
        except CacheError as exc:
            hint = f"; {exc.choices}" if isinstance(exc, CacheUnusableError) else ""
            raise RunError(f"{exc}; move it away, pass another --cache, or use --no-cache{hint}") from None
        # a rerun whose answers are cached skips rendering (see cvbench/runner/prompt_cache.py)
        digests = PromptDigestCache(cache.path) if cache is not None else None
        fingerprints = {name: str(d.get("fingerprint")) for name, d in (config.get("datasets") or {}).items()}
        contract = getattr(adapter, "image_contract", None)
        settings_records = {
            name: jsonable(s.as_dict()) | ({"image_contract": contract.as_dict()} if contract else {})
            for name, s in prompt_settings.items()
        }
        cpu_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, min(o.concurrency, os.cpu_count() or 1)), thread_name_prefix="cvbench-prompt"
        )
        io_pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="cvbench-io")
        writer = SamplesWriter(self.run_dir / SAMPLES_FILE, self._secrets, on_error=self._request_stop)
        writer_pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="cvbench-writer")
        order: list[str] = []
        semaphore = asyncio.Semaphore(o.concurrency)
        inflight: set[asyncio.Task[Any]] = set()
        model_settings = dict(adapter.settings())
        judge_settings = dict(judge.settings()) if judge is not None else {}
        resumed = 0
        progress = RunProgress(enabled=o.progress)
        watch = FailureWatch(window=o.fail_fast)

        async def ask(model: ModelAdapter, request: Request) -> tuple[Response, bool]:
            key = request.cache_key()
            if cache is not None:
                hit = await loop.run_in_executor(io_pool, cache.get, key)
                if hit is not None:
                    return hit, True
            try:
                response = await model.generate(request)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # adapters should not raise; never let one sample end the run
                response = Response(
                    text=None, error=ModelError("internal", redact(f"{type(exc).__name__}: {exc}", self._secrets))
                )
            if response.error is None and cache is not None:
                await loop.run_in_executor(
                    io_pool, cache.put, key, request.model_id, redact_response(response, self._secrets)
                )
            return response, False

        async def run_judge(sample: Sample, prompt: Prompt, text: str) -> tuple[ParsedAnswer, dict[str, Any]]:
            assert judge is not None
            judge_prompt = Prompt(
                sample_id=prompt.sample_id,
                text=judge_prompt_text(prompt.text, prompt.options, text),
                images=(),
                options=prompt.options,
                answer=None,
                mode="overlay",
                setting=prompt.setting,
                protocol={"purpose": "judge"},
            )
            request = Request(
                judge.info.model_id,
                judge_prompt,
                GenerationConfig(temperature=0.0, max_tokens=JUDGE_MAX_TOKENS, seed=o.seed),
                judge_settings,
            )
            response, cached = await ask(judge, request)
            info: dict[str, Any] = {"model": judge.info.model_id, "response": response.text, "cached": cached}
            if response.error is not None:
                info["error"] = {"kind": response.error.kind, "message": response.error.message}
                return ParsedAnswer(None, "unparsed", "judge failed"), info
            return parse_judge(response.text, prompt.options), info

        def known_answers(chunk: Sequence[Job]) -> dict[int, Known]:
            """Per job index of the valid samples in `chunk`: (digest key, the prompt's digest, the
            cached response), the digest and response only when both caches know the sample and
            the run directory needs no image from it. One query per cache for the whole chunk."""
            assert digests is not None and cache is not None
            keys: dict[int, str | None] = {}
            for job in chunk:
                if isinstance(job.item, Sample) and job.record_id not in finished:
                    keys[job.index] = prompt_key(
                        job.item,
                        job.spec.name,
                        job.setting,
                        fingerprints.get(job.spec.name, ""),
                        settings_records[job.spec.name],
                        adapter.capabilities,
                    )
            stored = digests.get_many([k for k in keys.values() if k is not None])
            usable: dict[int, tuple[DigestedPrompt, str]] = {}
            for index, key in keys.items():
                known = stored.get(key) if key is not None else None
                if known is None:
                    continue
                if o.save_images and not all(
                    (self.run_dir / image_relpath(sha, _EXTENSIONS.get(mime, "bin"))).exists()
                    for sha, mime in zip(known.image_sha256, known.image_mimes)
                ):
                    continue
                usable[index] = (known, Request(adapter.info.model_id, known, generation, model_settings).cache_key())
            hits = cache.get_many([request_key for _, request_key in usable.values()])
            out: dict[int, Known] = {}
            for index, key in keys.items():
                known, hit = None, None
                if index in usable:
                    hit = hits.get(usable[index][1])
                    known = usable[index][0] if hit is not None else None
                out[index] = (key, known, hit)
            return out

        def cached_records(
            chunk: Sequence[Job], known: Mapping[int, Known]
        ) -> dict[int, tuple[str, metrics_mod.ScoredRecord]]:
            """The records (and their redacted JSON lines) of the jobs in `chunk` that need neither
            rendering nor a model: invalid samples, and samples whose prompt digest and response
            are both cached (unless the answer needs the judge). The rest go through `process`."""
            out: dict[int, tuple[str, metrics_mod.ScoredRecord]] = {}
            for job in chunk:
                if job.record_id in finished:
                    continue
                if isinstance(job.item, InvalidSample):
                    record = invalid_record(job, job.item.reason)
                else:
                    _, digest, hit = known.get(job.index, (None, None, None))
                    if digest is None or hit is None:
                        continue
                    sample = job.item
                    try:
                        slices = sample_slices(sample, job.spec, job.setting)
                    except SliceError:
                        continue  # process() writes the invalid record
                    parsed = score_response(hit, digest)
                    if needs_judge(parsed, hit):
                        continue
                    record = replace(
                        answered_record(job, sample, slices, digest, hit, parsed, True, None, o.price),
                        image_sha256=list(digest.image_sha256),
                    )
                out[job.index] = writer.records.written(record)
            return out

        def needs_judge(parsed: ParsedAnswer, response: Response) -> bool:
            return parsed.status == "unparsed" and judge is not None and bool(response.text and response.text.strip())

        async def process(job: Job, known: Known | None) -> SampleRecord:
            item = job.item
            if isinstance(item, InvalidSample):
                return invalid_record(job, item.reason)
            sample = item
            try:
                slices = sample_slices(sample, job.spec, job.setting)
            except SliceError as exc:
                return invalid_record(job, f"slices: {exc}", sample=sample)
            digest_key: str | None = None
            if known is not None:
                digest_key, digest, hit = known
                if digest is not None and hit is not None:
                    record = await conclude(job, sample, slices, digest, hit, True)
                    return replace(record, image_sha256=list(digest.image_sha256))
            try:
                prompt = await loop.run_in_executor(
                    cpu_pool,
                    build_fitted_prompt,
                    sample,
                    prompt_settings[job.spec.name],
                    adapter.capabilities,
                    job.setting,
                    contract,
                )
            except PromptError as exc:
                return invalid_record(job, f"prompt: {exc}", sample=sample, slices=slices)
            if digests is not None and digest_key is not None:
                await loop.run_in_executor(io_pool, digests.put, digest_key, prompt, jsonable(dict(prompt.protocol)))
            if o.save_images and prompt.images:
                await loop.run_in_executor(io_pool, save_prompt_images, self.run_dir, prompt.images)
            request = Request(adapter.info.model_id, prompt, generation, model_settings)
            response, cached = await ask(adapter, request)
            return await conclude(job, sample, slices, prompt, response, cached)

        async def conclude(
            job: Job, sample: Sample, slices: dict[str, list[str]], prompt: Prompt, response: Response, cached: bool
        ) -> SampleRecord:
            parsed = score_response(response, prompt)
            judge_info = None
            if needs_judge(parsed, response) and response.text is not None:
                parsed, judge_info = await run_judge(sample, prompt, response.text)
            return answered_record(job, sample, slices, prompt, response, parsed, cached, judge_info, o.price)

        def finish(job: Job, task: asyncio.Task[SampleRecord]) -> None:
            inflight.discard(task)
            semaphore.release()
            if task.cancelled():  # abandoned by a second signal: its record is never written
                return
            exc = task.exception()
            if exc is not None:
                failures.append((job, exc))
                return
            record = task.result()
            writer_pool.submit(writer.put, job.index, record)  # fsync off the event loop
            progress.advance(record.correct, record.parse_status)
            if not record.cached and record.parse_status != "invalid":
                line = watch.first_of_kind(record.error)
                if line is not None:
                    progress.log(redact(line, self._secrets))
                if watch.observe(record.error) is not None:
                    self._stop = True  # no new samples; the ones in flight finish and are written

        failures: list[tuple[Job, BaseException]] = []
        remove_signals = lambda: None
        complete = False
        try:
            gc_thresholds = gc.get_threshold()
            gc.set_threshold(max(gc_thresholds[0], GC_YOUNG_THRESHOLD), *gc_thresholds[1:])
            with progress:
                remove_signals = self._install_signals(loop, progress, inflight)
                total: int | None = None
                if progress.enabled:  # the bar's total; without a bar the count is len(order) at the end
                    progress.describe("counting samples")
                    total = await loop.run_in_executor(io_pool, self._count_jobs, specs, settings_by_task)
                    progress.set_total(total)
                progress.describe(adapter.info.model_id)
                chunks = self._iter_job_chunks(specs, settings_by_task, JOB_CHUNK)
                sentinel = object()
                while not self._stop and not failures:
                    chunk = await loop.run_in_executor(io_pool, next, chunks, sentinel)
                    if chunk is sentinel:
                        complete = True
                        break
                    assert isinstance(chunk, list)
                    known: dict[int, Known] = {}
                    if digests is not None:
                        known = await loop.run_in_executor(io_pool, known_answers, chunk)
                    ready = await loop.run_in_executor(io_pool, cached_records, chunk, known)
                    handed: list[tuple[int, SampleRecord | tuple[str, metrics_mod.ScoredRecord] | None]] = []
                    stopped = False
                    for job in chunk:
                        if self._stop or failures:
                            stopped = True
                            break
                        order.append(job.record_id)
                        if job.record_id in finished:
                            handed.append((job.index, None))
                            resumed += 1
                            progress.advance(False, "resumed", resumed=True)
                            continue
                        if job.index in ready:
                            written = ready[job.index]
                            handed.append((job.index, written))
                            progress.advance(written[1].correct, written[1].parse_status)
                            continue
                        if handed:  # hand over what is ready before waiting for a slot
                            writer_pool.submit(writer.put_many, handed)
                            handed = []
                        await semaphore.acquire()
                        if self._stop:
                            semaphore.release()
                            order.pop()
                            stopped = True
                            break
                        task = asyncio.create_task(process(job, known.get(job.index)))
                        inflight.add(task)
                        task.add_done_callback(lambda t, j=job: finish(j, t))
                    if handed:
                        writer_pool.submit(writer.put_many, handed)
                    if stopped:
                        break
                while inflight:
                    await asyncio.wait(set(inflight))
                if total is None:
                    total = len(order)
        finally:
            remove_signals()
            if "gc_thresholds" in locals():
                gc.set_threshold(*gc_thresholds)
            if "chunks" in locals():
                chunks.close()
            writer_pool.shutdown(wait=True)
            writer.close()
            cpu_pool.shutdown(wait=True, cancel_futures=True)
            io_pool.shutdown(wait=True)
            if cache is not None:
                cache.close()
            if digests is not None:
                digests.close()
        if writer.error is not None:
            raise RunError(
                f"stopped: cannot write {writer.error.filename} ({writer.error.strerror}); the "
                f"{writer.written} records written before are kept; free space (or fix the file system) "
                f"and rerun the same command to resume"
            )
        if failures:
            job, exc = failures[0]
            raise RunError(
                f"{job.record_id}: unexpected failure ({type(exc).__name__}: {exc}); "
                f"finished records are saved, rerun the same command to resume"
            ) from exc
        cancelled = self._stop or not complete
        if not finished_ids:
            # the writer knows where each of its lines is: a copy in job order, only when completions
            # arrived out of order (a cancelled run is put in order too; a resume keeps that order)
            writer.rewrite_in_job_order()
        elif not cancelled:
            # a resumed run: its new records follow the kept ones; sort the whole file by job order
            reorder_samples(self.run_dir, order)
        # a run that started from an empty samples.jsonl wrote every record itself: the metrics read
        # the writer's copy of what each line holds instead of parsing the file back
        records: Sequence[metrics_mod.AnyRecord] = (
            writer.scored if not finished_ids else [metrics_mod.scored_record(r) for r in read_records(self.run_dir)]
        )
        status = (
            "cancelled" if cancelled else ("partial" if any(r.parse_status == "error" for r in records) else "complete")
        )
        model = {
            "id": adapter.info.model_id,
            "display_name": adapter.info.display_name,
            "access": adapter.info.access,
            "params_b": adapter.info.params_b,
            "provider": adapter.info.provider,
        }
        results = metrics_mod.compute_results(
            records, run_seed=o.seed, model=model, status=status, ci_method=o.ci_method, n_resamples=o.n_resamples
        )
        rate = error_rate([r.parse_status for r in records])
        failure = watch.stopped or (None if cancelled else verdict(rate, o.max_error_rate))
        results["run"] = {
            "new_records": writer.written,
            "resumed_records": resumed,
            "retried_errors": retried,
            "expected_records": total if not cancelled else None,
            **attempt_statistics(records),
            "error_rate": rate,
            "failure": failure,
        }
        write_json_atomic(self.run_dir / RESULTS_FILE, redact(results, self._secrets))
        return RunOutcome(self.run_dir, status, results, writer.written, resumed, failure)


def run(options: RunOptions) -> RunOutcome:
    """Run (or resume) an evaluation and write the run directory."""
    return Runner(options).execute()


# ------------------------------------------------------------------------------ merge


def merge_runs(run_dirs: Sequence[Path], out: Path) -> dict[str, Any]:
    """Join shard runs into `out`: same configuration apart from the shard, no record id twice.

    Records keep each shard's order, shards in index order; images are hard-linked (copied
    when linking is impossible). Returns the merged results."""
    import shutil

    if not run_dirs:
        raise RunError("merge: no run directories given")
    configs = [read_json(Path(d) / CONFIG_FILE) for d in run_dirs]
    base = configs[0]
    for d, cfg in zip(run_dirs[1:], configs[1:]):
        diffs = config_differences(base, cfg, ignore=("shard",))
        if diffs:
            raise RunError(f"merge: {d} has a different configuration than {run_dirs[0]}:\n  " + "\n  ".join(diffs))
    shards = [tuple(c["shard"]) if c.get("shard") else None for c in configs]
    counts = {s[1] for s in shards if s is not None}
    if len(counts) > 1:
        raise RunError(f"merge: shards of different counts: {sorted(counts)}")
    indexed = sorted(zip(shards, run_dirs), key=lambda p: (p[0] or (0, 0))[0])
    if len({s for s, _ in indexed}) != len(indexed):
        raise RunError("merge: the same shard is given twice: " + ", ".join(str(d) for _, d in indexed))
    out = Path(out)
    if (out / SAMPLES_FILE).exists() or (out / CONFIG_FILE).exists():
        raise RunError(f"merge: {out} already holds a run; choose an empty --out")
    statuses = []
    for _, d in indexed:
        try:
            statuses.append(read_json(Path(d) / RESULTS_FILE).get("status"))
        except RunDirError:
            statuses.append("cancelled")
    out.mkdir(parents=True, exist_ok=True)
    seen: dict[str, Path] = {}
    tmp = unique_temp_path(out / SAMPLES_FILE)
    with open(tmp, "w", encoding="utf-8") as fh:
        for _, d in indexed:
            for rec in read_records(Path(d)):
                if rec.record_id in seen:
                    fh.close()
                    tmp.unlink()
                    raise RunError(f"merge: record {rec.record_id!r} is in both {seen[rec.record_id]} and {d}")
                seen[rec.record_id] = Path(d)
                fh.write(rec.to_json() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, out / SAMPLES_FILE)
    for _, d in indexed:
        images = Path(d) / "images"
        if not images.is_dir():
            continue
        for src in images.rglob("*"):
            if not src.is_file() or src.name.endswith(".tmp"):
                continue
            dst = out / src.relative_to(d)
            if dst.exists():
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
    shard_count = next(iter(counts)) if counts else None
    covered = sorted(s[0] for s, _ in indexed if s is not None)
    all_shards = shard_count is not None and covered == list(range(shard_count))
    config = dict(base)
    config["shard"] = None
    config["merged_from"] = [
        {"run_dir": str(d), "shard": list(s) if s else None, "status": st} for (s, d), st in zip(indexed, statuses)
    ]
    write_json_atomic(out / CONFIG_FILE, config)
    records = read_records(out)
    if any(st == "cancelled" for st in statuses):
        status = "cancelled"
    elif (
        (shard_count is not None and not all_shards)
        or any(st == "partial" for st in statuses)
        or any(r.parse_status == "error" for r in records)
    ):
        status = "partial"
    else:
        status = "complete"
    prior = read_json(Path(indexed[0][1]) / RESULTS_FILE) if (Path(indexed[0][1]) / RESULTS_FILE).exists() else {}
    stats_cfg = base.get("statistics") or {}
    results = metrics_mod.compute_results(
        records,
        run_seed=int(base.get("seed") or 0),
        model=prior.get("model") or {"id": (base.get("model") or {}).get("id")},
        status=status,
        ci_method=stats_cfg.get("ci_method", "cluster_bootstrap"),
        n_resamples=int(stats_cfg.get("resamples", 2000)),
    )
    results["run"] = {"merged_shards": covered, "shard_count": shard_count}
    write_json_atomic(out / RESULTS_FILE, results)
    return results
