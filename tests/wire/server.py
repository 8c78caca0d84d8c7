"""A loopback HTTP server speaking a model provider's wire protocol, for offline tests.

Each provider module (`openai_wire`, `anthropic_wire`, `google_wire`) subclasses `WireServer`
with that provider's paths, request decoding and response/error bodies. Every server:

- runs in a background thread on 127.0.0.1 (`start()` / `stop()`, or `with Server() as s:`);
- answers with a canned text (`answer=`: a string, or a function of the `ReceivedRequest`);
- applies queued per-request faults first (`add_faults(Fault(status=429, retry_after="1"), ...)`):
  an HTTP error with the provider's error body and headers, a delay (hang), a dropped
  connection, a raw body (malformed JSON), or a JSON payload of your choice (e.g. no choices);
- logs every request it received (`requests`), decoded: images (MIME + exact bytes), text,
  system prompt, generation settings, the order of the content parts, the arrival time;
  `max_in_flight` is the peak number of requests it handled at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from typing_extensions import Self


@dataclass(frozen=True)
class Fault:
    """What the server does instead of answering one request (faults are used in order).

    status: reply with this HTTP status and the provider's error body.
    retry_after / retry_after_ms: add a Retry-After (seconds or HTTP date) / retry-after-ms header.
    delay_s: wait this long first (a value above the client timeout is a hang).
    drop: close the connection without any response.
    raw_body: reply 200 with these bytes (e.g. b"{not json") and `content_type`.
    payload: reply 200 with this JSON object instead of the canned answer.
    message: the error message in the error body.
    """

    status: int | None = None
    retry_after: str | None = None
    retry_after_ms: str | None = None
    delay_s: float = 0.0
    drop: bool = False
    raw_body: bytes | None = None
    payload: Mapping[str, Any] | None = None
    content_type: str = "application/json"
    message: str = "injected fault"
    headers: Mapping[str, str] = field(default_factory=dict)
    error_body: Mapping[str, Any] | None = None  # the whole error body (with `status`), instead of the provider's


def wire_image_identity(data: bytes) -> str:
    """cvbench's identity of an image seen on the wire (what records and file names hold) for
    the PNG and JPEG files cvbench encodes; other bytes by their SHA-256."""
    from cvbench.prompting.encoding import EncodingError, identity_of_bytes

    try:
        return identity_of_bytes(data)
    except (EncodingError, OSError):
        return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ReceivedImage:
    mime: str
    data: bytes  # exact bytes after base64 decoding
    detail: str | None = None  # OpenAI image_url.detail

    @property
    def identity(self) -> str:
        return wire_image_identity(self.data)


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the server saw it (whatever it then answered)."""

    index: int  # 0-based arrival order
    time: float  # time.monotonic() at arrival
    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: Any  # parsed JSON (None if not JSON)
    model: str | None = None
    text: str = ""  # the user text (text parts joined with "\n")
    system: str | None = None
    images: tuple[ReceivedImage, ...] = ()
    parts: tuple[str, ...] = ()  # content part kinds in order: "image" / "text"
    settings: Mapping[str, Any] = field(default_factory=dict)  # temperature, max_tokens, logprobs, ...
    fault: Fault | None = None  # the fault applied to this request, if any


Answer = str | Callable[[ReceivedRequest], str]


class WireError(Exception):
    """A request the protocol does not allow; answered with HTTP 400 and this message."""


ServerT = TypeVar("ServerT", bound="WireServer")


