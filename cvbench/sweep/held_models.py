"""In-process models kept loaded across the units of a sweep worker.

An in-process model (transformers, vLLM `LLM`, CrossViewer, CoLVA) takes minutes and a GPU's
memory to load; a sweep worker evaluates many units (shards, runs of other settings) of the same
model one after another. `HeldModels` resolves each model once per worker process and hands the
Runner an adapter whose `aclose()` leaves it loaded; the worker releases them when it ends. API and
server models are resolved per unit as `cvbench run` does: their HTTP clients belong to one event
loop, and they cost nothing to make.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from cvbench.core.types import ModelAdapter
from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError
from cvbench.model_adapters.resolve import resolve_model
from cvbench.runner.options import RunError
from cvbench.sweep.spec import in_process


class HeldAdapter:
    """A loaded adapter lent to one run: everything but `aclose()` goes to the model."""

    def __init__(self, inner: ModelAdapter) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def aclose(self) -> None:
        return None  # stays loaded for the worker's next unit; HeldModels.close() releases it


class HeldModels:
    """Safe to share between the threads of one worker (a Ray actor with `max_concurrency` > 1):
    two units asking for the same in-process model at once get the one loaded copy; the second
    waits for the first's load instead of loading it again. Different models load in parallel."""

    def __init__(self) -> None:
        self._held: dict[str, ModelAdapter] = {}
        self._loading: dict[str, threading.Lock] = {}  # one lock per model key, held while it loads
        self._lock = threading.Lock()  # guards the three dicts
        self.loads: dict[str, int] = {}  # model spec -> times it was loaded in this process

    def resolve(self, spec: str, options: ModelOptions) -> Any:
        """The Runner's `resolve_model`: a held adapter for an in-process model, else a fresh one."""
        if not in_process(spec, options.base_urls):
            return _resolve(spec, options)
        key = f"{spec}\0{options!r}"
        with self._lock:
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                adapter = self._held.get(key)
            if adapter is None:
                adapter = _resolve(spec, options)  # outside self._lock: minutes for a real model
                with self._lock:
                    self._held[key] = adapter
                    self.loads[spec] = self.loads.get(spec, 0) + 1
        return HeldAdapter(adapter)

    def counts(self) -> Mapping[str, int]:
        with self._lock:
            return dict(self.loads)

    async def close(self) -> None:
        with self._lock:
            held, self._held = self._held, {}
        for adapter in held.values():
            await adapter.aclose()


def _resolve(spec: str, options: ModelOptions) -> Any:
    try:
        return resolve_model(spec, options)
    except (ModelResolutionError, ImportError) as exc:
        raise RunError(str(exc)) from None
