"""Reasoning models through the official SDKs against loopback servers that enforce each provider's
documented contract (tests/wire/*: the contract facts and their sources are in each server's
docstring). An answer budget reasoning cannot eat; reasoning text stored, never parsed; an empty
answer at the output limit is `budget_exhausted`, never a wrong answer.
"""

from __future__ import annotations

from typing import Any

import pytest

from cvbench.model_adapters import (
    anthropic_api,
    google_api,
    openai_api,
    openai_compatible,
)
from cvbench.model_adapters.reasoning import (
    ANTHROPIC_DEFAULT_THINKING,
    GEMINI_3_REASONING_TOKENS,
    GEMINI_DEFAULT_THINKING,
    OPENAI_REASONING_TOKENS,
)
from cvbench.model_adapters.registry import ModelResolutionError
from tests.model_adapters.api_helpers import (
    TEST_KEYS,
    fast_options,
    generate_once,
    isolate_keys,
    make_request,
)
from tests.wire import AnthropicWireServer, Fault, GoogleWireServer, OpenAIWireServer


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    isolate_keys(
        monkeypatch,
        tmp_path,
        OPENAI_API_KEY=TEST_KEYS["OPENAI_API_KEY"],
        ANTHROPIC_API_KEY=TEST_KEYS["ANTHROPIC_API_KEY"],
        GEMINI_API_KEY=TEST_KEYS["GEMINI_API_KEY"],
        CVBENCH_VLLM_API_KEY=TEST_KEYS["CVBENCH_VLLM_API_KEY"],
    )


# ------------------------------------------------------------------------------------ OpenAI


@pytest.mark.parametrize("model", ["gpt-5", "o3", "gpt-5.1-mini", "o4-mini"])
def test_openai_reasoning_models_answer_within_the_contract(keys: None, model: str) -> None:
    with OpenAIWireServer(answer="B", reasoning_spend=3000) as server:
        response, adapter = generate_once(
            openai_api.make_adapter, model, server.base_url(), make_request(f"openai:{model}", max_tokens=1024)
        )
    assert response.ok and response.text == "B", response
    [seen] = server.requests
    # no temperature/top_p (the server would answer 400 "Unsupported value"), the answer budget
    # plus the reasoning reserve as max_completion_tokens, and an explicit effort
    assert "temperature" not in seen.settings and "top_p" not in seen.settings and "max_tokens" not in seen.settings
    assert seen.settings["max_completion_tokens"] == 1024 + OPENAI_REASONING_TOKENS
    assert seen.settings["reasoning_effort"] == "medium"
    recorded = adapter.settings()["reasoning"]
    assert recorded == {
        "enabled": True,
        "reasoning_tokens": OPENAI_REASONING_TOKENS,
        "effort": "medium",
        "thinking_budget": None,
    }
    assert adapter.settings()["send_temperature"] is False


def test_the_server_refuses_a_temperature_for_gpt5_and_keeps_its_message(keys: None) -> None:
    with OpenAIWireServer() as server:
        response, _ = generate_once(
            openai_api.make_adapter, "gpt-5", server.base_url(), extra={"send_temperature": "TRUE"}
        )
    assert response.error is not None and response.error.kind == "invalid_request" and response.attempts == 1
    assert "Unsupported value: 'temperature' does not support 0.0" in response.error.message


def test_non_reasoning_openai_models_keep_temperature_and_plain_budget(keys: None) -> None:
    for model in ("gpt-4o", "gpt-4.1", "gpt-5-chat-latest"):
        with OpenAIWireServer() as server:
            response, adapter = generate_once(
                openai_api.make_adapter, model, server.base_url(), make_request(f"openai:{model}", max_tokens=300)
            )
        assert response.ok
        assert server.requests[0].settings["temperature"] == 0.0
        assert server.requests[0].settings["max_completion_tokens"] == 300
        assert "reasoning_effort" not in server.requests[0].settings
        assert adapter.settings()["reasoning"]["enabled"] is False


def test_reasoning_that_spends_the_whole_limit_is_budget_exhausted_not_an_answer(keys: None) -> None:
    # reasoning_tokens=0 leaves only the 200-token answer budget; the model thinks for 3000
    with OpenAIWireServer(answer="B", reasoning_spend=3000) as server:
        response, _ = generate_once(
            openai_api.make_adapter,
            "o3",
            server.base_url(),
            make_request("openai:o3", max_tokens=200),
            extra={"reasoning_tokens": "0", "reasoning_effort": "HIGH"},
        )
    assert response.error is not None and response.error.kind == "budget_exhausted"
    assert not response.error.retryable and response.attempts == 1 and response.text is None
    assert "200 tokens" in response.error.message and "finish_reason=length" in response.error.message
    assert "200 of them on reasoning" in response.error.message
    assert server.requests[0].settings["reasoning_effort"] == "high"


