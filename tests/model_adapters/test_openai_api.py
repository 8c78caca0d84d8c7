"""The OpenAI adapter, driven through the official SDK against a loopback chat-completions server."""

from __future__ import annotations

from typing import Any

import pytest

from cvbench.core.types import Response
from cvbench.model_adapters import anthropic_api, openai_api, wire_body
from cvbench.model_adapters.registry import ModelResolutionError
from tests.model_adapters.api_helpers import (
    TEST_KEYS,
    assert_no_secret,
    fast_options,
    generate_once,
    isolate_keys,
    make_prompt,
    make_request,
    run,
)
from tests.wire import Fault, OpenAIWireServer


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    isolate_keys(monkeypatch, tmp_path, OPENAI_API_KEY=TEST_KEYS["OPENAI_API_KEY"])
    with OpenAIWireServer(answer="B", served_model="gpt-4o-2024-08-06") as s:
        yield s


def generate(server: OpenAIWireServer, request: Any = None, **option_overrides: Any) -> tuple[Response, Any]:
    return generate_once(openai_api.make_adapter, "gpt-4o", server.base_url(), request, **option_overrides)


def test_images_text_system_and_settings_arrive_exactly(server: OpenAIWireServer) -> None:
    prompt = make_prompt(3)
    response, adapter = generate(server, make_request("openai:gpt-4o", prompt, max_tokens=123))
    assert response.ok and response.text == "B" and response.attempts == 1
    assert response.served_model == "gpt-4o-2024-08-06"
    assert response.usage.input_tokens == 321 and response.usage.output_tokens == 7
    [received] = server.requests
    assert received.model == "gpt-4o"
    assert received.parts == ("image", "image", "image", "text")
    assert [i.data for i in received.images] == [i.data for i in prompt.images]
    assert [i.mime for i in received.images] == ["image/png", "image/jpeg", "image/png"]
    assert [i.detail for i in received.images] == ["high"] * 3
    assert received.text == prompt.text
    assert received.system == prompt.system
    assert received.settings["temperature"] == 0.0
    assert received.settings["max_completion_tokens"] == 123
    assert received.headers["authorization"] == f"Bearer {TEST_KEYS['OPENAI_API_KEY']}"
    settings = adapter.settings()
    assert settings["image_detail"] == "high" and settings["model"] == "gpt-4o"
    assert TEST_KEYS["OPENAI_API_KEY"] not in repr(settings)


def test_no_system_message_without_system_prompt_and_low_detail_is_explicit(server: OpenAIWireServer) -> None:
    response, adapter = generate(
        server, make_request("openai:gpt-4o", make_prompt(1, system=None)), extra={"image_detail": "low"}
    )
    assert response.ok
    [received] = server.requests
    assert received.system is None
    assert [m["role"] for m in received.body["messages"]] == ["user"]
    assert received.images[0].detail == "low"
    assert adapter.settings()["image_detail"] == "low"


def test_unknown_image_detail_is_refused_at_resolution(server: OpenAIWireServer) -> None:
    with pytest.raises(ModelResolutionError, match="image_detail"):
        openai_api.make_adapter("gpt-4o", fast_options(extra={"image_detail": "medium"}))


def test_429_retry_after_is_honoured(server: OpenAIWireServer) -> None:
    server.add_faults(Fault(status=429, retry_after="1", message="slow down"))
    response, adapter = generate(server)
    assert response.ok and response.text == "B" and response.attempts == 2
    first, second = server.requests
    assert second.time - first.time >= 1.0  # the server asked for 1 s; base delay is 0.05 s
    assert adapter.limiter.limit < 4  # halved on the 429, not yet grown back to the maximum


def test_retry_after_ms_is_honoured(server: OpenAIWireServer) -> None:
    server.add_faults(Fault(status=503, retry_after_ms="400"))
    response, _ = generate(server)
    assert response.ok and response.attempts == 2
    first, second = server.requests
    assert second.time - first.time >= 0.4


def test_server_errors_are_retried_then_succeed(server: OpenAIWireServer) -> None:
    server.add_faults(Fault(status=500), Fault(status=502))
    response, _ = generate(server)
    assert response.ok and response.text == "B" and response.attempts == 3
    assert len(server.requests) == 3


def test_retries_stop_at_max_retries(server: OpenAIWireServer) -> None:
    server.add_faults(*[Fault(status=503)] * 10)
    response, _ = generate(server, max_retries=2)
    assert not response.ok and response.error is not None
    assert response.error.kind == "server" and response.error.status == 503 and response.error.retryable
    assert response.attempts == 3 and len(server.requests) == 3
    assert response.text is None


def test_bad_request_is_not_retried(server: OpenAIWireServer) -> None:
    server.add_faults(Fault(status=400, message="image too large"))
    response, _ = generate(server)
    assert response.error is not None and response.error.kind == "invalid_request"
    assert response.error.status == 400 and not response.error.retryable
    assert "image too large" in response.error.message
    assert response.attempts == 1 and len(server.requests) == 1


