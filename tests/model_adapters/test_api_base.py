"""The shared retry / backoff / concurrency / error-mapping machinery (pure parts)."""

from __future__ import annotations

import asyncio
import email.utils
import json

import pytest

from cvbench.core.types import ModelError
from cvbench.model_adapters.base import (
    AdaptiveLimiter,
    RetryPolicy,
    backoff_delay,
    error_for_status,
    malformed,
    map_exception,
    parse_retry_after,
)
from cvbench.model_adapters.registry import ModelOptions


def test_retry_after_seconds_ms_and_http_date() -> None:
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after": "0.5"}) == 0.5
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    when = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert parse_retry_after({"Retry-After": when}, now=1_000_000.0) == pytest.approx(30.0)
    assert parse_retry_after({"Retry-After": email.utils.formatdate(5.0, usegmt=True)}, now=100.0) == 0.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({"Retry-After": "-3"}) is None
    assert parse_retry_after({}) is None and parse_retry_after(None) is None


def test_full_jitter_backoff_is_bounded_and_grows() -> None:
    policy = RetryPolicy(max_retries=5, timeout_s=1, budget_s=10, base_delay_s=0.5, max_delay_s=3.0)
    assert backoff_delay(1, policy, 0.999) == pytest.approx(0.4995)
    assert backoff_delay(2, policy, 0.999) == pytest.approx(0.999)
    assert backoff_delay(10, policy, 0.999) == pytest.approx(2.997)  # capped
    assert backoff_delay(3, policy, 0.0) == 0.0


@pytest.mark.parametrize(
    "status,kind,retryable",
    [
        (400, "invalid_request", False),
        (401, "auth", False),
        (403, "auth", False),
        (404, "not_found", False),
        (408, "timeout", True),
        (409, "server", True),
        (413, "invalid_request", False),
        (422, "invalid_request", False),
        (429, "rate_limit", True),
        (500, "server", True),
        (503, "server", True),
        (529, "server", True),
    ],
)
def test_status_mapping(status: int, kind: str, retryable: bool) -> None:
    error = error_for_status(status, "boom")
    assert (error.kind, error.retryable, error.status) == (kind, retryable, status)


def test_generic_exception_mapping() -> None:
    assert map_exception(asyncio.TimeoutError()).error.kind == "timeout"
    assert map_exception(ConnectionRefusedError("refused")).error.kind == "transport"
    unreadable = map_exception(json.JSONDecodeError("x", "{", 0)).error
    assert unreadable.kind == "malformed" and unreadable.retryable
    assert not malformed("no choices").error.retryable
    internal = map_exception(RuntimeError("bug"))
    assert internal.error.kind == "internal" and not internal.error.retryable


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        RetryPolicy.from_options(ModelOptions(timeout_s=0))
    policy = RetryPolicy.from_options(ModelOptions(extra={"retry_base_delay_s": 0.1}))
    assert policy.base_delay_s == 0.1 and policy.max_retries == ModelOptions().max_retries


def test_limiter_halves_once_per_congestion_event_and_grows_back() -> None:
    async def scenario() -> None:
        limiter = AdaptiveLimiter(8)
        tickets = [await limiter.acquire() for _ in range(8)]
        assert limiter.in_flight == 8 and limiter.limit == 8
        for _ in tickets:
            limiter.release()
        limiter.on_rate_limit(tickets[0])
        assert limiter.limit == 4
        for t in tickets[1:]:  # 429s of requests sent before the decrease: same event
            limiter.on_rate_limit(t)
        assert limiter.limit == 4
        fresh = await limiter.acquire()
        limiter.release()
        limiter.on_rate_limit(fresh)  # a new event
        assert limiter.limit == 2
        for _ in range(200):
            limiter.on_success()
        assert limiter.limit == 8  # never above the maximum

    asyncio.run(scenario())


def test_limiter_blocks_beyond_the_limit() -> None:
    async def scenario() -> int:
        limiter = AdaptiveLimiter(2)
        peak = 0

        async def task() -> None:
            nonlocal peak
            await limiter.acquire()
            peak = max(peak, limiter.in_flight)
            await asyncio.sleep(0.01)
            limiter.release()

        await asyncio.gather(*(task() for _ in range(10)))
        return peak

    assert asyncio.run(scenario()) == 2


def test_limiter_rejects_zero() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        AdaptiveLimiter(0)


def test_model_error_messages_are_scrubbed() -> None:
    error = error_for_status(401, "Incorrect API key provided: sk-abcdefghijklmnopqrstuv; Bearer abcdefgh12345678")
    assert "sk-abcdefghijklmnop" not in error.message and "abcdefgh12345678" not in error.message
    assert isinstance(error, ModelError)
