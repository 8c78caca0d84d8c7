"""Retry hints from headers and bodies, read from real SDK exceptions raised by the official SDKs
against loopback servers that answer with the providers' documented error bodies and headers.

cvbench has no injectable clock at the sleep boundary, so the 37 s Gemini hint is checked as the
wait computed from the server's real response (and as a request that gives up at once when the
hint does not fit its time budget); one real short hint (2 s) is honoured on the wire.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest

from cvbench.model_adapters import anthropic_api, google_api, openai_api
from cvbench.model_adapters.base import AttemptError, parse_duration, rate_limit_reset
from tests.model_adapters.api_helpers import (
    TEST_KEYS,
    fast_options,
    generate_once,
    isolate_keys,
    make_request,
)
from tests.wire import AnthropicWireServer, Fault, GoogleWireServer, OpenAIWireServer


def gemini_quota_body(delay: str) -> dict[str, Any]:
    """A Gemini API 429 as documented (ai.google.dev/gemini-api/docs/rate-limits; the detail types
    are google.rpc.QuotaFailure / Help / RetryInfo from googleapis google/rpc/error_details.proto)."""
    return {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "message": "You exceeded your current quota, please check your plan and billing details.",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                            "quotaValue": "5",
                        }
                    ],
                },
                {
                    "@type": "type.googleapis.com/google.rpc.Help",
                    "links": [
                        {"description": "Learn more", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}
                    ],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
            ],
        }
    }


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    isolate_keys(
        monkeypatch,
        tmp_path,
        OPENAI_API_KEY=TEST_KEYS["OPENAI_API_KEY"],
        ANTHROPIC_API_KEY=TEST_KEYS["ANTHROPIC_API_KEY"],
        GEMINI_API_KEY=TEST_KEYS["GEMINI_API_KEY"],
    )


def first_failure(make: Any, model: str, base_url: str) -> AttemptError:
    """One attempt through the SDK; the mapped failure with its computed wait."""
    adapter = make(model, fast_options(extra={"base_url": base_url}))

    async def go() -> AttemptError:
        try:
            await adapter._attempt(make_request(adapter.info.model_id))
        except Exception as exc:
            return adapter._map_exception(exc)
        finally:
            await adapter.aclose()
        raise AssertionError("the server answered instead of failing")

    return asyncio.run(go())


def test_durations_in_google_and_openai_formats() -> None:
    assert parse_duration("37s") == 37.0 and parse_duration("1.5s") == 1.5 and parse_duration("20ms") == 0.02
    assert parse_duration("6m0s") == 360.0 and parse_duration("1h2m3s") == 3723.0 and parse_duration("12") == 12.0
    assert parse_duration("soon") is None and parse_duration("5 s") is None


def test_gemini_retry_info_37s_is_the_computed_wait(keys: None) -> None:
    with GoogleWireServer() as server:
        server.add_faults(Fault(status=429, error_body=gemini_quota_body("37s")))
        failure = first_failure(google_api.make_adapter, "gemini-2.5-flash", server.url)
    assert failure.error.kind == "rate_limit" and failure.error.retryable
    assert failure.retry_after_s == 37.0


def test_a_hint_longer_than_the_time_budget_gives_up_without_another_attempt(keys: None) -> None:
    with GoogleWireServer() as server:
        server.add_faults(*[Fault(status=429, error_body=gemini_quota_body("37s"))] * 3)
        response, _ = generate_once(google_api.make_adapter, "gemini-2.5-flash", server.url, budget_s=20.0)
        sent = len(server.requests)
    assert sent == 1 and response.attempts == 1  # 7 retries in 42 s against a 37 s hint was the old bug
    assert response.error is not None and response.error.kind == "budget" and "next wait 37 s" in response.error.message


def test_a_hint_above_the_cap_is_not_waited_for(keys: None) -> None:
    with GoogleWireServer() as server:
        server.add_faults(Fault(status=429, error_body=gemini_quota_body("3600s")))
        response, _ = generate_once(
            google_api.make_adapter, "gemini-2.5-flash", server.url, budget_s=7200.0, extra={"retry_max_hint_s": "120"}
        )
    assert response.attempts == 1 and response.error is not None and not response.error.retryable
    assert "asks to wait 3.6e+03 s, more than the cap of 120 s" in response.error.message


def test_a_real_2s_body_hint_is_honoured_on_the_wire(keys: None) -> None:
    with GoogleWireServer(answer="C") as server:
        server.add_faults(Fault(status=429, error_body=gemini_quota_body("2s")))
        response, _ = generate_once(google_api.make_adapter, "gemini-2.5-flash", server.url)
        first, second = server.requests
    assert response.ok and response.text == "C" and response.attempts == 2
    assert second.time - first.time >= 2.0  # the backoff alone (<= 0.2 s here) would retry far sooner


def test_openai_exhausted_window_reset_is_the_wait(keys: None) -> None:
    # platform.openai.com/docs/guides/rate-limits: x-ratelimit-remaining-*/x-ratelimit-reset-* headers,
    # reset as a duration ("1s", "6m0s"); the 429 body is error.code "rate_limit_exceeded"
    headers = {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1.5s",
        "x-ratelimit-remaining-tokens": "29000",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    body = {
        "error": {
            "message": "Rate limit reached for gpt-4o on requests per min (RPM): Limit 60, Used 60, "
            "Requested 1. Please try again in 1.5s.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    with OpenAIWireServer() as server:
        server.add_faults(Fault(status=429, headers=headers, error_body=body))
        failure = first_failure(openai_api.make_adapter, "gpt-4o", server.base_url())
    assert failure.error.kind == "rate_limit" and failure.retry_after_s == 1.5  # only the exhausted window counts
    assert "Rate limit reached for gpt-4o" in failure.error.message


def test_anthropic_retry_after_ratelimit_reset_and_529(keys: None) -> None:
    # docs.anthropic.com/en/api/rate-limits: retry-after (seconds) and anthropic-ratelimit-*-remaining/-reset
    # (RFC 3339); docs.anthropic.com/en/api/errors: 529 overloaded_error
    reset = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=30)).isoformat()
    assert (
        28
        <= (
            rate_limit_reset({"anthropic-ratelimit-tokens-remaining": "0", "anthropic-ratelimit-tokens-reset": reset})
            or 0
        )
        <= 30
    )
    with AnthropicWireServer() as server:
        server.add_faults(
            Fault(
                status=429,
                retry_after="2",
                message="Number of request tokens has exceeded your per-minute rate limit",
                headers={"anthropic-ratelimit-requests-remaining": "0", "anthropic-ratelimit-requests-reset": reset},
            )
        )
        failure = first_failure(anthropic_api.make_adapter, "claude-sonnet-4-6", server.url)
        assert failure.retry_after_s == 2.0  # retry-after wins over the window reset
        server.add_faults(Fault(status=529, message="Overloaded"), Fault(status=529, message="Overloaded"))
        response, _ = generate_once(anthropic_api.make_adapter, "claude-sonnet-4-6", server.url)
    assert response.ok and response.attempts == 3
    assert [q.fault.status for q in server.requests[1:3] if q.fault] == [529, 529]