def test_compatible_server_reasoning_text_is_stored_not_parsed(keys: None) -> None:
    # vLLM's reasoning parser returns `reasoning_content`; a model without one emits <think> in content
    with OpenAIWireServer() as server:
        server.add_faults(
            Fault(
                payload={
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "qwen3",
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {
                                "role": "assistant",
                                "content": "B",
                                "reasoning_content": "Option A looks wrong; B matches.",
                            },
                        }
                    ],
                }
            ),
            Fault(
                payload={
                    "id": "y",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "qwen3",
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": "<think>Is it A? No, C.</think>\n\nC"},
                        }
                    ],
                }
            ),
            Fault(
                payload={
                    "id": "z",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "qwen3",
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "length",
                            "message": {"role": "assistant", "content": "<think>A or maybe B, let me look again at"},
                        }
                    ],
                }
            ),
        )
        responses = []
        for _ in range(3):
            response, _ = generate_once(
                openai_compatible.make_adapter, "qwen3", server.base_url(), base_urls=(server.base_url(),)
            )
            responses.append(response)
    first, second, third = responses
    assert first.text == "B" and first.reasoning == "Option A looks wrong; B matches."
    assert second.text == "C" and second.reasoning == "Is it A? No, C."
    assert third.error is not None and third.error.kind == "budget_exhausted"


# --------------------------------------------------------------------------------- Anthropic


def test_claude_extended_thinking_gets_its_budget_on_top_of_the_answer(keys: None) -> None:
    with AnthropicWireServer(answer="C", thinking_spend=5000) as server:
        response, adapter = generate_once(
            anthropic_api.make_adapter,
            "claude-sonnet-4-6",
            server.url,
            make_request("anthropic:claude-sonnet-4-6", max_tokens=1024),
            extra={"thinking": "True"},
        )
    assert response.ok and response.text == "C"
    assert response.reasoning == "Compare the marked regions; the second matches."
    [seen] = server.requests
    assert seen.settings["thinking"] == {"type": "enabled", "budget_tokens": ANTHROPIC_DEFAULT_THINKING}
    assert seen.settings["max_tokens"] == 1024 + ANTHROPIC_DEFAULT_THINKING
    assert "temperature" not in seen.settings  # the server refuses anything but 1 with thinking
    assert adapter.settings()["reasoning"]["thinking_budget"] == ANTHROPIC_DEFAULT_THINKING


def test_claude_thinking_with_a_temperature_is_refused_by_the_server(keys: None) -> None:
    with AnthropicWireServer() as server:
        response, _ = generate_once(
            anthropic_api.make_adapter,
            "claude-opus-4-1",
            server.url,
            extra={"thinking": "true", "send_temperature": "true", "thinking_budget": 2048},
        )
    assert response.error is not None and response.error.kind == "invalid_request"
    assert "`temperature` may only be set to 1 when thinking is enabled" in response.error.message


def test_claude_thinking_options_are_checked_before_any_call(keys: None) -> None:
    with pytest.raises(ModelResolutionError, match="extended thinking"):
        anthropic_api.make_adapter("claude-3-5-sonnet-20241022", fast_options(extra={"thinking": "true"}))
    with pytest.raises(ModelResolutionError, match="thinking_budget.*>= 1024"):
        anthropic_api.make_adapter(
            "claude-sonnet-4-6", fast_options(extra={"thinking": "true", "thinking_budget": "512"})
        )
    with pytest.raises(ModelResolutionError, match="thinking_budget needs thinking=true"):
        anthropic_api.make_adapter("claude-sonnet-4-6", fast_options(extra={"thinking_budget": "2048"}))


def test_claude_reply_with_only_thinking_at_max_tokens_is_budget_exhausted(keys: None) -> None:
    with AnthropicWireServer() as server:
        server.add_faults(
            Fault(
                payload={
                    "id": "m",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-6",
                    "content": [{"type": "thinking", "thinking": "Let me compare", "signature": "c2ln"}],
                    "stop_reason": "max_tokens",
                    "stop_sequence": None,
                    "usage": {"input_tokens": 9, "output_tokens": 9216},
                }
            )
        )
        response, _ = generate_once(
            anthropic_api.make_adapter, "claude-sonnet-4-6", server.url, extra={"thinking": "true"}
        )
    assert response.error is not None and response.error.kind == "budget_exhausted" and response.attempts == 1


# ------------------------------------------------------------------------------------ Google


