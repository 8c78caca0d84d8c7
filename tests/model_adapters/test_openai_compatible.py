"""OpenAI-compatible servers: several endpoints, health, option log-probabilities, optional key."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from cvbench.core.types import Option, Response
from cvbench.model_adapters import openai_compatible
from cvbench.model_adapters.openai_compatible import (
    EndpointPool,
    letter_of_token,
    option_scores_from_top_logprobs,
)
from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError
from tests.model_adapters.api_helpers import (
    TEST_KEYS,
    fast_options,
    isolate_keys,
    make_prompt,
    make_request,
    run,
)
from tests.wire import Fault, OpenAIWireServer

MODEL = "Qwen/Qwen3-VL-8B-Instruct"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    isolate_keys(monkeypatch, tmp_path)


def closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connections are refused
    return f"http://127.0.0.1:{port}/v1"


def run_all(adapter: Any, requests: list[Any]) -> list[Response]:
    async def go() -> list[Response]:
        try:
            return list(await asyncio.gather(*(adapter.generate(r) for r in requests)))
        finally:
            await adapter.aclose()

    return run(go())


def test_plain_generation_has_no_detail_and_uses_max_tokens() -> None:
    with OpenAIWireServer(answer="B") as server:
        adapter = openai_compatible.make_adapter(MODEL, fast_options(base_urls=(server.base_url(),)))
        [response] = run_all(adapter, [make_request(adapter.info.model_id)])
        assert response.ok and response.text == "B" and response.served_model == MODEL
        [received] = server.requests
        assert received.model == MODEL and received.settings["max_tokens"] == 77
        assert [i.detail for i in received.images] == [None, None]
        assert received.headers["authorization"] == "Bearer EMPTY"  # no key configured: a placeholder
        assert adapter.capabilities.option_logprobs
        assert adapter.info.model_id == f"openai-compatible:{MODEL}" and adapter.info.access == "open"


def test_api_key_is_optional_and_read_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CVBENCH_VLLM_API_KEY", TEST_KEYS["CVBENCH_VLLM_API_KEY"])
    with OpenAIWireServer() as server:
        adapter = openai_compatible.make_adapter(MODEL, fast_options(base_urls=(server.base_url(),)))
        run_all(adapter, [make_request(adapter.info.model_id)])
        assert server.requests[0].headers["authorization"] == f"Bearer {TEST_KEYS['CVBENCH_VLLM_API_KEY']}"


def test_requests_spread_over_endpoints_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    with OpenAIWireServer(answer="A") as one, OpenAIWireServer(answer="B") as two:
        monkeypatch.setenv("CVBENCH_VLLM_URL", f"{one.base_url()}, {two.base_url()}")
        adapter = openai_compatible.make_adapter(MODEL, fast_options())

        async def sequential() -> list[Response]:
            out = [
                await adapter.generate(make_request(adapter.info.model_id, make_prompt(1, sample_id=f"s{i}")))
                for i in range(6)
            ]
            await adapter.aclose()
            return out

        responses = run(sequential())
        assert all(r.ok for r in responses)
        assert len(one.requests) == 3 and len(two.requests) == 3  # idle endpoints tie: round-robin
        assert [r.text for r in responses] == ["A", "B"] * 3


def test_busy_endpoint_gets_fewer_requests() -> None:
    with OpenAIWireServer() as slow, OpenAIWireServer() as fast:
        slow.add_faults(*[Fault(delay_s=1.0)] * 10)  # answers, but only after a second
        adapter = openai_compatible.make_adapter(
            MODEL, fast_options(base_urls=(slow.base_url(), fast.base_url()), concurrency=4)
        )

        async def staggered() -> list[Response]:
            first = asyncio.create_task(adapter.generate(make_request(adapter.info.model_id, make_prompt(1))))
            while not slow.requests:
                await asyncio.sleep(0.01)  # the first request now occupies the slow endpoint
            rest = [await adapter.generate(make_request(adapter.info.model_id, make_prompt(1))) for _ in range(3)]
            out = [await first, *rest]
            await adapter.aclose()
            return out

        responses = run(staggered())
        assert all(r.ok for r in responses)
        assert len(slow.requests) == 1 and len(fast.requests) == 3


def test_unreachable_endpoint_is_skipped_after_a_connection_failure() -> None:
    dead = closed_port_url()
    with OpenAIWireServer(answer="C") as alive:
        adapter = openai_compatible.make_adapter(MODEL, fast_options(base_urls=(dead, alive.base_url())))

        async def sequential() -> list[Response]:
            out = [await adapter.generate(make_request(adapter.info.model_id, make_prompt(1))) for _ in range(4)]
            await adapter.aclose()
            return out

        responses = run(sequential())
        assert [r.text for r in responses] == ["C"] * 4
        assert responses[0].attempts == 2  # tried the dead endpoint first, then retried on the live one
        assert all(r.attempts == 1 for r in responses[1:])  # the dead one is cooling down
        assert len(alive.requests) == 4


def test_option_logprobs_are_mapped_to_letters() -> None:
    top = {"B": -0.1, " A": -2.3, "A": -2.9, "C.": -4.0, "(D": -5.0, "hello": -0.5, "E": -6.0}
    with OpenAIWireServer(top_logprobs=top) as server:
        adapter = openai_compatible.make_adapter(MODEL, fast_options(base_urls=(server.base_url(),)))
        prompt = make_prompt(2)
        [response] = run_all(adapter, [make_request(adapter.info.model_id, prompt, option_logprobs=True)])
        assert response.ok
        assert response.option_scores == {"B": -0.1, "A": -2.3, "C": -4.0}  # D, E are not options here
        [received] = server.requests
        assert received.settings["logprobs"] is True and received.settings["top_logprobs"] == 20
        assert received.settings["max_tokens"] == 1
        assert received.text.startswith(prompt.text) and received.text.endswith("Answer with the option's letter only.")
        assert len(received.images) == 2


def test_server_without_logprobs_gives_the_plain_answer() -> None:
    with OpenAIWireServer(answer="B", top_logprobs=None) as server:
        adapter = openai_compatible.make_adapter(MODEL, fast_options(base_urls=(server.base_url(),)))
        [response] = run_all(adapter, [make_request(adapter.info.model_id, option_logprobs=True)])
        assert response.ok and response.text == "B" and response.option_scores is None


def test_missing_server_says_how_to_start_one() -> None:
    with pytest.raises(ModelResolutionError, match="--base-url.*CVBENCH_VLLM_URL.*vllm serve"):
        openai_compatible.make_adapter(MODEL, ModelOptions())


def test_bad_url_is_rejected() -> None:
    with pytest.raises(ModelResolutionError, match="http://"):
        openai_compatible.make_adapter(MODEL, ModelOptions(base_urls=("localhost:8000",)))


@pytest.mark.parametrize(
    "token,letter",
    [
        ("A", "A"),
        (" A", "A"),
        ("A.", "A"),
        ("(A", "A"),
        ("A)", "A"),
        (" B.", "B"),
        ("[C]", "C"),
        ("AB", None),
        ("a", None),
        ("1", None),
        ("", None),
        ("The", None),
    ],
)
def test_letter_of_token(token: str, letter: str | None) -> None:
    assert letter_of_token(token) == letter


def test_option_scores_keep_the_best_spelling_per_letter() -> None:
    options = [Option("A", "1"), Option("B", "2")]
    scores = option_scores_from_top_logprobs([("A", -1.0), (" A", -0.5), ("B.", -3.0), ("B", float("-inf"))], options)
    assert scores == {"A": -0.5, "B": -3.0}


def test_endpoint_pool_prefers_least_in_flight_then_round_robin() -> None:
    pool = EndpointPool(["u1", "u2", "u3"], cooldown_s=10)
    assert [pool.pick(now=0).url for _ in range(4)] == ["u1", "u2", "u3", "u1"]
    pool.endpoints[1].in_flight = 2
    pool.endpoints[2].in_flight = 1
    assert pool.pick(now=0).url == "u1"
    pool.endpoints[0].in_flight = 3
    assert pool.pick(now=0).url == "u3"
    pool.mark_down(pool.endpoints[2], now=0)
    assert pool.pick(now=5).url == "u2"  # u3 is cooling down
    assert pool.pick(now=11).url == "u3"  # cooled down
    for e in pool.endpoints:
        pool.mark_down(e, now=0)
    assert pool.pick(now=1).url in {"u1", "u2", "u3"}  # all down: still tries one
