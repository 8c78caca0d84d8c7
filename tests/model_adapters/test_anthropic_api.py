"""The Anthropic adapter, driven through the official SDK against a loopback messages server."""

from __future__ import annotations

from typing import Any

import pytest

from cvbench.core.types import Response
from cvbench.model_adapters import anthropic_api
from cvbench.model_adapters.registry import ModelResolutionError
from tests.model_adapters.api_helpers import (
    TEST_KEYS,
    assert_no_secret,
    fast_options,
    generate_once,
    isolate_keys,
    make_prompt,
    make_request,
)
from tests.wire import AnthropicWireServer, Fault


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    isolate_keys(monkeypatch, tmp_path, ANTHROPIC_API_KEY=TEST_KEYS["ANTHROPIC_API_KEY"])
    with AnthropicWireServer(answer="The answer is B.", served_model="claude-sonnet-4-6-20250929") as s:
        yield s


def generate(server: AnthropicWireServer, request: Any = None, **option_overrides: Any) -> Response:
    return generate_once(
        anthropic_api.make_adapter, "claude-sonnet-4-6", server.base_url(), request, **option_overrides
    )[0]


def test_images_text_system_and_settings_arrive_exactly(server: AnthropicWireServer) -> None:
    prompt = make_prompt(4)
    response = generate(server, make_request("anthropic:claude-sonnet-4-6", prompt, max_tokens=200))
    assert response.ok and response.text == "The answer is B."
    assert response.served_model == "claude-sonnet-4-6-20250929" and response.finish_reason == "end_turn"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (321, 7)
    [received] = server.requests
    assert received.path == "/v1/messages" and received.model == "claude-sonnet-4-6"
    assert received.parts == ("image",) * 4 + ("text",)
    assert [i.data for i in received.images] == [i.data for i in prompt.images]
    assert [i.mime for i in received.images] == [i.mime for i in prompt.images]
    assert received.text == prompt.text and received.system == prompt.system
    assert received.settings["temperature"] == 0.0 and received.settings["max_tokens"] == 200
    key = TEST_KEYS["ANTHROPIC_API_KEY"]  # SDK releases differ: x-api-key or a bearer token
    assert received.headers.get("x-api-key") == key or received.headers.get("authorization") == f"Bearer {key}"


def test_no_system_field_without_system_prompt(server: AnthropicWireServer) -> None:
    response = generate(server, make_request("anthropic:x", make_prompt(1, system=None)))
    assert response.ok and "system" not in server.requests[0].body


def test_rate_limit_retry_after_is_honoured(server: AnthropicWireServer) -> None:
    server.add_faults(Fault(status=429, retry_after="1"))
    response = generate(server)
    assert response.ok and response.attempts == 2
    first, second = server.requests
    assert second.time - first.time >= 1.0


def test_overloaded_529_is_retried(server: AnthropicWireServer) -> None:
    server.add_faults(Fault(status=529, message="Overloaded"), Fault(status=500))
    response = generate(server)
    assert response.ok and response.attempts == 3
    assert len(server.requests) == 3  # the SDK's own retries are off: every attempt is ours


def test_bad_request_is_not_retried(server: AnthropicWireServer) -> None:
    server.add_faults(Fault(status=400, message="messages: too many images"))
    response = generate(server)
    assert response.error is not None and response.error.kind == "invalid_request" and response.attempts == 1
    assert len(server.requests) == 1


def test_conflict_409_is_retried(server: AnthropicWireServer) -> None:
    server.add_faults(Fault(status=409))
    response = generate(server)
    assert response.ok and response.attempts == 2


def test_malformed_json_is_retried_then_malformed(server: AnthropicWireServer) -> None:
    server.add_faults(Fault(raw_body=b'{"type": "message", "content": [{"type": "te'))
    assert generate(server).ok
    server.add_faults(*[Fault(raw_body=b'{"type": "message", "content": [{"type": "te')] * 4)
    response = generate(server, max_retries=3)
    assert response.error is not None and response.error.kind == "malformed" and response.text is None
    assert response.attempts == 4


def test_message_without_text_is_malformed(server: AnthropicWireServer) -> None:
    server.add_faults(
        Fault(
            payload={
                "id": "m",
                "type": "message",
                "role": "assistant",
                "model": "c",
                "content": [],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": 1, "output_tokens": 0},
            }
        )
    )
    response = generate(server)
    assert response.error is not None and response.error.kind == "malformed"


def test_refusal_stop_reason_is_refused(server: AnthropicWireServer) -> None:
    server.add_faults(
        Fault(
            payload={
                "id": "m",
                "type": "message",
                "role": "assistant",
                "model": "c",
                "content": [],
                "stop_reason": "refusal",
                "usage": {"input_tokens": 1, "output_tokens": 0},
            }
        )
    )
    response = generate(server)
    assert response.error is not None and response.error.kind == "refused"


def test_timeout_ends_in_an_error_within_the_budget(server: AnthropicWireServer) -> None:
    server.add_faults(*[Fault(delay_s=30)] * 10)
    response = generate(server, timeout_s=0.4, budget_s=1.2, max_retries=10)
    assert response.error is not None and response.error.kind in ("budget", "timeout")
    assert response.attempts >= 2


def test_auth_error_never_shows_the_key(server: AnthropicWireServer) -> None:
    key = TEST_KEYS["ANTHROPIC_API_KEY"]
    server.add_faults(Fault(status=401, message=f"invalid x-api-key: {key}"))
    response = generate(server)
    assert response.error is not None and response.error.kind == "auth"
    assert_no_secret(response.error.message)


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    isolate_keys(monkeypatch, tmp_path)
    with pytest.raises(ModelResolutionError, match="ANTHROPIC_API_KEY"):
        anthropic_api.make_adapter("claude-sonnet-4-6", fast_options())


def test_unsupported_image_type_is_an_invalid_request_error(server: AnthropicWireServer) -> None:
    from dataclasses import replace

    prompt = make_prompt(1)
    odd = replace(prompt, images=(replace(prompt.images[0], mime="image/tiff"),))
    response = generate(server, make_request("anthropic:x", odd))
    assert response.error is not None and response.error.kind == "invalid_request"
    assert server.requests == []


def test_an_error_event_in_a_200_body_keeps_the_message_and_overloaded_is_retried(server: AnthropicWireServer) -> None:
    # the API's error shape ({"type": "error", "error": {"type": "overloaded_error", ...}}) arriving with 200
    overloaded = Fault(payload={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    server.add_faults(overloaded)
    response = generate(server)
    assert response.ok and response.attempts == 2
    server.add_faults(*[overloaded] * 4)
    response = generate(server)
    assert response.error is not None and response.error.retryable and "Overloaded" in response.error.message
