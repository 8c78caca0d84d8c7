"""Shared machinery of every API adapter: retries, backoff, adaptive concurrency, error mapping.

An API adapter implements one method, `_attempt(request) -> Response`, that makes ONE call with
the provider's SDK (SDK retries disabled) and either returns the answer or raises. `ApiAdapter`
wraps it:

- each attempt is bounded by `ModelOptions.timeout_s`; all attempts plus the waits between them
  by `ModelOptions.budget_s` (time spent queueing for a concurrency slot is not counted);
- 429, 408, 409, 5xx, timeouts, connection failures and bodies that do not parse (cut off in
  transit) are retried; other 4xx, and well-formed bodies without an answer, are not;
- the wait before retry k is full-jitter exponential backoff, `uniform(0, min(cap, base * 2**(k-1)))`,
  and never shorter than the server's hint: `retry-after-ms` / `Retry-After`, else Google's
  `RetryInfo.retryDelay` in the error body, else the reset of an exhausted rate-limit window
  (OpenAI `x-ratelimit-reset-*`, Anthropic `anthropic-ratelimit-*-reset`); a hint above
  `retry_max_hint_s` (default 300 s) is not waited for, and a wait that would run past the
  request's time budget ends the request at once (no attempt the hint does not allow); jitter is drawn from
  `rng_for(seed, sample_id, "retry-jitter")` so reruns wait the same way;
- concurrency is limited by an AIMD limiter shared by all calls of the adapter: halved on a
  429 (once per congestion event), grown by about one slot per window of successes, never above
  `ModelOptions.concurrency`;
- a failure never raises out of `generate`: it comes back as `Response(error=ModelError(...))`
  with its message scrubbed of secrets.

Over 500 lines: the retry loop, backoff, adaptive concurrency and the mapping of each provider
SDK's exceptions to error kinds are one contract that every API adapter inherits, and are read
together; the options are declared in api_options.py.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import re
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cvbench.core.redaction import scrub
from cvbench.core.seeding import rng_for
from cvbench.core.types import Capabilities, ErrorKind, ModelError, ModelInfo, Request, Response
from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError

MAX_ERROR_MESSAGE = 600
RETRYABLE_4XX = frozenset({408, 409, 429})


class MissingDependencyError(ImportError):
    """An optional SDK is not installed; the message carries the pip command."""


def require(module: str, extra: str, what: str) -> Any:
    """Import an optional dependency or fail with the pip command that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(f"{what} needs the `{module}` package: pip install 'cvbench[{extra}]'") from exc


def require_installed(module: str, extra: str, what: str) -> None:
    """Fail now, with the pip command, when an optional dependency is not installed, without
    importing it: an SDK is imported when the first request is sent, so a run answered wholly
    from the cache (a warm rerun) never pays for the import (the openai SDK: ~0.7 CPU-s)."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module set to None
        found = False
    if not found:
        raise MissingDependencyError(f"{what} needs the `{module}` package: pip install 'cvbench[{extra}]'")


# --------------------------------------------------------------------------------------
# Retry policy and backoff
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int  # retries after the first attempt
    timeout_s: float  # per attempt
    budget_s: float  # all attempts and waits of one request
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    max_hint_s: float = 300.0  # a server asking for a longer wait is not waited for

    @classmethod
    def from_options(cls, options: ModelOptions) -> RetryPolicy:
        extra = options.extra
        policy = cls(
            max_retries=int(options.max_retries),
            timeout_s=float(options.timeout_s),
            budget_s=float(options.budget_s),
            base_delay_s=float(extra.get("retry_base_delay_s", 1.0)),
            max_delay_s=float(extra.get("retry_max_delay_s", 60.0)),
            max_hint_s=float(extra.get("retry_max_hint_s", 300.0)),
        )
        for name in ("timeout_s", "budget_s"):
            if getattr(policy, name) <= 0:
                raise ModelResolutionError(f"ModelOptions.{name} must be > 0, got {getattr(policy, name)}")
        if policy.max_retries < 0 or policy.base_delay_s < 0 or policy.max_delay_s < 0:
            raise ModelResolutionError(
                "ModelOptions: max_retries, retry_base_delay_s and retry_max_delay_s must be >= 0"
            )
        return policy


def api_base_url(opts: Mapping[str, Any], base_urls: Sequence[str], env_var: str) -> str | None:
    """The endpoint of an API adapter: the `base_url` model option, else the first --base-url,
    else the provider's environment variable, else the SDK's default (None)."""
    found = opts.get("base_url") or (base_urls[0] if base_urls else None) or os.environ.get(env_var)
    return str(found) if found else None


def backoff_delay(retry: int, policy: RetryPolicy, draw: float) -> float:
    """Full-jitter exponential backoff before retry number `retry` (1-based); `draw` in [0, 1)."""
    ceiling = min(policy.max_delay_s, policy.base_delay_s * (2.0 ** (retry - 1)))
    return ceiling * draw


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` (seconds or an HTTP date); None if absent/bad."""
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
            if value >= 0:
                return value
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
        return value if value >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float | None:
    """'37s', '1.5s', '6m0s', '20ms', '1h2m3s' (Google's Duration and OpenAI's reset headers) -> seconds."""
    raw = str(text).strip().lower()
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    parts = _DURATION_PART.findall(raw)
    if not parts or "".join(n + u for n, u in parts) != raw:
        return None
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


