"""Helpers shared by the in-process (local) model adapters: transformers, vLLM, CrossViewer, CoLVA.

Everything here is either a pure function (option-letter spellings, score reduction, option
parsing) or a small piece of plumbing with one job: `MicroBatcher` collects concurrent
`generate` calls into batches and runs them in one worker thread, so the event loop stays
free while the model computes and the model is only ever touched by that one thread.

Heavy libraries (torch, transformers, vllm) are imported lazily, inside functions, with a
`pip install 'cvbench[extra]'` hint when missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import io
import math
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import numpy as np

from cvbench.core.types import ErrorKind, ModelError, Option, PromptImage, Request, Response, Usage
from cvbench.model_adapters.registry import ModelResolutionError

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_ANSWER_PREFIX = "Answer:"


# ---------------------------------------------------------------------------------- imports


def require_module(name: str, extra: str, purpose: str) -> Any:
    """Import `name` or raise a ModelResolutionError that says which extra to install."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ModelResolutionError(
            f"{purpose} needs the Python package {name!r}, which is not installed ({exc}). "
            f"Install it with: pip install 'cvbench[{extra}]'"
        ) from exc


# ---------------------------------------------------------------------------------- options


def option_str(extra: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
    value = extra.get(key, default)
    if value is None:
        return None
    if not isinstance(value, (str, int, float)):
        raise ModelResolutionError(f"model option {key}={value!r}: expected a string")
    return str(value)


def option_int(extra: Mapping[str, Any], key: str, default: int | None, minimum: int = 1) -> int | None:
    value = extra.get(key, default)
    if value is None:
        return None
    try:
        number = int(str(value).strip())
    except ValueError as exc:
        raise ModelResolutionError(f"model option {key}={value!r}: expected an integer") from exc
    if number < minimum:
        raise ModelResolutionError(f"model option {key}={value!r}: must be >= {minimum}")
    return number


def option_float(extra: Mapping[str, Any], key: str, default: float | None) -> float | None:
    value = extra.get(key, default)
    if value is None:
        return None
    try:
        return float(str(value).strip())
    except ValueError as exc:
        raise ModelResolutionError(f"model option {key}={value!r}: expected a number") from exc


def option_bool(extra: Mapping[str, Any], key: str, default: bool) -> bool:
    value = extra.get(key, default)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ModelResolutionError(f"model option {key}={value!r}: expected true or false")


def check_known_options(extra: Mapping[str, Any], known: Sequence[str], backend: str) -> None:
    """Unknown adapter options are an error (a typo must not silently fall back to a default)."""
    unknown = sorted(set(extra) - set(known))
    if unknown:
        raise ModelResolutionError(
            f"{backend}: unknown model option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )


# ---------------------------------------------------------------------------------- images


def decode_prompt_image(image: PromptImage) -> Any:
    """A PromptImage as an RGB PIL image (raises ValueError naming the image on bad data): the
    pixels of a deferred image as they are (no encode/decode round trip), else its bytes decoded."""
    from PIL import Image

    if image.pixels is not None:
        return Image.fromarray(image.pixels)

    try:
        with Image.open(io.BytesIO(image.data)) as im:
            im.load()
            return im.convert("RGB")
    except Exception as exc:
        raise ValueError(f"{image.label}: image bytes ({image.mime}) could not be decoded: {exc}") from exc


# ---------------------------------------------------------------------------------- resampling


def bilinear_resize(grid: np.ndarray, out_h: int, out_w: int, dtype: Any = np.float64) -> np.ndarray:
    """Bilinear resampling with half-pixel centres and no antialiasing (torch `align_corners=False`)."""
    in_h, in_w = grid.shape

    def axis(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
        pos = np.clip(pos, 0.0, None)
        lo = np.minimum(np.floor(pos).astype(np.int64), n_in - 1)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, pos - lo

    y0, y1, wy = axis(out_h, in_h)
    x0, x1, wx = axis(out_w, in_w)
    g = np.asarray(grid, dtype=dtype)
    wx, wy = wx.astype(dtype), wy.astype(dtype)
    top = g[y0][:, x0] * (1 - wx) + g[y0][:, x1] * wx
    bottom = g[y1][:, x0] * (1 - wx) + g[y1][:, x1] * wx
    return cast("np.ndarray", top * (1 - wy)[:, None] + bottom * wy[:, None])


# ---------------------------------------------------------------------------------- option letters

BASIC_LETTER_FORMS: tuple[str, ...] = ("{L}", " {L}")
# The spellings CrossViewer's own evaluation scores (facts from docs/formats.md §3.1).
EXTENDED_LETTER_FORMS: tuple[str, ...] = (" {L}", "{L}", "{L}.", " {L}.", "{L})", " {L})", "{L}、", " {L}、")


def letter_spellings(letter: str, forms: Sequence[str] = BASIC_LETTER_FORMS) -> list[str]:
    """The surface forms under which `letter` may appear as the next token ("A", " A", "A." ...)."""
    if len(letter) != 1 or not letter.isalpha():
        raise ValueError(f"option letter must be one letter, got {letter!r}")
    return [form.replace("{L}", letter) for form in forms]


def single_token_ids(encode: Callable[[str], Sequence[int]], spellings: Sequence[str]) -> list[int]:
    """Token ids of those spellings that encode to exactly one token (unique, in order)."""
    ids: list[int] = []
    for spelling in spellings:
        tokens = list(encode(spelling))
        if len(tokens) == 1 and tokens[0] not in ids:
            ids.append(int(tokens[0]))
    return ids


def letter_token_ids(
    encode: Callable[[str], Sequence[int]], letters: Sequence[str], forms: Sequence[str] = BASIC_LETTER_FORMS
) -> dict[str, list[int]]:
    """letter -> its single-token spellings' ids. Raises ValueError if a letter has none."""
    table = {letter: single_token_ids(encode, letter_spellings(letter, forms)) for letter in letters}
    missing = [letter for letter, ids in table.items() if not ids]
    if missing:
        raise ValueError(f"option letter(s) {', '.join(missing)} have no single-token spelling in this tokenizer")
    return table


def reduce_letter_scores(score_of: Callable[[int], float], table: Mapping[str, Sequence[int]]) -> dict[str, float]:
    """letter -> max score over its spellings' token ids."""
    return {letter: max(float(score_of(tid)) for tid in ids) for letter, ids in table.items()}


def scores_from_top_logprobs(top: Mapping[int, float], table: Mapping[str, Sequence[int]]) -> dict[str, float]:
    """From a first-token top-k {token_id: logprob}: letter -> max over its spellings present in top-k.

    A letter none of whose spellings made the top-k is left out (its log-probability is unknown,
    only bounded above by the smallest returned one); the parser then chooses among the rest.
    """
    out: dict[str, float] = {}
    for letter, ids in table.items():
        present = [float(top[tid]) for tid in ids if tid in top and not math.isnan(float(top[tid]))]
        if present:
            out[letter] = max(present)
    return out


def best_letter(scores: Mapping[str, float]) -> str | None:
    """The letter with the highest score (ties: None, never an arbitrary pick)."""
    if not scores:
        return None
    top = max(scores.values())
    winners = [letter for letter, value in scores.items() if value == top]
    return winners[0] if len(winners) == 1 else None


def option_block(options: Sequence[Option]) -> str:
    return "\n".join(o.line for o in options)


def split_question(text: str, options: Sequence[Option]) -> str:
    """The question part of a prompt text whose tail is the option lines (as prompting renders them).

    Returns `text` unchanged when the option lines are not found at its end.
    """
    block = option_block(options)
    stripped = text.rstrip()
    if block and stripped.endswith(block):
        return stripped[: -len(block)].rstrip()
    return text


# ---------------------------------------------------------------------------------- errors


def error_response(exc: BaseException, started: float | None = None) -> Response:
    """A model failure as a Response (never raised to the runner, never scored as an answer)."""
    name = type(exc).__name__
    message = f"{name}: {exc}"
    lowered = message.lower()
    kind: ErrorKind
    if "out of memory" in lowered or name in ("OutOfMemoryError", "MemoryError"):
        kind = "server"
        message = "out of memory: " + message
    elif isinstance(exc, (ValueError, TypeError, KeyError, IndexError)):
        kind = "invalid_request"
    elif isinstance(exc, TimeoutError):
        kind = "timeout"
    else:
        kind = "internal"
    latency = time.monotonic() - started if started is not None else 0.0
    return Response(text=None, error=ModelError(kind=kind, message=message[:2000], retryable=False), latency_s=latency)


def is_out_of_memory(exc: BaseException) -> bool:
    return "out of memory" in str(exc).lower() or type(exc).__name__ in ("OutOfMemoryError", "MemoryError")


@dataclass(frozen=True)
class BatchResult:
    """What a batch function returns per item: the text or scores plus usage."""

    text: str | None
    usage: Usage = field(default_factory=Usage)
    option_scores: Mapping[str, float] | None = None
    finish_reason: str | None = None
    details: Mapping[str, Any] | None = None  # model-side facts to record with the sample (see Response)


@dataclass(frozen=True)
class BatchJob:
    """One request queued for a batch: scored by option letters, or generated."""

    request: Request
    scoring: bool


async def answer_in_batch(
    batcher: MicroBatcher[BatchJob, BatchResult], request: Request, batch_key: Hashable, served_model: str
) -> Response:
    """Queue the request with the ones it may share a batch with (`batch_key`) and wait for its
    answer; a failure of the model becomes an error response, never an exception."""
    started = time.monotonic()
    try:
        result = await batcher.submit(BatchJob(request, bool(request.config.option_logprobs)), batch_key)
    except Exception as exc:
        return error_response(exc, started)
    return Response(
        text=result.text,
        usage=result.usage,
        latency_s=time.monotonic() - started,
        option_scores=result.option_scores,
        finish_reason=result.finish_reason,
        served_model=served_model,
    )


# ---------------------------------------------------------------------------------- batching


@dataclass
class _Pending(Generic[T]):
    item: T
    key: Hashable
    future: asyncio.Future[Any]


class MicroBatcher(Generic[T, R]):
    """Collects concurrent submissions into batches and runs them in one worker thread.

    `run_batch(items) -> results` (same length and order) is called from the worker thread
    with at most `max_batch` items that share the same `key` (e.g. generation settings);
    items arriving within `max_wait_s` of the first one join its batch. An exception from
    `run_batch` fails every item of that batch with that exception unless `split_on_error`
    is set, in which case a failed batch of several items is retried one item at a time
    (so one bad image or an out-of-memory batch does not fail its neighbours).
    """

    def __init__(
        self,
        run_batch: Callable[[list[T]], list[R]],
        max_batch: int,
        max_wait_s: float = 0.01,
        split_on_error: bool = True,
        thread_name: str = "cvbench-model",
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._split_on_error = split_on_error
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._queue: asyncio.Queue[_Pending[T]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._held: list[_Pending[T]] = []  # items taken from the queue that did not fit the last batch
        self.batch_sizes: list[int] = []  # sizes of the batches run, for tests and logs

    def _ensure_worker(self) -> asyncio.Queue[_Pending[T]]:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._loop = loop
            self._held = []
            self._worker = loop.create_task(self._work(self._queue))
        return self._queue

    async def submit(self, item: T, key: Hashable = None) -> R:
        queue = self._ensure_worker()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await queue.put(_Pending(item, key, future))
        return cast(R, await future)

    async def _next(self, queue: asyncio.Queue[_Pending[T]], timeout: float | None) -> _Pending[T] | None:
        if self._held:
            return self._held.pop(0)
        if not queue.empty():
            return queue.get_nowait()
        if timeout is None:
            return await queue.get()
        if timeout <= 0:
            return None
        try:
            return await asyncio.wait_for(queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def _work(self, queue: asyncio.Queue[_Pending[T]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._next(queue, None)
            assert first is not None
            batch = [first]
            deadline = loop.time() + self._max_wait_s
            skipped: list[_Pending[T]] = []
            while len(batch) < self._max_batch:
                nxt = await self._next(queue, deadline - loop.time())
                if nxt is None:
                    break
                (batch if nxt.key == first.key else skipped).append(nxt)
            self._held = skipped + self._held
            live = [p for p in batch if not p.future.cancelled()]
            if not live:
                continue
            self.batch_sizes.append(len(live))
            outcomes = await loop.run_in_executor(self._executor, self._run_safely, [p.item for p in live])
            for pending, outcome in zip(live, outcomes):
                if pending.future.cancelled():
                    continue
                if isinstance(outcome, BaseException):
                    pending.future.set_exception(outcome)
                else:
                    pending.future.set_result(outcome)

    def _run_safely(self, items: list[T]) -> list[R | BaseException]:
        try:
            results = self._run_batch(items)
            if len(results) != len(items):
                raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
            return list(results)
        except Exception as exc:
            if self._split_on_error and len(items) > 1:
                return [self._run_safely([item])[0] for item in items]
            return [exc for _ in items]

    async def aclose(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._worker = None
        self._executor.shutdown(wait=True)


async def timed(call: Awaitable[R]) -> tuple[R, float]:
    started = time.monotonic()
    result = await call
    return result, time.monotonic() - started


# ---------------------------------------------------------------------------------- torch


def resolve_torch_dtype(torch: Any, name: str | None, device: str) -> Any:
    """'auto' -> bfloat16 on CUDA with bf16 support, float16 on other CUDA, float32 on CPU."""
    name = (name or "auto").lower()
    table = {
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
        "half": torch.float16,
        "float32": torch.float32,
        "fp32": torch.float32,
        "float": torch.float32,
    }
    if name == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if name not in table:
        raise ModelResolutionError(f"model option dtype={name!r}: expected auto, bfloat16, float16 or float32")
    return table[name]


def resolve_device(torch: Any, name: str | None) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'. An explicit CUDA device without a GPU is an error."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ModelResolutionError(
            f"model option device={name!r}, but torch sees no CUDA GPU "
            "(use device=cpu, or install a CUDA build of torch)"
        )
    return name


def seed_torch(torch: Any, seed: int) -> None:
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
