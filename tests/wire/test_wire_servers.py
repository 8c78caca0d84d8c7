"""The loopback wire servers themselves: routing, fault order, decoding, clean shutdown."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.wire import AnthropicWireServer, Fault, GoogleWireServer, OpenAIWireServer


def post(url: str, body: Any) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, dict(reply.headers), json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


PNG = b"\x89PNG\r\n\x1a\nfake-bytes"
OPENAI_BODY = {
    "model": "m",
    "temperature": 0,
    "max_tokens": 5,
    "messages": [
        {"role": "system", "content": "sys"},
        {
            "role": "user",
            "content": [
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode(), "detail": "high"},
                },
                {"type": "text", "text": "hello"},
            ],
        },
    ],
}


def test_openai_server_decodes_and_answers() -> None:
    with OpenAIWireServer(answer=lambda r: f"echo {r.text}") as server:
        status, _, body = post(f"{server.base_url()}/chat/completions", OPENAI_BODY)
        assert status == 200 and body["choices"][0]["message"]["content"] == "echo hello"
        [seen] = server.requests
        assert seen.images[0].data == PNG and seen.images[0].detail == "high"
        assert seen.system == "sys" and seen.parts == ("image", "text") and seen.settings["max_tokens"] == 5


def test_faults_apply_in_order_then_normal_answers() -> None:
    with OpenAIWireServer() as server:
        server.add_faults(Fault(status=429, retry_after="7"), Fault(payload={"choices": []}))
        status, headers, body = post(f"{server.base_url()}/chat/completions", OPENAI_BODY)
        assert status == 429 and headers["Retry-After"] == "7" and "error" in body
        assert post(f"{server.base_url()}/chat/completions", OPENAI_BODY)[2] == {"choices": []}
        assert post(f"{server.base_url()}/chat/completions", OPENAI_BODY)[0] == 200
        assert [r.fault is not None for r in server.requests] == [True, True, False]
        assert server.pending_faults == 0


def test_wrong_route_and_bad_body_are_rejected() -> None:
    with OpenAIWireServer() as server:
        assert post(f"{server.url}/v1/completions", OPENAI_BODY)[0] == 404
        status, _, body = post(f"{server.base_url()}/chat/completions", {"model": "m"})
        assert status == 400 and "messages" in body["error"]["message"]


def test_anthropic_server_requires_max_tokens_and_decodes_blocks() -> None:
    with AnthropicWireServer(answer="ok") as server:
        message = {
            "role": "user",
            "content": [
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(PNG).decode()},
                },
                {"type": "text", "text": "q"},
            ],
        }
        assert post(f"{server.url}/v1/messages", {"model": "c", "messages": [message]})[0] == 400
        status, _, body = post(
            f"{server.url}/v1/messages", {"model": "c", "max_tokens": 3, "system": "s", "messages": [message]}
        )
        assert status == 200 and body["content"][0]["text"] == "ok"
        assert server.requests[-1].images[0].data == PNG and server.requests[-1].system == "s"


def test_google_server_decodes_inline_data() -> None:
    with GoogleWireServer(answer="fine") as server:
        body = {
            "contents": [
                {
                    "role": "user",
                    "parts": [
                        {"inlineData": {"mimeType": "image/jpeg", "data": base64.b64encode(PNG).decode()}},
                        {"text": "t"},
                    ],
                }
            ],
            "systemInstruction": {"parts": [{"text": "s"}]},
            "generationConfig": {"temperature": 0, "maxOutputTokens": 9},
        }
        status, _, reply = post(f"{server.url}/v1beta/models/gemini-x:generateContent", body)
        assert status == 200 and reply["candidates"][0]["content"]["parts"][0]["text"] == "fine"
        [seen] = server.requests
        assert seen.model == "gemini-x" and seen.images[0].mime == "image/jpeg" and seen.settings["max_tokens"] == 9


def test_stop_releases_a_hanging_request() -> None:
    server = OpenAIWireServer().start()
    server.add_faults(Fault(delay_s=60))
    import threading

    outcome: list[Any] = []

    def call() -> None:
        try:
            outcome.append(post(f"{server.base_url()}/chat/completions", OPENAI_BODY))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    while not server.requests:
        pass
    server.stop()
    thread.join(timeout=10)
    assert not thread.is_alive() and outcome and isinstance(outcome[0], Exception)
    with pytest.raises(RuntimeError):
        _ = server.url