def _reset_time(value: str, now: float) -> float | None:
    """Anthropic's `anthropic-ratelimit-*-reset`: an RFC 3339 time -> seconds from now."""
    import datetime

    try:
        when = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, when.timestamp() - now)


def rate_limit_reset(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """The wait until an exhausted rate-limit window resets, from OpenAI's
    `x-ratelimit-remaining-*`/`x-ratelimit-reset-*` (durations) or Anthropic's
    `anthropic-ratelimit-*-remaining`/`-reset` (RFC 3339 times); only windows at 0 count."""
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    current = time.time() if now is None else now
    waits: list[float] = []
    for name, value in lowered.items():
        if value.strip() != "0":
            continue
        wait: float | None = None
        if name.startswith("x-ratelimit-remaining-"):  # OpenAI: reset is a duration ("6m0s")
            reset = lowered.get(name.replace("remaining", "reset", 1))
            wait = parse_duration(reset) if reset else None
        elif name.startswith("anthropic-ratelimit-") and name.endswith("-remaining"):  # Anthropic: a time
            reset = lowered.get(name[: -len("remaining")] + "reset")
            wait = _reset_time(reset, current) if reset else None
        if wait is not None:
            waits.append(wait)
    return max(waits) if waits else None


def body_retry_delay(body: Any) -> float | None:
    """Google's `google.rpc.RetryInfo.retryDelay` from an error body
    (`{"error": {"details": [{"@type": ".../google.rpc.RetryInfo", "retryDelay": "37s"}]}}`)."""
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    if not isinstance(body, Mapping):
        return None
    error = body.get("error", body)
    details = error.get("details") if isinstance(error, Mapping) else None
    if not isinstance(details, list):
        return None
    for item in details:
        if isinstance(item, Mapping) and str(item.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = item.get("retryDelay")
            if isinstance(delay, Mapping):  # the proto's JSON object form
                return float(delay.get("seconds", 0) or 0) + float(delay.get("nanos", 0) or 0) / 1e9
            if delay is not None:
                return parse_duration(str(delay))
    return None


def retry_hint(exc: BaseException, headers: Mapping[str, str] | None) -> float | None:
    """How long the server asked us to wait: `retry-after-ms`/`Retry-After`, else the body's
    RetryInfo (Google), else the reset time of an exhausted rate-limit window."""
    for hint in (
        parse_retry_after(headers),
        body_retry_delay(getattr(exc, "details", None) or getattr(exc, "body", None)),
        rate_limit_reset(headers),
    ):
        if hint is not None:
            return hint
    return None


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class AttemptError(Exception):
    """One failed attempt: the error to report, and how long the server asked us to wait."""

    def __init__(self, error: ModelError, retry_after_s: float | None = None, connect_failed: bool = False) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after_s = retry_after_s
        self.connect_failed = connect_failed  # no connection was made at all (refused, unknown host)


def clean_message(message: str) -> str:
    text = scrub(" ".join(str(message).split()))
    return text if len(text) <= MAX_ERROR_MESSAGE else text[: MAX_ERROR_MESSAGE - 3] + "..."


def error_for_status(status: int, message: str) -> ModelError:
    """The ModelError for an HTTP status: which kind, and whether a retry can help."""
    kind: ErrorKind
    if status == 429:
        kind = "rate_limit"
    elif status == 408:
        kind = "timeout"
    elif status in (401, 403):
        kind = "auth"
    elif status == 404:
        kind = "not_found"
    elif status >= 500:
        kind = "server"
    elif status == 409:
        kind = "server"  # a conflict / lock on the provider side: transient
    else:
        kind = "invalid_request"
    retryable = status >= 500 or status in RETRYABLE_4XX
    return ModelError(kind=kind, message=clean_message(f"HTTP {status}: {message}"), status=status, retryable=retryable)


def _class_names(exc: BaseException) -> list[str]:
    return [cls.__name__ for cls in type(exc).__mro__]


def _headers_of(exc: BaseException) -> Mapping[str, str] | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        return {str(k): str(v) for k, v in headers.items()}
    except Exception:
        return None


def _status_of(exc: BaseException) -> int | None:
    for attr in ("status_code", "code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value <= 599:
            return value
    return None


def _sdk_message(exc: BaseException) -> str:
    message = getattr(exc, "message", None)
    return str(message) if message else (str(exc) or type(exc).__name__)


def _never_connected(exc: BaseException) -> bool:
    """Whether the cause chain says no connection was made (refused, unknown host), as opposed
    to one that broke mid-request."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        names = _class_names(seen)
        if isinstance(seen, (ConnectionRefusedError, socket.gaierror)) or "ConnectError" in names:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def map_exception(exc: BaseException) -> AttemptError:
    """Turn an SDK / transport exception into an AttemptError (no provider-specific imports needed).

    The official SDKs share a shape: status errors carry `status_code` (OpenAI, Anthropic) or
    `code` (google-genai) and the HTTP `response`; timeouts and connection failures are classes
    named `...Timeout...` / `...Connection...`/`ConnectError`.
    """
    if isinstance(exc, AttemptError):
        return exc
    names = _class_names(exc)
    status = _status_of(exc)
    if status is not None and not any("Validation" in n for n in names):
        error = error_for_status(status, _sdk_message(exc))
        return AttemptError(error, retry_hint(exc, _headers_of(exc)) if error.retryable else None)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) or any("Timeout" in n for n in names):
        return AttemptError(
            ModelError("timeout", clean_message(f"{type(exc).__name__}: {_sdk_message(exc)}"), retryable=True)
        )
    transport_names = (
        "Connection",
        "ConnectError",
        "ReadError",
        "WriteError",
        "RemoteProtocolError",
        "TransportError",
        "NetworkError",
        "ProtocolError",
    )
    if any(t in n for n in names for t in transport_names) or isinstance(exc, (ConnectionError, OSError)):
        return AttemptError(
            ModelError("transport", clean_message(f"{type(exc).__name__}: {_sdk_message(exc)}"), retryable=True),
            connect_failed=_never_connected(exc),
        )
    if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)) or any(
        "Validation" in n or "Decode" in n or "UnknownApiResponse" in n for n in names
    ):
        # A body that does not parse is almost always cut off or mangled on the way (a proxy, a
        # dropped stream), so another attempt can help; a body that parses but holds no answer
        # (`malformed(...)` from an adapter) is the server's considered reply and is not retried.
        return AttemptError(
            ModelError(
                "malformed",
                clean_message(f"unreadable response body ({type(exc).__name__}: {_sdk_message(exc)})"),
                status=status,
                retryable=True,
            )
        )
    return AttemptError(ModelError("internal", clean_message(f"{type(exc).__name__}: {_sdk_message(exc)}")))


def malformed(message: str, status: int | None = None, retryable: bool = False) -> AttemptError:
    return AttemptError(ModelError("malformed", clean_message(message), status=status, retryable=retryable))


TRANSIENT_ERROR_WORDS = (
    "overloaded",
    "rate",
    "unavailable",
    "timeout",
    "server_error",
    "internal",
    "capacity",
    "resource_exhausted",
    "try again",
)


def error_in_body(error: Any) -> AttemptError:
    """A 200 response whose body is an error object (`{"error": {...}}`, as some gateways send):
    the server's own message kept; retried when its code or type says it is transient."""
    if isinstance(error, Mapping):
        message = str(error.get("message") or json.dumps(error, default=str))
        code = error.get("code") if error.get("code") is not None else error.get("status")
        kind = str(error.get("type") or error.get("status") or "")
    else:
        message, code, kind = str(error), None, ""
    status = int(code) if isinstance(code, int) or (isinstance(code, str) and code.isdigit()) else None
    if status is not None and 400 <= status <= 599:
        mapped = error_for_status(status, message)
        return AttemptError(
            ModelError(
                mapped.kind,
                clean_message(f"error in a 200 body: {mapped.message}"),
                status=status,
                retryable=mapped.retryable,
            )
        )
    text = f"{kind} {code} {message}".lower()
    transient = any(word in text for word in TRANSIENT_ERROR_WORDS)
    label = f"{kind}: " if kind else ""
    return AttemptError(
        ModelError(
            "server" if transient else "malformed",
            clean_message(f"error in a 200 body: {label}{message}"),
            retryable=transient,
        )
    )


def unreadable_body(body: str | bytes) -> AttemptError:
    """A 200 response that is not the provider's JSON (an HTML page from a proxy or a captive
    portal, plain text): its text kept (tags dropped), retried, since a gateway in between is
    usually the cause."""
    import re

    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    plain = re.sub(
        r"<[^>]+>", " ", re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", text, flags=re.IGNORECASE | re.DOTALL)
    )
    shown = " ".join(((title.group(1) + ": ") if title else "").split() + plain.split())[:300]
    return malformed(f"response is not the provider's JSON but a page of text: {shown!r}", retryable=True)


def refused(message: str) -> AttemptError:
    return AttemptError(ModelError("refused", clean_message(message)))


def budget_exhausted(finish: str | None, output_limit: int | None, reasoning_tokens: int | None = None) -> AttemptError:
    """An empty answer that stopped at the output limit: the budget went to reasoning (or to
    nothing visible). An error of its own kind, never scored as a wrong answer, not retried
    (the same request would spend the same budget)."""
    spent = f"; {reasoning_tokens} of them on reasoning" if reasoning_tokens else ""
    limit = f"{output_limit} tokens" if output_limit is not None else "the output limit"
    return AttemptError(
        ModelError(
            "budget_exhausted",
            clean_message(
                f"no answer text: the model stopped at {limit} (finish_reason={finish}){spent}; raise --max-tokens "
                f"or the reasoning budget (--model-option), or lower the reasoning effort"
            ),
        )
    )


# --------------------------------------------------------------------------------------
# Adaptive concurrency
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ticket:
    """A held concurrency slot; `epoch` is the limiter's decrease count when it was taken."""

    epoch: int


class AdaptiveLimiter:
    """AIMD concurrency limit shared by all requests of one adapter.

    A 429 halves the limit, but only once per congestion event: requests that started before
    the last decrease (their ticket's epoch is older) do not halve it again. Each success adds
    1/limit, i.e. about one slot per window of successful requests. The limit stays within
    [1, maximum].
    """

    def __init__(self, maximum: int) -> None:
        if maximum < 1:
            raise ModelResolutionError(f"ModelOptions.concurrency must be >= 1, got {maximum}")
        self.maximum = maximum
        self._limit = float(maximum)
        self._in_flight = 0
        self._epoch = 0
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def limit(self) -> int:
        return max(1, int(self._limit))

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def acquire(self) -> Ticket:
        while self._in_flight >= self.limit:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self._in_flight += 1
        return Ticket(self._epoch)

    def release(self) -> None:
        self._in_flight = max(0, self._in_flight - 1)
        self._wake()

    def on_success(self) -> None:
        self._limit = min(float(self.maximum), self._limit + 1.0 / self._limit)
        self._wake()

    def on_rate_limit(self, ticket: Ticket) -> None:
        if ticket.epoch < self._epoch:
            return  # this request started before the last decrease: same congestion event
        self._epoch += 1
        self._limit = max(1.0, self._limit / 2.0)

    def _wake(self) -> None:
        free = self.limit - self._in_flight
        for waiter in list(self._waiters):
            if free <= 0:
                break
            if not waiter.done():
                waiter.set_result(None)
                free -= 1


# --------------------------------------------------------------------------------------
# The adapter base
# --------------------------------------------------------------------------------------


class ApiAdapter:
    """Base of every API adapter. Subclasses set `info`, `capabilities` and implement `_attempt`."""

    info: ModelInfo
    capabilities: Capabilities

    def __init__(self, info: ModelInfo, capabilities: Capabilities, options: ModelOptions) -> None:
        self.info = info
        self.capabilities = capabilities
        self.options = options
        self.policy = RetryPolicy.from_options(options)
        self.limiter = AdaptiveLimiter(int(options.concurrency))
        self.answered = False  # any answer yet: until then a refused connection is not retried
        self.retry_refused_before_answer = False  # adapters with fallback endpoints set True

    # -- to implement -------------------------------------------------------------------

    async def _attempt(self, request: Request) -> Response:
        """One call; returns the answer (attempts/latency filled in later) or raises."""
        raise NotImplementedError

    def _map_exception(self, exc: BaseException) -> AttemptError:
        return map_exception(exc)

    def _on_failure(self, failure: AttemptError) -> None:
        """Hook for subclasses (e.g. endpoint health); called after each failed attempt."""

    def provider_settings(self) -> dict[str, Any]:
        return {}

    # -- the protocol -------------------------------------------------------------------

    def settings(self) -> Mapping[str, Any]:
        return {"model_id": self.info.model_id, **self.provider_settings()}

    async def aclose(self) -> None:
        return None

    async def generate(self, request: Request) -> Response:
        policy = self.policy
        rng = rng_for(self.options.seed, request.prompt.sample_id, "retry-jitter")
        spent = 0.0  # seconds of attempts and waits, against the budget
        started: float | None = None
        attempts = 0
        while True:
            remaining = policy.budget_s - spent
            ticket = await self.limiter.acquire()
            attempt_start = time.monotonic()
            started = attempt_start if started is None else started
            attempts += 1
            try:
                response = await asyncio.wait_for(self._attempt(request), timeout=min(policy.timeout_s, remaining))
            except asyncio.CancelledError:
                self.limiter.release()
                raise
            except (asyncio.TimeoutError, TimeoutError):
                failure = AttemptError(
                    ModelError("timeout", f"no answer within {min(policy.timeout_s, remaining):.3g} s", retryable=True)
                )
            except Exception as exc:
                failure = self._map_exception(exc)
            else:
                self.limiter.release()
                self.limiter.on_success()
                self.answered = True
                now = time.monotonic()
                return replace(response, attempts=attempts, latency_s=round(now - started, 6))
            self.limiter.release()
            spent += time.monotonic() - attempt_start
            self._on_failure(failure)
            error = failure.error
            if error.kind == "rate_limit":
                self.limiter.on_rate_limit(ticket)
            if failure.connect_failed and not self.answered and not self.retry_refused_before_answer:
                # an endpoint that never answered and refuses connections is down or mistyped, not
                # busy: fail at once so that a dead endpoint stops the run within seconds
                error = replace(
                    error,
                    retryable=False,
                    message=clean_message(
                        f"{error.message} (cannot connect; not retried before the endpoint's first answer)"
                    ),
                )
            if not error.retryable:
                return Response(text=None, error=error, attempts=attempts, latency_s=round(spent, 6))
            if attempts > policy.max_retries:
                message = clean_message(f"{error.message} (gave up after {attempts} attempts)")
                return Response(
                    text=None, error=replace(error, message=message), attempts=attempts, latency_s=round(spent, 6)
                )
            delay = backoff_delay(attempts, policy, float(rng.random()))
            if failure.retry_after_s is not None:
                if failure.retry_after_s > policy.max_hint_s:
                    message = clean_message(
                        f"{error.message} (the server asks to wait {failure.retry_after_s:.3g} s, more than the "
                        f"cap of {policy.max_hint_s:g} s: not retried; model option retry_max_hint_s)"
                    )
                    return Response(
                        text=None,
                        error=replace(error, message=message, retryable=False),
                        attempts=attempts,
                        latency_s=round(spent, 6),
                    )
                delay = max(delay, failure.retry_after_s)  # never sooner than the server asked
            if spent + delay >= policy.budget_s:
                message = clean_message(
                    f"time budget of {policy.budget_s:g} s spent after {attempts} attempts "
                    f"(next wait {delay:.3g} s); last error: {error.kind}: {error.message}"
                )
                return Response(
                    text=None,
                    error=ModelError("budget", message, error.status, retryable=True),
                    attempts=attempts,
                    latency_s=round(spent, 6),
                )
            await asyncio.sleep(delay)
            spent += delay