def test_gemini_25_pro_gets_a_thinking_budget_and_the_answer_its_own_share(keys: None) -> None:
    # thinking_spend 9000 > the old 1024-token default: that budget ended with MAX_TOKENS and no text
    with GoogleWireServer(answer="D", thinking_spend=9000) as server:
        response, adapter = generate_once(
            google_api.make_adapter,
            "gemini-2.5-pro",
            server.url,
            make_request("google:gemini-2.5-pro", max_tokens=1024),
        )
    assert response.ok and response.text == "D"
    assert response.reasoning == "**Matching regions** The second mark covers the same object."
    [seen] = server.requests
    assert seen.settings["max_tokens"] == 1024 + GEMINI_DEFAULT_THINKING
    assert seen.settings["thinking"] == {"thinkingBudget": GEMINI_DEFAULT_THINKING, "includeThoughts": True}
    assert response.usage.output_tokens == GEMINI_DEFAULT_THINKING + 7
    assert adapter.settings()["reasoning"]["thinking_budget"] == GEMINI_DEFAULT_THINKING


def test_gemini_3_gets_a_thinking_level_no_temperature_and_a_reserve(keys: None) -> None:
    with GoogleWireServer(answer="A") as server:
        response, _ = generate_once(
            google_api.make_adapter,
            "gemini-3-pro-preview",
            server.url,
            make_request("google:gemini-3-pro-preview", max_tokens=1024),
            extra={"thinking_level": "Low"},
        )
    assert response.ok and response.text == "A"
    [seen] = server.requests
    assert seen.settings["thinking"] == {"thinkingLevel": "LOW", "includeThoughts": True}
    assert seen.settings["temperature"] is None  # Gemini 3 is meant to run at its default temperature
    assert seen.settings["max_tokens"] == 1024 + GEMINI_3_REASONING_TOKENS


def test_gemini_options_out_of_contract_are_errors_before_any_call(keys: None) -> None:
    with pytest.raises(ModelResolutionError, match="outside the model's range"):
        google_api.make_adapter("gemini-2.5-pro", fast_options(extra={"thinking_budget": "0"}))
    with pytest.raises(ModelResolutionError, match="Gemini 3 takes thinking_level"):
        google_api.make_adapter("gemini-3-pro-preview", fast_options(extra={"thinking_budget": "1024"}))
    with pytest.raises(ModelResolutionError, match="thinking_level is a Gemini 3 option"):
        google_api.make_adapter("gemini-2.5-flash", fast_options(extra={"thinking_level": "high"}))


def test_gemini_max_tokens_without_text_is_budget_exhausted(keys: None) -> None:
    with GoogleWireServer() as server:
        server.add_faults(
            Fault(
                payload={
                    "candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS", "index": 0}],
                    "usageMetadata": {"promptTokenCount": 5, "thoughtsTokenCount": 9216, "totalTokenCount": 9221},
                }
            )
        )
        response, _ = generate_once(google_api.make_adapter, "gemini-2.5-flash", server.url)
    assert response.error is not None and response.error.kind == "budget_exhausted"
    assert "9216 of them on reasoning" in response.error.message


def test_gemini_flash_thinking_can_be_turned_off(keys: None) -> None:
    with GoogleWireServer(answer="B") as server:
        response, adapter = generate_once(
            google_api.make_adapter, "gemini-2.5-flash", server.url, extra={"thinking_budget": "0"}
        )
    assert response.ok and response.reasoning is None
    assert server.requests[0].settings["thinking"] == {"thinkingBudget": 0, "includeThoughts": False}
    assert server.requests[0].settings["max_tokens"] == 77
    assert adapter.settings()["reasoning"]["enabled"] is False


# ------------------------------------------------------------------------- option parsing


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("False", False), ("false", False), ("FALSE", False), ("True", True), (False, False), ("true", True)],
)
def test_bool_options_read_true_and_false_in_any_case(keys: None, raw: Any, expected: bool) -> None:
    adapter = openai_api.make_adapter("gpt-4o", fast_options(extra={"send_temperature": raw}))
    assert adapter.send_temperature is expected


def test_bad_and_unknown_options_are_errors_listing_the_valid_ones(keys: None) -> None:
    with pytest.raises(ModelResolutionError, match="send_temperature='maybe': expected true or false"):
        openai_api.make_adapter("gpt-4o", fast_options(extra={"send_temperature": "maybe"}))
    with pytest.raises(
        ModelResolutionError,
        match=r"unknown model option\(s\) temprature; valid options: .*"
        r"send_temperature",
    ):
        openai_api.make_adapter("gpt-4o", fast_options(extra={"temprature": "0"}))
    with pytest.raises(ModelResolutionError, match="valid options: .*thinking, thinking_budget"):
        anthropic_api.make_adapter("claude-sonnet-4-6", fast_options(extra={"think": "true"}))
    with pytest.raises(ModelResolutionError, match="reasoning_effort='extreme': expected one of"):
        openai_api.make_adapter("gpt-5", fast_options(extra={"reasoning_effort": "extreme"}))
    with pytest.raises(ModelResolutionError, match="thinking_budget='lots': expected an integer"):
        google_api.make_adapter("gemini-2.5-pro", fast_options(extra={"thinking_budget": "lots"}))