def test_timeouts_end_in_an_error_once_the_budget_is_spent(server: OpenAIWireServer) -> None:
    server.add_faults(*[Fault(delay_s=30)] * 10)
    response, _ = generate(server, timeout_s=0.4, budget_s=1.5, max_retries=10)
    assert response.error is not None and response.error.kind in ("budget", "timeout")
    assert "timeout" in response.error.message or "no answer within" in response.error.message
    assert 2 <= response.attempts <= 4
    assert response.text is None


def test_dropped_connection_is_retried(server: OpenAIWireServer) -> None:
    server.add_faults(Fault(drop=True))
    response, _ = generate(server)
    assert response.ok and response.attempts == 2


def test_one_truncated_json_body_is_retried(server: OpenAIWireServer) -> None:
    server.add_faults(Fault(raw_body=b'{"id": "x", "choices": [ {"message": '))
    response, _ = generate(server)
    assert response.ok and response.text == "B" and response.attempts == 2


def test_json_that_never_parses_is_a_malformed_error_after_the_retries(server: OpenAIWireServer) -> None:
    server.add_faults(*[Fault(raw_body=b'{"id": "x", "choices": [ {"message": ')] * 4)
    response, _ = generate(server, max_retries=3)
    assert response.error is not None and response.error.kind == "malformed" and response.error.retryable
    assert response.text is None and response.attempts == 4 and len(server.requests) == 4


def test_non_json_body_is_a_malformed_error(server: OpenAIWireServer) -> None:
    server.add_faults(*[Fault(raw_body=b"<html>gateway says hi</html>", content_type="text/html")] * 4)
    response, _ = generate(server)
    assert response.error is not None and response.error.kind == "malformed"


def test_empty_choices_is_retried_and_an_error_when_it_persists(server: OpenAIWireServer) -> None:
    empty = Fault(payload={"id": "x", "object": "chat.completion", "created": 0, "model": "gpt-4o", "choices": []})
    server.add_faults(empty)
    response, _ = generate(server)
    assert response.ok and response.text == "B" and response.attempts == 2  # transient: the retry answers
    server.add_faults(*[empty] * 4)
    response, _ = generate(server)
    assert response.error is not None and response.error.kind == "malformed"
    assert "no choices" in response.error.message and response.attempts == 4


def test_refusal_is_a_refused_error_not_an_answer(server: OpenAIWireServer) -> None:
    server.add_faults(
        Fault(
            payload={
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "gpt-4o",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": None, "refusal": "I can't help with that."},
                    }
                ],
            }
        )
    )
    response, _ = generate(server)
    assert response.error is not None and response.error.kind == "refused" and response.text is None


def test_content_filter_without_text_is_refused(server: OpenAIWireServer) -> None:
    server.add_faults(
        Fault(
            payload={
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "gpt-4o",
                "choices": [
                    {"index": 0, "finish_reason": "content_filter", "message": {"role": "assistant", "content": None}}
                ],
            }
        )
    )
    response, _ = generate(server)
    assert response.error is not None and response.error.kind == "refused"


def test_auth_error_never_shows_the_key(server: OpenAIWireServer) -> None:
    key = TEST_KEYS["OPENAI_API_KEY"]
    server.add_faults(Fault(status=401, message=f"Incorrect API key provided: {key}. Bearer {key}"))
    response, _ = generate(server)
    assert response.error is not None and response.error.kind == "auth" and response.attempts == 1
    assert "Incorrect API key" in response.error.message
    assert_no_secret(response.error.message)
    assert_no_secret(repr(response))


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    isolate_keys(monkeypatch, tmp_path)
    with pytest.raises(ModelResolutionError, match="OPENAI_API_KEY"):
        openai_api.make_adapter("gpt-4o", fast_options())


def test_key_from_dotenv_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    isolate_keys(monkeypatch, tmp_path)
    (tmp_path / ".env").write_text('# keys\nexport OPENAI_API_KEY="sk-from-dotenv-0123456789"\n')
    with OpenAIWireServer() as server:
        response, _ = generate(server)
        assert response.ok
        assert server.requests[0].headers["authorization"] == "Bearer sk-from-dotenv-0123456789"


def test_base_url_from_openai_base_url_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    isolate_keys(monkeypatch, tmp_path, OPENAI_API_KEY=TEST_KEYS["OPENAI_API_KEY"])
    with OpenAIWireServer(answer="C") as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url())
        adapter = openai_api.make_adapter("gpt-4o", fast_options())
        response = run(adapter.generate(make_request(adapter.info.model_id)))
        assert response.text == "C" and len(server.requests) == 1


