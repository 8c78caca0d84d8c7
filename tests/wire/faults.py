"""A fault-injecting OpenAI-compatible loopback server for the reliability tests.

It is `OpenAIWireServer` (same routes, request decoding, answers and error bodies) with two
additions:

- a seeded `FaultSchedule` decides, per arriving request, whether and how it fails: 429 with
  and without Retry-After, 500/502/503, a hang past the client's timeout, a connection reset,
  truncated or malformed JSON, a completion with no choices, a very slow (but good) answer,
  or an error body that echoes the request's Authorization header (to catch key leaks).
  The draw for request number k depends only on (seed, k), so a run can be replayed;
- `deterministic_answer`: an "Answer: X" reply derived from a marker in the prompt text,
  so a test can recompute the answer the server gave for every record it scores.

    schedule = FaultSchedule(seed=7, rate=0.2, hang_s=3.0)
    with FaultInjectingServer(schedule) as server:
        ...  # --base-url server.base_url()
        server.fault_counts()   # {"http_429": 12, "reset": 9, ...}
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import struct
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from types import MappingProxyType
from typing import Any

import numpy as np

from tests.wire.openai_wire import OpenAIWireServer
from tests.wire.server import Fault, ReceivedRequest

# fault kind -> relative weight among the faulted requests
DEFAULT_MIX: Mapping[str, float] = MappingProxyType(
    {
        "http_429_retry_after": 3.0,
        "http_429": 2.0,
        "http_500": 1.5,
        "http_502": 1.5,
        "http_503": 1.5,
        "hang": 0.6,
        "reset": 1.5,
        "truncated_json": 1.0,
        "malformed_json": 1.0,
        "empty_choices": 1.0,
        "slow": 1.0,
        "echo_auth_401": 0.0,  # opt-in: the secrets test turns it on
    }
)

FAULT_KINDS = tuple(DEFAULT_MIX)

_MARKER = re.compile(r"\[item ([A-Za-z0-9_.:@/-]+)\]")
_OPTION_LINE = re.compile(r"^\s*([A-Z])\.\s", re.MULTILINE)


@dataclass(frozen=True)
class InjectedFault(Fault):
    """A `Fault` with the kinds the base server cannot express, and the name it was drawn as."""

    kind: str = ""
    reset: bool = False  # close with an RST (SO_LINGER 0) instead of a clean FIN
    truncate: bool = False  # a 200 whose JSON body is cut in half
    echo_authorization: bool = False  # the error body quotes the request's Authorization header


def fault_of_kind(kind: str, *, hang_s: float, slow_s: float, retry_after_s: float) -> InjectedFault:
    """The concrete fault for a kind name of `DEFAULT_MIX`."""
    if kind == "http_429_retry_after":
        return InjectedFault(kind=kind, status=429, retry_after=f"{retry_after_s:g}", message="rate limited")
    if kind.startswith("http_"):
        return InjectedFault(kind=kind, status=int(kind[5:]), message=f"injected {kind[5:]}")
    if kind == "hang":
        return InjectedFault(kind=kind, delay_s=hang_s, drop=True)
    if kind == "reset":
        return InjectedFault(kind=kind, reset=True)
    if kind == "truncated_json":
        return InjectedFault(kind=kind, truncate=True)
    if kind == "malformed_json":
        return InjectedFault(kind=kind, raw_body=b'{"id": "x", "choices": [ {"message": nope ')
    if kind == "empty_choices":
        return InjectedFault(
            kind=kind,
            payload={
                "id": "chatcmpl-empty",
                "object": "chat.completion",
                "created": 0,
                "model": "faulty",
                "choices": [],
            },
        )
    if kind == "slow":
        return InjectedFault(kind=kind, delay_s=slow_s)
    if kind == "echo_auth_401":
        return InjectedFault(kind=kind, status=401, echo_authorization=True)
    raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")


@dataclass(frozen=True)
class FaultSchedule:
    """Which requests fail, and how: request number k (arrival order) fails with probability
    `rate`, its kind drawn from `mix`; both from a generator seeded with (seed, k)."""

    seed: int = 0
    rate: float = 0.2
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    hang_s: float = 3.0  # longer than the client's per-attempt timeout in the tests
    slow_s: float = 0.6  # shorter than it: a slow but good answer
    retry_after_s: float = 0.2
    first: int = 0  # requests before this arrival number are never faulted

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1], got {self.rate}")
        unknown = set(self.mix) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}")
        if sum(self.mix.values()) <= 0:
            raise ValueError("the fault mix has no positive weight")

    def fault_for(self, index: int) -> InjectedFault | None:
        if index < self.first:
            return None
        rng = np.random.default_rng([self.seed, index])
        if rng.random() >= self.rate:
            return None
        kinds = [k for k, w in self.mix.items() if w > 0]
        weights = np.array([self.mix[k] for k in kinds], dtype=float)
        kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
        return fault_of_kind(kind, hang_s=self.hang_s, slow_s=self.slow_s, retry_after_s=self.retry_after_s)


class _ScheduledFaults:
    """Stands in for the base server's fault deque: explicitly queued faults first, then the
    schedule's draw for the next arrival (None: answer normally). Used under the server's lock."""

    def __init__(self, schedule: FaultSchedule | None) -> None:
        self.schedule = schedule
        self.queued: list[Fault] = []
        self.draws = 0

    def __bool__(self) -> bool:
        return bool(self.queued) or self.schedule is not None

    def __len__(self) -> int:
        return len(self.queued)

    def popleft(self) -> Fault | None:
        if self.queued:
            return self.queued.pop(0)
        if self.schedule is None:
            return None
        fault = self.schedule.fault_for(self.draws)
        self.draws += 1
        return fault

    def extend(self, faults: Sequence[Fault]) -> None:
        self.queued.extend(faults)

    def clear(self) -> None:
        self.queued.clear()


def item_marker(text: str) -> str | None:
    """The `[item ...]` marker the reliability datasets put in every question."""
    match = _MARKER.search(text)
    return match.group(1) if match else None


def deterministic_letter(text: str) -> str | None:
    """The letter the server answers for a prompt text: one of its option letters, chosen by
    a hash of the item marker (or of the whole text when there is no marker)."""
    letters = sorted(set(_OPTION_LINE.findall(text)))
    if not letters:
        return None
    key = item_marker(text) or text
    digest = hashlib.sha256(key.encode()).digest()
    return letters[int.from_bytes(digest[:4], "big") % len(letters)]


def deterministic_answer(request: ReceivedRequest) -> str:
    letter = deterministic_letter(request.text)
    return f"Answer: {letter}" if letter else "I cannot tell."


def content_key(request: ReceivedRequest) -> str:
    """Identity of what was asked (images and text), to count how often one prompt was sent."""
    h = hashlib.sha256()
    for image in request.images:
        h.update(hashlib.sha256(image.data).digest())
    h.update(request.text.encode())
    return h.hexdigest()


class FaultInjectingServer(OpenAIWireServer):
    """`OpenAIWireServer` whose faults come from a `FaultSchedule` (plus any queued with
    `add_faults`), answering `deterministic_answer` by default."""

    provider = "openai-faulty"

    def __init__(
        self, schedule: FaultSchedule | None = None, *, answer: Any = deterministic_answer, **kwargs: Any
    ) -> None:
        super().__init__(answer, **kwargs)
        self.schedule = schedule
        self._faults = _ScheduledFaults(schedule)  # type: ignore[assignment]
        self._answered: list[tuple[int, str]] = []  # (request index, content key) of 200 answers
        self._answered_lock = threading.Lock()

    def set_schedule(self, schedule: FaultSchedule | None) -> None:
        with self._lock:
            self.schedule = schedule
            self._faults.schedule = schedule  # type: ignore[attr-defined]

    # -- what happened ---------------------------------------------------------------

    def fault_counts(self) -> Counter[str]:
        return Counter(getattr(r.fault, "kind", "queued") for r in self.requests if r.fault is not None)

    def answered_keys(self) -> list[str]:
        """Content keys of the requests that got a good answer, in the order answered."""
        with self._answered_lock:
            return [key for _, key in self._answered]

    # -- serving ---------------------------------------------------------------------

    def render_answer(self, request: ReceivedRequest, text: str) -> dict[str, Any]:
        body = super().render_answer(request, text)
        with self._answered_lock:
            self._answered.append((request.index, content_key(request)))
        return body

    def _apply_fault(self, handler: BaseHTTPRequestHandler, request: ReceivedRequest, fault: Fault) -> None:
        if not isinstance(fault, InjectedFault):
            super()._apply_fault(handler, request, fault)
            return
        if fault.reset:
            handler.close_connection = True
            try:  # RST instead of FIN: the client sees "connection reset by peer"
                handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                handler.connection.close()
            except OSError:
                pass
            return
        if fault.truncate:
            # a complete answer body cut short; built without counting it as answered
            body = json.dumps(OpenAIWireServer.render_answer(self, request, self.answer_for(request))).encode()
            self._send(handler, 200, body[: len(body) // 2], "application/json")
            return
        if fault.echo_authorization:
            echoed = request.headers.get("authorization", "<none>")
            self._send_json(
                handler,
                fault.status or 401,
                self.render_error(fault.status or 401, f"Incorrect API key provided: {echoed}"),
                {"WWW-Authenticate": f'Bearer realm="test", error="{echoed}"'},
            )
            return
        super()._apply_fault(handler, request, fault)
