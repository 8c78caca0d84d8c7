"""Blocking SDK calls run on daemon threads and awaited from the event loop (`ThreadSender`).

Why: sending a prepared request body of about a megabyte costs the thread that sends it the SDK's
request pipeline and the kernel's copy of the body into the socket (docs/performance.md, "the
serial part"). On the event loop that work is serial for the whole run; a sync SDK client called
on one of these threads does it beside the loop, and the socket calls release the GIL, so the
copies use every core. The SDK is the same (same headers, authentication, timeout, status
errors, response parsing), only its sync client.

Daemon threads, not `concurrent.futures`: a request abandoned by a timeout (`asyncio.wait_for`
cannot stop a thread; the sync client's own timeout, the same per-attempt limit, ends it) or by
Ctrl-C must not keep the process alive at exit, and `ThreadPoolExecutor` joins its workers then.
Threads are started on demand, one per call in flight, up to `max_threads`, and kept for reuse.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Item = tuple[Callable[[], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # the awaiting attempt was cancelled (timeout, shutdown): nobody reads it
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class ThreadSender:
    """Runs zero-argument callables on daemon threads named `name`; `await sender.call(fn)`."""

    def __init__(self, name: str, max_threads: int) -> None:
        if max_threads < 1:
            raise ValueError(f"max_threads must be at least 1, not {max_threads}")
        self.name = name
        self.max_threads = max_threads
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads waiting for work
        self._pending = 0  # calls queued and not yet taken by a thread
        self._closed = False

    @property
    def threads(self) -> int:
        return len(self._threads)

    async def call(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name}: the sender is closed")
            self._pending += 1
            if self._pending > self._idle and len(self._threads) < self.max_threads:
                thread = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        self._queue.put((fn, loop, future))
        return await future

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            item = self._queue.get()
            with self._lock:
                self._idle -= 1
                if item is not None:
                    self._pending -= 1
            if item is None:
                return
            fn, loop, future = item
            try:
                ok, value = True, fn()
            except BaseException as exc:  # delivered to the awaiting task, which classifies it
                ok, value = False, exc
            with contextlib.suppress(RuntimeError):  # a closed loop: the run that asked is over
                loop.call_soon_threadsafe(_settle, future, ok, value)
            del item, fn, future, value  # no reference to a finished body kept while idle

    def close(self) -> None:
        """Threads end once idle; calls still running finish (or time out) on their own."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            count = len(self._threads)
        for _ in range(count):
            self._queue.put(None)
