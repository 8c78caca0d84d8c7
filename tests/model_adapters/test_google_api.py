"""The Google adapter, driven through the official google-genai SDK against a loopback generateContent server."""

from __future__ import annotations

from typing import Any

import pytest

from cvbench.core.types import Response
from cvbench.model_adapters import google_api
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
from tests.wire import Fault, GoogleWireServer


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    isolate_keys(monkeypatch, tmp_path, GEMINI_API_KEY=TEST_KEYS["GEMINI_API_KEY"])
    with GoogleWireServer(answer="A", served_model="gemini-2.5-pro-preview") as s:
        yield s


def generate(server: GoogleWireServer, request: Any = None, **option_overrides: Any) -> Response:
    return generate_once(google_api.make_adapter, "gemini-2.5-pro", server.base_url(), request, **option_overrides)[0]


def _blocked(payload: dict[str, Any]) -> Fault:
    return Fault(payload=payload)


def test_images_text_system_and_settings_arrive_exactly(server: GoogleWireServer) -> None:
    prompt = make_prompt(3)
    response = generate(server, make_request("google:gemini-2.5-pro", prompt, max_tokens=4096, seed=7))
    assert response.ok and response.text == "A" and response.served_model == "gemini-2.5-pro-preview"
    # output tokens count the thinking (the server thinks 2000 tokens) with the answer's 7
    assert (response.usage.input_tokens, response.usage.output_tokens) == (321, 2007)
    [received] = server.requests
    assert received.path.endswith("/models/gemini-2.5-pro:generateContent")
    assert received.parts == ("image", "image", "image", "text")
    assert [i.data for i in received.images] == [i.data for i in prompt.images]
    assert [i.mime for i in received.images] == [i.mime for i in prompt.images]
    assert received.text == prompt.text and received.system == prompt.system
    # the answer budget plus the default thinking budget (tests/model_adapters/test_reasoning_contracts.py)
    assert received.settings["temperature"] == 0.0 and received.settings["max_tokens"] == 4096 + 8192
    assert received.settings["seed"] == 7
    assert received.headers["x-goog-api-key"] == TEST_KEYS["GEMINI_API_KEY"]


def test_google_api_key_variable_and_base_url_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    isolate_keys(monkeypatch, tmp_path, GOOGLE_API_KEY="AIzaOtherGoogleKey0123456789abcdefQQ")
    with GoogleWireServer(answer="D") as server:
        monkeypatch.setenv("CVBENCH_GOOGLE_BASE_URL", server.base_url())
        adapter = google_api.make_adapter("gemini-2.5-flash", fast_options())
        response = run(adapter.generate(make_request(adapter.info.model_id, make_prompt(1, system=None))))
        assert response.text == "D"
        assert server.requests[0].system is None
        assert server.requests[0].headers["x-goog-api-key"] == "AIzaOtherGoogleKey0123456789abcdefQQ"


def test_rate_limit_retry_after_is_honoured(server: GoogleWireServer) -> None:
    server.add_faults(Fault(status=429, retry_after="1", message="Resource has been exhausted"))
    response = generate(server)
    assert response.ok and response.attempts == 2
    first, second = server.requests
    assert second.time - first.time >= 1.0


def test_server_error_is_retried(server: GoogleWireServer) -> None:
    server.add_faults(Fault(status=500), Fault(status=503))
    response = generate(server)
    assert response.ok and response.attempts == 3
    assert len(server.requests) == 3  # the SDK's own retries are off: every attempt is ours


def test_bad_request_is_not_retried(server: GoogleWireServer) -> None:
    server.add_faults(Fault(status=400, message="Request contains an invalid argument."))
    response = generate(server)
    assert response.error is not None and response.error.kind == "invalid_request" and response.attempts == 1


def test_blocked_prompt_is_refused(server: GoogleWireServer) -> None:
    server.add_faults(
        _blocked({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 10}})
    )
    response = generate(server)
    assert response.error is not None and response.error.kind == "refused" and "SAFETY" in response.error.message


def test_blocked_answer_is_refused(server: GoogleWireServer) -> None:
    server.add_faults(_blocked({"candidates": [{"finishReason": "SAFETY", "index": 0}]}))
    response = generate(server)
    assert response.error is not None and response.error.kind == "refused"


def test_no_candidates_is_malformed(server: GoogleWireServer) -> None:
    server.add_faults(_blocked({"candidates": [], "modelVersion": "x"}))
    response = generate(server)
    assert response.error is not None and response.error.kind == "malformed"


def test_malformed_json_is_retried_then_malformed(server: GoogleWireServer) -> None:
    server.add_faults(Fault(raw_body=b'{"candidates": [{"content": '))
    assert generate(server).attempts == 2
    server.add_faults(*[Fault(raw_body=b'{"candidates": [{"content": ')] * 4)
    response = generate(server, max_retries=3)
    assert response.error is not None and response.error.kind == "malformed" and response.attempts == 4


def test_timeout_ends_in_an_error_within_the_budget(server: GoogleWireServer) -> None:
    server.add_faults(*[Fault(delay_s=30)] * 10)
    response = generate(server, timeout_s=0.4, budget_s=1.2, max_retries=10)
    assert response.error is not None and response.error.kind in ("budget", "timeout")


def test_auth_error_never_shows_the_key(server: GoogleWireServer) -> None:
    key = TEST_KEYS["GEMINI_API_KEY"]
    server.add_faults(Fault(status=403, message=f"API key not valid: key={key}"))
    response = generate(server)
    assert response.error is not None and response.error.kind == "auth"
    assert_no_secret(response.error.message)


def test_missing_key_names_both_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    isolate_keys(monkeypatch, tmp_path)
    with pytest.raises(ModelResolutionError, match="GEMINI_API_KEY.*GOOGLE_API_KEY"):
        google_api.make_adapter("gemini-2.5-pro", fast_options())