class WireServer:
    """Base class; subclasses implement the provider's protocol (see the methods marked so)."""

    provider = "base"

    def __init__(
        self, answer: Answer = "A", *, served_model: str | None = None, usage: tuple[int, int] = (321, 7)
    ) -> None:
        self.answer: Answer = answer
        self.served_model = served_model
        self.usage = usage
        self._faults: deque[Fault] = deque()
        self._requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._in_flight = 0
        self._max_in_flight = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- provider protocol (override) ------------------------------------------------

    def route(self, method: str, path: str) -> bool:
        """Whether this request line is the provider's generation endpoint."""
        raise NotImplementedError

    def decode(self, path: str, headers: Mapping[str, str], body: Any) -> dict[str, Any]:
        """ReceivedRequest fields (model, text, system, images, parts, settings) from a request body."""
        raise NotImplementedError

    def render_answer(self, request: ReceivedRequest, text: str) -> dict[str, Any]:
        raise NotImplementedError

    def render_error(self, status: int, message: str) -> dict[str, Any]:
        raise NotImplementedError

    def base_url(self) -> str:
        """The URL to give the provider's SDK as its base URL."""
        return self.url

    def contract_violation(self, request: ReceivedRequest) -> tuple[int, dict[str, Any]] | None:
        """(status, the provider's full error body) for a request its documented contract refuses
        (an unsupported parameter, an image over the limits); None when it is acceptable."""
        return None

    # -- control ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"{self.provider}-wire", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases handlers that are delaying
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_faults(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._requests.clear()

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def max_in_flight(self) -> int:
        """The most requests this server was handling at the same time."""
        with self._lock:
            return self._max_in_flight

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def answer_for(self, request: ReceivedRequest) -> str:
        return self.answer(request) if callable(self.answer) else self.answer

    # -- the HTTP handler ------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                return None

            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_POST(self) -> None:
                server._handle(self, "POST")

        return Handler

    def _send(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str] = {},
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()

    def _send_json(
        self, handler: BaseHTTPRequestHandler, status: int, obj: Any, headers: Mapping[str, str] = {}
    ) -> None:
        self._send(handler, status, json.dumps(obj).encode(), "application/json", headers)

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            self._serve(handler, method)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        arrived = time.monotonic()
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        path = handler.path
        headers = {k.lower(): v for k, v in handler.headers.items()}
        if not self.route(method, path.split("?", 1)[0]):
            self._send_json(handler, 404, self.render_error(404, f"no route {method} {path}"))
            return
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
            index = len(self._requests)
        try:
            fields = self.decode(path, headers, body)
            problem = None
        except WireError as exc:
            fields, problem = {}, str(exc)
        request = ReceivedRequest(
            index=index, time=arrived, method=method, path=path, headers=headers, body=body, fault=fault, **fields
        )
        with self._lock:
            self._requests.append(request)
        if problem is not None:
            self._send_json(handler, 400, self.render_error(400, problem))
            return
        violation = self.contract_violation(request)
        if violation is not None:
            self._send_json(handler, violation[0], violation[1])
            return
        if fault is not None:
            self._apply_fault(handler, request, fault)
            return
        self._send_json(handler, 200, self.render_answer(request, self.answer_for(request)))

    def _apply_fault(self, handler: BaseHTTPRequestHandler, request: ReceivedRequest, fault: Fault) -> None:
        if fault.delay_s > 0 and self._stopping.wait(fault.delay_s):
            handler.close_connection = True
            return
        if fault.drop:
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers["Retry-After"] = fault.retry_after
        if fault.retry_after_ms is not None:
            headers["retry-after-ms"] = fault.retry_after_ms
        if fault.status is not None:
            body = fault.error_body if fault.error_body is not None else self.render_error(fault.status, fault.message)
            self._send_json(handler, fault.status, body, headers)
        elif fault.raw_body is not None:
            self._send(handler, 200, fault.raw_body, fault.content_type, headers)
        elif fault.payload is not None:
            self._send_json(handler, 200, fault.payload, headers)
        else:  # a pure delay: answer normally afterwards
            self._send_json(handler, 200, self.render_answer(request, self.answer_for(request)), headers)


def decode_data_url(url: str) -> tuple[str, bytes]:
    """('image/png', bytes) from 'data:image/png;base64,...'; WireError otherwise."""
    import base64
    import binascii

    if not url.startswith("data:") or ";base64," not in url:
        raise WireError(f"image url is not a base64 data URL: {url[:40]!r}")
    head, _, data = url.partition(";base64,")
    try:
        return head[len("data:") :], base64.b64decode(data, validate=True)
    except binascii.Error as exc:
        raise WireError(f"bad base64 in data URL: {exc}") from exc


def decode_base64(data: str) -> bytes:
    import base64
    import binascii

    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error as exc:
        raise WireError(f"bad base64 image data: {exc}") from exc
