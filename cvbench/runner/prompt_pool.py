"""Building prompts off the event loop: the worker pool sized to the machine, the render store
looked up first, and everything the request body needs computed in the worker.

Prompt building is decoding, drawing and encoding, which run in OpenCV, Pillow and numpy with
the GIL released; threads therefore use every core without pickling megabytes of pixels
between processes. The pool has one worker per usable core (`usable_cores`), independent of
`--concurrency` (requests in flight). The runner's semaphore bounds how many prompts exist at
once, so memory stays flat however many cores there are.

In the worker, after the prompt is built or read from the render store, the images' identity
digests and base64 text are computed (`warm`), and an adapter that prepares its own wire body
(`prepare_body(request) -> bytes | None`, the OpenAI-protocol and Anthropic adapters) builds it there too
(`Request.body`): the event loop only sends finished bytes.
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
    """Compute, once, the identity digests and the base64 text of the images."""
    for image in prompt.images:
        _ = image.sha256
        if image.encoded:  # a deferred image (in-process model) stays unencoded
            _ = image.data_url_json
    return prompt


@dataclass(frozen=True)
class Built:
    prompt: RenderedPrompt
    stored: bool  # read from the render store (nothing rendered)
    body: bytes | None = None  # the adapter's prepared wire body, if it prepares one


def build_or_fetch(
    build: Callable[[], RenderedPrompt],
    key: str | None,
    store: RenderStore | None,
    protocol_json: Callable[[RenderedPrompt], Any],
    prepare: Callable[[RenderedPrompt], bytes | None] | None = None,
) -> Built:
    """The prompt from the store under `key`, else built and stored; warmed either way, and its
    request body prepared by `prepare` when given."""
    stored = False
    prompt: RenderedPrompt | None = None
    if store is not None and key is not None:
        prompt = store.get(key)
        stored = prompt is not None
    if prompt is None:
        prompt = build()
        # deferred images (in-process models) are not encoded just to be stored: their render is
        # decode + draw, and storing would add the encoding they skip
        if store is not None and key is not None and all(i.encoded for i in prompt.images):
            store.put(key, prompt, protocol_json(prompt))
    warm(prompt)
    return Built(prompt, stored, prepare(prompt) if prepare is not None else None)
