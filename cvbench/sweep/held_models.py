"""In-process models kept loaded across the units of a sweep worker.

An in-process model (transformers, vLLM `LLM`, CrossViewer, CoLVA) takes minutes and a GPU's
memory to load; a sweep worker evaluates many units (shards, runs of other settings) of the same
model one after another. `HeldModels` resolves each model once per worker process and hands the
Runner an adapter whose `aclose()` leaves it loaded; the worker releases them when it ends. API and
server models are resolved per unit as `cvbench run` does: their HTTP clients belong to one event
loop, and they cost nothing to make.
"""

from __future__ import annotations

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
    def __init__(self) -> None:
        self._held: dict[str, ModelAdapter] = {}
        self.loads: dict[str, int] = {}  # model spec -> times it was loaded in this process

    def resolve(self, spec: str, options: ModelOptions) -> Any:
        """The Runner's `resolve_model`: a held adapter for an in-process model, else a fresh one."""
        held = in_process(spec, options.base_urls)
        key = f"{spec}\0{options!r}"
        if held and key in self._held:
            return HeldAdapter(self._held[key])
        try:
            adapter = resolve_model(spec, options)
        except (ModelResolutionError, ImportError) as exc:
            raise RunError(str(exc)) from None
        if not held:
            return adapter
        self._held[key] = adapter
        self.loads[spec] = self.loads.get(spec, 0) + 1
        return HeldAdapter(adapter)

    def counts(self) -> Mapping[str, int]:
        return dict(self.loads)

    async def close(self) -> None:
        held, self._held = self._held, {}
        for adapter in held.values():
            await adapter.aclose()
