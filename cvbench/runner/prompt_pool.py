"""Building prompts off the event loop: the worker pool sized to the machine, the render store
looked up first, and everything the request body needs computed in the worker.

Prompt building is decoding, drawing and encoding, which run in OpenCV, Pillow and numpy with
the GIL released; threads therefore use every core without pickling megabytes of pixels
between processes. The pool has one worker per usable core (`usable_cores`), independent of
`--concurrency` (requests in flight). The runner's semaphore bounds how many prompts exist at
once, so memory stays flat however many cores there are.

In the worker, after the prompt is built or read from the render store, the images' identity
digests and base64 text are computed (`warm`), so the event loop only assembles the body from
finished strings.
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cvbench.core.types import RenderedPrompt
from cvbench.runner.render_store import RenderStore


def usable_cores() -> int:
    """The cores this process may run on (affinity and cgroup-aware where Python knows it)."""
    counter = getattr(os, "process_cpu_count", None)  # Python 3.13+
    if counter is not None:
        return max(1, counter() or 1)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def prompt_pool(workers: int | None = None) -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=workers or usable_cores(), thread_name_prefix="cvbench-prompt"
    )


def warm(prompt: RenderedPrompt) -> RenderedPrompt:
    """Compute, once, the identity digests and the data URLs (OpenAI-style bodies, the path in front
    of GPU servers) of the images; other adapters' base64 is computed when first used."""
    for image in prompt.images:
        _ = image.sha256
        _ = image.data_url_json
    return prompt


@dataclass(frozen=True)
class Built:
    prompt: RenderedPrompt
    stored: bool  # read from the render store (nothing rendered)


def build_or_fetch(
    build: Callable[[], RenderedPrompt],
    key: str | None,
    store: RenderStore | None,
    protocol_json: Callable[[RenderedPrompt], Any],
) -> Built:
    """The prompt from the store under `key`, else built and stored; warmed either way."""
    if store is not None and key is not None:
        found = store.get(key)
        if found is not None:
            return Built(warm(found), True)
    prompt = build()
    if store is not None and key is not None:
        store.put(key, prompt, protocol_json(prompt))
    return Built(warm(prompt), False)
