"""`ThreadSender`: blocking SDK calls on daemon threads, awaited from the event loop; and the
OpenAI-protocol adapters sending their prepared bodies from those threads, not the loop's."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from dataclasses import replace
from typing import Any

import pytest

from cvbench.model_adapters import anthropic_api, google_api, openai_api, openai_compatible
from cvbench.model_adapters.thread_sender import ThreadSender
from tests.model_adapters.api_helpers import (
    TEST_KEYS,
    answer,
    fast_options,
    isolate_keys,
    make_prompt,
    make_request,
    run,
)
from tests.wire import AnthropicWireServer, Fault, GoogleWireServer, OpenAIWireServer


class Boom(Exception):
    pass


def test_results_and_errors_reach_the_awaiting_task() -> None:
    sender = ThreadSender("t-send", 4)

    def fail() -> None:
        raise Boom("from the thread")

    async def go() -> tuple[str, str]:
        name = await sender.call(lambda: threading.current_thread().name)
        with pytest.raises(Boom, match="from the thread"):
            await sender.call(fail)
        return name, threading.current_thread().name

    try:
        worker, loop_thread = run(go())
    finally:
        sender.close()
    assert worker.startswith("t-send-") and worker != loop_thread


def test_one_thread_per_call_in_flight_up_to_the_limit() -> None:
    sender = ThreadSender("t-grow", 3)
    release = threading.Event()
    started = threading.Semaphore(0)

    def held() -> str:
        started.release()
        release.wait()
        return threading.current_thread().name

    async def go() -> list[str]:
        calls = [asyncio.ensure_future(sender.call(held)) for _ in range(5)]
        for _ in range(3):  # three run at once: one thread each
            await asyncio.get_running_loop().run_in_executor(None, started.acquire)
        assert sender.threads == 3
        release.set()
        return list(await asyncio.gather(*calls))

    try:
        names = run(go())
    finally:
        sender.close()
    assert len(names) == 5 and len(set(names)) == 3  # the last two waited for a free thread
    assert sender.threads == 3


def test_a_cancelled_call_is_abandoned_and_the_sender_keeps_working() -> None:
    sender = ThreadSender("t-cancel", 2)
    release = threading.Event()
    finished = threading.Event()

    def slow() -> str:
        release.wait()
        finished.set()
        return "late"

    async def go() -> str:
        task = asyncio.ensure_future(sender.call(slow))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()  # the thread finishes after its caller left: the result goes nowhere
        await asyncio.get_running_loop().run_in_executor(None, finished.wait)
        return await sender.call(lambda: "next")

    try:
        assert run(go()) == "next"
    finally:
        sender.close()


def test_threads_are_daemons_and_close_ends_the_idle_ones() -> None:
    sender = ThreadSender("t-close", 2)
    run(sender.call(lambda: None))
    [thread] = [t for t in threading.enumerate() if t.name.startswith("t-close-")]
    assert thread.daemon  # an abandoned request never holds the process at exit
    sender.close()
    thread.join(timeout=30)
    assert not thread.is_alive()

    async def after() -> None:
        await sender.call(lambda: None)

    with pytest.raises(RuntimeError, match="closed"):
        run(after())


def test_max_threads_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_threads"):
        ThreadSender("t", 0)


def sending_threads(port: int, action: Any) -> set[str]:
    """Names of the threads that wrote to a client socket connected to `port` while `action`
    ran (every Python-level `send`/`sendall` call, in every thread)."""
    names: set[str] = set()

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event != "c_call" or getattr(arg, "__name__", None) not in ("send", "sendall"):
            return
        sock = getattr(arg, "__self__", None)
        if isinstance(sock, socket.socket):
            try:
                peer = sock.getpeername()
            except OSError:
                return
            if isinstance(peer, tuple) and peer[1] == port:
                names.add(threading.current_thread().name)

    threading.setprofile(profile)
    sys.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    return names


def test_openai_prepared_body_is_written_to_the_socket_by_a_sender_thread(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    isolate_keys(monkeypatch, tmp_path, OPENAI_API_KEY=TEST_KEYS["OPENAI_API_KEY"])
    with OpenAIWireServer(answer="B") as server:
        server.add_faults(Fault(status=503))  # the retry goes through a sender thread too
        adapter = openai_api.make_adapter("gpt-4o", fast_options(extra={"base_url": server.base_url()}))
        request = make_request("openai:gpt-4o", make_prompt(2))
        prepared = replace(request, body=adapter.prepare_body(request))

        responses: list[Any] = []
        port = int(server.base_url().split(":")[2].split("/")[0])
        names = sending_threads(port, lambda: responses.append(answer(adapter, prepared)))
        assert responses[0].ok and responses[0].text == "B" and responses[0].attempts == 2
        assert len(server.requests) == 2 and server.requests[1].body == server.requests[0].body
    assert names and all(n.startswith("cvbench-send-") for n in names), names


def test_openai_compatible_sends_from_a_sender_thread_and_fails_over(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """A dead first endpoint: the connection error raised on the sender thread is classified as
    transport on the loop (the endpoint is marked down) and the second endpoint answers."""
    isolate_keys(monkeypatch, tmp_path)
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}/v1"
    dead.close()
    with OpenAIWireServer(answer="C") as server:
        options = replace(fast_options(), base_urls=(dead_url, server.base_url()))
        adapter = openai_compatible.make_adapter("qwen", options)
        request = make_request(adapter.info.model_id, make_prompt(1))
        prepared = replace(request, body=adapter.prepare_body(request))

        response = answer(adapter, prepared)
        assert response.ok and response.text == "C"
        assert [e.served for e in adapter.pool.endpoints] == [0, 1]
        assert adapter.pool.endpoints[0].down_until > 0


def test_anthropic_body_is_written_to_the_socket_by_a_sender_thread(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    isolate_keys(monkeypatch, tmp_path, ANTHROPIC_API_KEY=TEST_KEYS["ANTHROPIC_API_KEY"])
    with AnthropicWireServer(answer="B") as server:
        adapter = anthropic_api.make_adapter("claude-sonnet-4-6", fast_options(extra={"base_url": server.base_url()}))
        request = make_request("anthropic:claude-sonnet-4-6", make_prompt(2))  # body built in `generate`

        responses: list[Any] = []
        port = int(server.base_url().split(":")[2].split("/")[0])
        names = sending_threads(port, lambda: responses.append(answer(adapter, request)))
        assert responses[0].ok and responses[0].text == "B"
        assert [i.data for i in server.requests[0].images] == [i.data for i in request.prompt.images]
    assert names and all(n.startswith("cvbench-send-") for n in names), names


def test_gemini_request_is_built_and_written_by_a_sender_thread(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """google-genai cannot send a prepared body; its sync client builds the body (the images'
    base64) and sends it on a sender thread, and a server error raised there is retried."""
    isolate_keys(monkeypatch, tmp_path, GEMINI_API_KEY=TEST_KEYS["GEMINI_API_KEY"])
    with GoogleWireServer(answer="C") as server:
        server.add_faults(Fault(status=503))
        adapter = google_api.make_adapter("gemini-2.0-flash", fast_options(extra={"base_url": server.base_url()}))
        request = make_request("google:gemini-2.0-flash", make_prompt(2))
        responses: list[Any] = []
        port = int(server.base_url().split(":")[2].split("/")[0])
        names = sending_threads(port, lambda: responses.append(answer(adapter, request)))
        assert responses[0].ok and responses[0].text == "C" and responses[0].attempts == 2
        assert [i.data for i in server.requests[-1].images] == [i.data for i in request.prompt.images]
    assert names and all(n.startswith("cvbench-send-") for n in names), names


def test_a_closed_adapter_can_be_used_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """`aclose` ends the sender's threads; the adapter still works afterwards (a new event loop,
    new clients, a new sender), as it did with async clients only."""
    isolate_keys(monkeypatch, tmp_path, OPENAI_API_KEY=TEST_KEYS["OPENAI_API_KEY"])
    with OpenAIWireServer(answer="A") as server:
        adapter = openai_api.make_adapter("gpt-4o", fast_options(extra={"base_url": server.base_url()}))
        request = make_request("openai:gpt-4o", make_prompt(1))

        assert answer(adapter, request).ok
        assert answer(adapter, request).ok
        assert len(server.requests) == 2
