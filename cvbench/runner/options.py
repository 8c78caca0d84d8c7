"""What a run takes (`RunOptions`), what it gives back (`RunOutcome`), and the option parsing and
derived names that depend only on the options (shard, model options, retry environment, out-dir)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvbench.core import options as declared
from cvbench.core.candidates import CandidateSettingError, parse_settings
from cvbench.core.redaction import redact
from cvbench.model_adapters.registry import recommended_max_tokens
from cvbench.runner.failfast import DEFAULT_MAX_ERROR_RATE, DEFAULT_WINDOW, EXIT_FAILED
from cvbench.runner.pricing import Price

DEFAULT_TASKS = ("synth-crossviewbench", "synth-mmvm")
DEFAULT_MODEL = "mask-heuristic"
EXIT_CANCELLED = 130
DEFAULT_MAX_TOKENS = 1024


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
    ablation: str | None = None  # --ablate images|marks|text (docs/ablations.md); part of the identity

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


def parse_shard(text: str) -> tuple[int, int]:
    """'0/4' -> (0, 4)."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise ValueError(f"--shard must be I/N with 0 <= I < N (shards are counted from 0: 0/4 ... 3/4), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:8]


def _default(name: str) -> Any:
    return RunOptions.__dataclass_fields__[name].default


def _prompt_labels(o: RunOptions) -> list[str]:
    labels = []
    if o.alpha != _default("alpha"):
        labels.append(f"alpha{o.alpha:g}")
    if o.thickness != _default("thickness"):
        labels.append(f"thick{o.thickness}")
    if o.image_format != _default("image_format"):
        labels.append(f"{o.image_format}{o.jpeg_quality}")
    if o.max_side is not None:
        labels.append(f"side{o.max_side}")
    if o.max_pixels is not None:
        labels.append(f"px{o.max_pixels}")
    return labels


def _generation_labels(o: RunOptions) -> list[str]:
    labels = [f"tok{o.max_tokens}"] if o.max_tokens is not None else []
    return labels + (["logprobs"] if o.option_logprobs else [])


# The out-dir name is derived from the run identity (the RunConfig fields marked identity=True):
# one labeller per identity field, in the order the folder name lists them. What an identity field
# will hold is known only after the model and the data are loaded; the labellers read what the
# options ask of it, so the same command names the same folder (and resumes), and two commands
# that ask for different identities never share one. tests/runner/test_run_options.py checks that
# every identity field has its labeller.
IDENTITY_LABELS: tuple[tuple[str, Callable[[RunOptions], list[str]]], ...] = (
    ("tasks", lambda o: ["+".join(o.tasks)]),
    ("datasets", lambda o: ["c" + "-".join(o.candidates)] if o.candidates else []),  # the settings evaluated
    ("limit", lambda o: [f"limit{o.limit}"] if o.limit is not None else []),
    ("seed", lambda o: [f"seed{o.seed}"] if o.seed else []),
    ("mode", lambda o: [o.mode] if o.mode != "auto" else []),
    ("style", lambda o: [o.style] if o.style else []),
    ("prompt_settings", _prompt_labels),
    ("model_settings", lambda o: ["opts" + _digest(sorted(o.model_options))] if o.model_options else []),
    ("shard", lambda o: [f"shard{o.shard[0]}of{o.shard[1]}"] if o.shard is not None else []),
    ("ablation", lambda o: [f"ablate-{o.ablation}"] if o.ablation is not None else []),
    ("generation", _generation_labels),
    ("judge", lambda o: ["judge-" + slug(str(redact(o.judge)))] if o.judge else []),
    ("pricing", lambda o: [f"price{o.price.input_per_mtok:g}-{o.price.output_per_mtok:g}"] if o.price else []),
    # fixed by the code version: a resume across protocol versions is refused by the identity check
    ("protocol", lambda o: []),
    ("model", lambda o: []),  # the parent folder
)


def default_out_dir(options: RunOptions) -> Path:
    """`runs/<model>/<tasks>[_<identity labels>]`: the same command names the same folder, so it
    resumes; a different identity names another folder."""
    parts = [label for _, labeller in IDENTITY_LABELS for label in labeller(options)]
    # redacted first: a password in an lmms spec's base_url must not become a folder name
    return Path("runs") / slug(str(redact(options.model))) / slug("_".join(parts))


RETRY_ENV = {
    "CVBENCH_TIMEOUT_S": ("timeout_s", float),
    "CVBENCH_MAX_RETRIES": ("max_retries", int),
    "CVBENCH_BUDGET_S": ("budget_s", float),
    "CVBENCH_RETRY_BASE_DELAY_S": ("retry_base_delay_s", float),
    "CVBENCH_RETRY_MAX_DELAY_S": ("retry_max_delay_s", float),
}


def effective_max_tokens(options: RunOptions) -> int:
    """--max-tokens when given, else the model alias's recommendation, else DEFAULT_MAX_TOKENS."""
    if options.max_tokens is not None:
        return options.max_tokens
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
