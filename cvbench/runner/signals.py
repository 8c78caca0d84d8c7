"""SIGINT/SIGTERM during a run: the first stops taking new samples (those in flight finish and
are written), the second abandons the samples in flight."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Any, Protocol


class StopFlags:
    """Why a run stops taking new samples: a signal, a fail-fast verdict or a failed write
    (`stop`); a second signal abandons the samples in flight (`hard`)."""

    def __init__(self) -> None:
        self.stop = False
        self.hard = False

    def request_stop(self) -> None:
        self.stop = True


class Logger(Protocol):
    def log(self, message: str) -> None: ...


def install_stop_signals(
    loop: asyncio.AbstractEventLoop, flags: StopFlags, progress: Logger, inflight: set[asyncio.Task[Any]]
) -> Callable[[], None]:
    """Install the handlers on `loop`; returns the function that removes them."""

    def on_signal() -> None:
        if flags.stop:
            flags.hard = True
            for task in list(inflight):
                task.cancel()
            return
        flags.stop = True
        progress.log("stopping: finishing in-flight samples (signal again to abandon them)")

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread / platform
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)

    def remove() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)

    return remove
