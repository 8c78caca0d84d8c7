"""Request bodies prepared off the event loop (`prepare_body`, `Request.body`) reach the server as
the same document the SDK's `chat.completions.create` sends, with the same headers, through the
official SDK against a loopback server; a prepared body is sent verbatim."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest

from cvbench.core.types import ModelInfo, RenderedPrompt
from cvbench.model_adapters import anthropic_api, openai_api, openai_compatible
from cvbench.model_adapters.registry import ModelOptions
from cvbench.runner.prompt_pool import build_or_fetch
from tests.model_adapters.api_helpers import (
    TEST_KEYS,
    answer,
    fast_options,
    isolate_keys,
    make_prompt,
    make_request,
    run,
)
from tests.wire import AnthropicWireServer, Fault, OpenAIWireServer

# headers that differ per request by design (retry bookkeeping, body length of the same document)
VOLATILE = {"content-length", "x-stainless-retry-count", "x-stainless-read-timeout", "x-stainless-timeout"}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    isolate_keys(monkeypatch, tmp_path, OPENAI_API_KEY=TEST_KEYS["OPENAI_API_KEY"])
    with OpenAIWireServer(answer="B", served_model="gpt-4o-2024-08-06") as s:
        yield s


def sdk_and_prepared(adapter: Any, request: Any, **create_extra: Any) -> tuple[Any, Any]:
    """Send `request` once through the sync client's `chat.completions.create` (the document built
    by the SDK; prepared bodies are sent by the same sync client on a sender thread) and once
    through the adapter with the body prepared beforehand; returns both received requests."""

    async def go() -> None:
        try:
            client = adapter._sync_client(adapter.base_url or adapter.pool.endpoints[0].url)
            args = adapter.request_arguments(request)
            text = create_extra.pop("text", None)
            messages = openai_api.chat_messages(request.prompt, adapter.image_detail, text)
            client.chat.completions.create(model=adapter.model_name, messages=messages, **args)
            prepared = replace(request, body=adapter.prepare_body(request))
            response = await adapter.generate(prepared)
            assert response.ok, response.error
        finally:
            await adapter.aclose()

    run(go())
    return tuple(server_requests(adapter))


def server_requests(adapter: Any) -> list[Any]:
    return adapter._test_server.requests


def headers_of(received: Any) -> dict[str, str]:
    return {k: v for k, v in received.headers.items() if k not in VOLATILE}


def test_openai_prepared_body_is_the_sdk_document(server: OpenAIWireServer) -> None:
    adapter = openai_api.make_adapter("gpt-4o", fast_options(extra={"base_url": server.base_url()}))
    adapter._test_server = server
    request = make_request("openai:gpt-4o", make_prompt(3), max_tokens=123, seed=7, top_p=0.5)
    by_sdk, prepared = sdk_and_prepared(adapter, request)
    assert prepared.body == by_sdk.body
    assert prepared.path == by_sdk.path and prepared.method == by_sdk.method == "POST"
    assert headers_of(prepared) == headers_of(by_sdk)
    assert prepared.headers["content-type"] == "application/json"
    assert prepared.headers["authorization"] == f"Bearer {TEST_KEYS['OPENAI_API_KEY']}"
    assert [i.data for i in prepared.images] == [i.data for i in request.prompt.images]


def test_reasoning_model_body_matches_too(server: OpenAIWireServer) -> None:
    adapter = openai_api.make_adapter("o3", fast_options(extra={"base_url": server.base_url()}))
    adapter._test_server = server
    request = make_request("openai:o3", make_prompt(2, system=None), max_tokens=50)
    by_sdk, prepared = sdk_and_prepared(adapter, request)
    assert prepared.body == by_sdk.body
    assert "temperature" not in prepared.body and prepared.body["reasoning_effort"]


def test_text_with_json_specials_and_unicode_survives(server: OpenAIWireServer) -> None:
    text = 'Quote " backslash \\ newline \n tab \t nul \x00 emoji \U0001f600 accents éü </script>'
    adapter = openai_api.make_adapter("gpt-4o", fast_options(extra={"base_url": server.base_url()}))
    adapter._test_server = server
    request = make_request("openai:gpt-4o", make_prompt(1, system='sys "x"\n', text=text))
    by_sdk, prepared = sdk_and_prepared(adapter, request)
    assert prepared.body == by_sdk.body
    assert prepared.text == text and prepared.system == 'sys "x"\n'


def test_openai_compatible_logprob_body_matches_the_sdk(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    isolate_keys(monkeypatch, tmp_path)
    with OpenAIWireServer(answer="B", top_logprobs={"B": -0.1, "A": -2.3}) as s:
        options = replace(fast_options(), base_urls=(s.base_url(),))
        adapter = openai_compatible.make_adapter("qwen", options)
        adapter._test_server = s
        request = make_request(adapter.info.model_id, make_prompt(2), option_logprobs=True)
        text = f"{request.prompt.text}\n{openai_compatible.LETTER_INSTRUCTION}"
        by_sdk, prepared = sdk_and_prepared(adapter, request, text=text)
    assert prepared.body == by_sdk.body
    assert prepared.body["logprobs"] is True and prepared.body["max_tokens"] == 1
    assert prepared.text.endswith(openai_compatible.LETTER_INSTRUCTION)


def test_a_prepared_body_is_sent_verbatim(server: OpenAIWireServer) -> None:
    adapter = openai_api.make_adapter("gpt-4o", fast_options(extra={"base_url": server.base_url()}))
    request = make_request("openai:gpt-4o", make_prompt(1))
    other = make_request("openai:gpt-4o", make_prompt(2, text="a different question"))
    body = adapter.prepare_body(other)
    assert json.loads(body)["messages"][-1]["content"][-1]["text"] == "a different question"

    assert answer(adapter, replace(request, body=body)).ok
    [received] = server.requests
    assert received.text == "a different question" and len(received.images) == 2


def test_retries_resend_the_prepared_body(server: OpenAIWireServer) -> None:
    server.add_faults(Fault(status=500), Fault(status=503))
    adapter = openai_api.make_adapter("gpt-4o", fast_options(extra={"base_url": server.base_url()}))
    request = make_request("openai:gpt-4o", make_prompt(2))
    prepared = replace(request, body=adapter.prepare_body(request))

    response = answer(adapter, prepared)
    assert response.ok and response.attempts == 3
    assert len(server.requests) == 3
    assert server.requests[0].body == server.requests[2].body


def test_the_prompt_worker_prepares_the_body() -> None:
    """`build_or_fetch` runs in the prompt pool; the body comes out of it, built in that thread."""
    info = ModelInfo("openai-compatible:m", "m", "open", None, "openai-compatible")
    adapter = openai_compatible.OpenAICompatibleAdapter(
        info, ModelOptions(), "m", ("http://127.0.0.1:9/v1",), None, None
    )
    prompt = make_prompt(2)
    threads: list[str] = []

    def prepare(rendered: Any) -> bytes:
        threads.append(threading.current_thread().name)
        return adapter.prepare_body(make_request("openai-compatible:m", rendered.prompt))

    rendered = RenderedPrompt(prompt=prompt, answer="A", protocol={})
    with ThreadPoolExecutor(1, thread_name_prefix="cvbench-prompt") as pool:
        built = pool.submit(build_or_fetch, lambda: rendered, None, None, lambda r: {}, prepare).result()
    assert threads and threads[0].startswith("cvbench-prompt")
    assert built.body is not None
    document = json.loads(built.body)
    assert document["model"] == "m"
    urls = [part["image_url"]["url"] for part in document["messages"][-1]["content"] if part["type"] == "image_url"]
    assert urls == [image.data_url for image in prompt.images]


# ------------------------------------------------------------------------------ Anthropic


@pytest.fixture
def anthropic_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    isolate_keys(monkeypatch, tmp_path, ANTHROPIC_API_KEY=TEST_KEYS["ANTHROPIC_API_KEY"])
    with AnthropicWireServer(answer="The answer is B.") as s:
        yield s


def anthropic_sdk_and_prepared(adapter: Any, request: Any, server: Any) -> tuple[Any, Any]:
    """The sync SDK's `messages.create` document, then the adapter's prepared body (as the SDK
    call the adapter made before: sampling fields in `extra_body` where `create` lacks them)."""

    async def go() -> None:
        try:
            fields, sampling = adapter.request_fields(request)
            content = anthropic_api.message_content(request.prompt)
            adapter.sync_client().messages.create(
                messages=[{"role": "user", "content": content}], extra_body=sampling, **fields
            )
            prepared = replace(request, body=adapter.prepare_body(request))
            response = await adapter.generate(prepared)
            assert response.ok, response.error
        finally:
            await adapter.aclose()

    run(go())
    by_sdk, prepared = server.requests
    return by_sdk, prepared


def test_anthropic_prepared_body_is_the_sdk_document(anthropic_server: AnthropicWireServer) -> None:
    adapter = anthropic_api.make_adapter(
        "claude-sonnet-4-6", fast_options(extra={"base_url": anthropic_server.base_url()})
    )
    request = make_request("anthropic:claude-sonnet-4-6", make_prompt(3), max_tokens=99, top_p=0.5)
    by_sdk, prepared = anthropic_sdk_and_prepared(adapter, request, anthropic_server)
    assert prepared.body == by_sdk.body
    assert prepared.path == by_sdk.path == "/v1/messages"
    assert headers_of(prepared) == headers_of(by_sdk)
    assert prepared.headers["content-type"] == "application/json"
    assert prepared.body["temperature"] == 0.0 and prepared.body["top_p"] == 0.5
    assert [i.data for i in prepared.images] == [i.data for i in request.prompt.images]


def test_anthropic_thinking_body_and_text_specials_match(anthropic_server: AnthropicWireServer) -> None:
    text = 'Quote " backslash \\ nul \x00 emoji \U0001f600 </script>'
    options = fast_options(extra={"base_url": anthropic_server.base_url(), "thinking": True})
    adapter = anthropic_api.make_adapter("claude-sonnet-4-6", options)
    request = make_request("anthropic:claude-sonnet-4-6", make_prompt(2, system='sys "x"\n', text=text))
    by_sdk, prepared = anthropic_sdk_and_prepared(adapter, request, anthropic_server)
    assert prepared.body == by_sdk.body
    assert prepared.body["thinking"]["type"] == "enabled" and "temperature" not in prepared.body
    assert prepared.text == text and prepared.system == 'sys "x"\n'


def test_anthropic_body_is_prepared_in_the_worker_and_resent_on_retry(anthropic_server: AnthropicWireServer) -> None:
    anthropic_server.add_faults(Fault(status=529))
    adapter = anthropic_api.make_adapter(
        "claude-sonnet-4-6", fast_options(extra={"base_url": anthropic_server.base_url()})
    )
    prompt = make_prompt(2)
    threads: list[str] = []

    def prepare(rendered: Any) -> bytes | None:
        threads.append(threading.current_thread().name)
        return adapter.prepare_body(make_request("anthropic:claude-sonnet-4-6", rendered.prompt))

    rendered = RenderedPrompt(prompt=prompt, answer="A", protocol={})
    with ThreadPoolExecutor(1, thread_name_prefix="cvbench-prompt") as pool:
        built = pool.submit(build_or_fetch, lambda: rendered, None, None, lambda r: {}, prepare).result()
    assert threads == ["cvbench-prompt_0"] and built.body is not None

    async def go() -> Any:
        try:
            request = make_request("anthropic:claude-sonnet-4-6", prompt)
            return await adapter.generate(replace(request, body=built.body))
        finally:
            await adapter.aclose()

    response = run(go())
    assert response.ok and response.attempts == 2 and response.text == "The answer is B."
    first, second = anthropic_server.requests
    assert first.body == second.body and [i.data for i in second.images] == [i.data for i in prompt.images]


# ------------------------------------------------------------------------------ SDKs without raw bodies


def test_an_sdk_without_raw_bodies_gets_no_prepared_body_and_create_sends_the_same_document(
    server: OpenAIWireServer,
) -> None:
    """openai releases whose `post` has no `content=` (the adapter checks the signature once):
    nothing is prepared in the worker (it would be built for nothing) and the async
    `chat.completions.create` sends the document the prepared body would have been."""
    adapter = openai_api.make_adapter("gpt-4o", fast_options(extra={"base_url": server.base_url()}))
    request = make_request("openai:gpt-4o", make_prompt(2), max_tokens=60)
    body = adapter.prepare_body(request)
    assert body is not None
    adapter._raw_body = False  # what `takes_raw_body` finds on such a release
    assert adapter.prepare_body(request) is None

    assert answer(adapter, request).ok
    [received] = server.requests
    assert received.body == json.loads(body)
    assert received.headers["x-stainless-async"].startswith("async")  # the async client sent it


def test_anthropic_sdk_without_raw_bodies_uses_create(anthropic_server: AnthropicWireServer) -> None:
    adapter = anthropic_api.make_adapter(
        "claude-sonnet-4-6", fast_options(extra={"base_url": anthropic_server.base_url()})
    )
    request = make_request("anthropic:claude-sonnet-4-6", make_prompt(2), top_p=0.5)
    body = adapter.prepare_body(request)
    assert body is not None
    adapter._raw_body = False
    assert adapter.prepare_body(request) is None

    assert answer(adapter, request).ok
    [received] = anthropic_server.requests
    assert received.body == json.loads(body)
    assert received.headers["x-stainless-async"].startswith("async")