def test_concurrency_never_exceeds_the_option(server: OpenAIWireServer) -> None:
    import asyncio

    server.add_faults(*[Fault(delay_s=0.15)] * 12)
    adapter = openai_api.make_adapter("gpt-4o", fast_options(concurrency=3, extra={"base_url": server.base_url()}))

    async def burst(n: int) -> list[Response]:
        return list(
            await asyncio.gather(
                *(
                    adapter.generate(make_request(adapter.info.model_id, make_prompt(1, sample_id=f"s{i}")))
                    for i in range(n)
                )
            )
        )

    async def scenario() -> None:
        assert all(r.ok for r in await burst(9))
        assert server.max_in_flight == 3
        server.clear()
        server.add_faults(Fault(status=429, retry_after="0.2"), *[Fault(delay_s=0.15)] * 12)
        responses = await burst(6)
        assert all(r.ok for r in responses) and sum(r.attempts for r in responses) == 7
        assert server.max_in_flight <= 3
        await adapter.aclose()

    run(scenario())


def test_temperature_can_be_left_out_for_reasoning_models(server: OpenAIWireServer) -> None:
    response, adapter = generate(server, extra={"send_temperature": False})
    assert response.ok and "temperature" not in server.requests[0].body
    assert adapter.settings()["send_temperature"] is False


# issue 24 item 7: a 200 that is not a completion keeps the server's own words; transient ones are retried


def test_an_error_object_in_a_200_body_keeps_the_servers_message(server: OpenAIWireServer) -> None:
    overloaded = Fault(
        payload={
            "error": {"message": "The upstream model is overloaded, please retry", "type": "server_error", "code": 503}
        }
    )
    server.add_faults(overloaded)
    response, _ = generate(server)
    assert response.ok and response.text == "B" and response.attempts == 2  # transient: retried
    server.add_faults(*[overloaded] * 4)
    response, _ = generate(server)
    assert response.error is not None and response.error.kind == "server" and response.attempts == 4
    assert "The upstream model is overloaded, please retry" in response.error.message
    server.add_faults(
        Fault(
            payload={
                "error": {
                    "message": "The model `gpt-4q` does not exist",
                    "type": "invalid_request_error",
                    "code": "model_not_found",
                }
            }
        )
    )
    response, _ = generate(server)
    assert response.error is not None and response.attempts == 1 and not response.error.retryable
    assert "The model `gpt-4q` does not exist" in response.error.message
    assert "ChatCompletion" not in response.error.message


def test_an_html_page_in_a_200_keeps_its_text_and_is_retried(server: OpenAIWireServer) -> None:
    page = (
        b"<html><head><title>502 Bad Gateway</title><style>body{color:red}</style></head>"
        b"<body><h1>upstream connect error</h1></body></html>"
    )
    server.add_faults(Fault(raw_body=page, content_type="text/html"))
    response, _ = generate(server)
    assert response.ok and response.attempts == 2
    server.add_faults(*[Fault(raw_body=page, content_type="text/html")] * 4)
    response, _ = generate(server)
    assert response.error is not None and response.error.retryable and response.attempts == 4
    assert "502 Bad Gateway" in response.error.message and "upstream connect error" in response.error.message
    assert "color:red" not in response.error.message


def test_the_prepared_body_means_what_the_sdk_would_send() -> None:
    """`chat_body` splices each image's data URL into the serialised small part; parsed back it is
    the body `chat.completions.create(model=..., messages=chat_messages(...), **fields)` describes,
    for text with quotes, backslashes, newlines and non-ASCII characters."""
    import json

    text = 'Is the "red" \\ object\nthe same as the one in Image 2? Ünïcode → ok'
    prompt = make_prompt(3, text=text)
    fields = {"max_completion_tokens": 64, "temperature": 0.0, "seed": 7}
    body = openai_api.chat_body("gpt-4o", prompt, "high", fields)
    expected = {"model": "gpt-4o", "messages": openai_api.chat_messages(prompt, "high"), **fields}
    assert json.loads(body) == expected
    with_text = openai_api.chat_body("gpt-4o", prompt, None, fields, text="other text")
    assert json.loads(with_text)["messages"][-1]["content"][-1] == {"type": "text", "text": "other text"}


def test_the_image_slot_marker_in_a_prompt_is_kept_or_refused_never_mangled() -> None:
    import json

    inside = make_prompt(1, text=f"look: {wire_body.IMAGE_SLOT}")
    assert json.loads(openai_api.chat_body("gpt-4o", inside, "high", {}))["messages"][-1]["content"][-1]["text"] == (
        f"look: {wire_body.IMAGE_SLOT}"
    )
    whole = make_prompt(1, system=wire_body.IMAGE_SLOT)  # the only way to collide: the token as a whole string
    with pytest.raises(ValueError, match="slot marker"):
        openai_api.chat_body("gpt-4o", whole, "high", {})
    with pytest.raises(ValueError, match="slot marker"):  # the Anthropic body shares the splice
        anthropic_api.messages_body({"model": "m", "max_tokens": 5, "system": wire_body.IMAGE_SLOT}, whole)
    body = anthropic_api.messages_body({"model": "m", "max_tokens": 5}, inside)
    assert json.loads(body)["messages"][0]["content"][-1]["text"] == f"look: {wire_body.IMAGE_SLOT}"
