"""Models a Ray actor keeps loaded between its units.

An in-process model (transformers, vLLM, native) costs a load of its weights; an actor that
serves several shards or runs of the same model loads it once and hands the same adapter to
each unit's Runner. The Runner closes its adapter when a run ends, so what it gets is a view
whose `aclose` does nothing; the model goes with the actor. API and server models are not
held: their clients belong to one event loop (each unit runs its own) and cost nothing to
build. Every load is appended to `<sweep root>/.sweep/loads.jsonl` (host, pid, model), so a
user (and the tests) can see that a model loaded once per worker.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cvbench.core.types import ModelAdapter
from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError
from cvbench.model_adapters.resolve import resolve_model
from cvbench.runner.options import RunError
from cvbench.sweep.spec import in_process

LOADS_FILE = "loads.jsonl"


class HeldAdapter:
    """The adapter as one run sees it: everything but closing."""

    def __init__(self, adapter: ModelAdapter) -> None:
        self._adapter = adapter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)

    async def aclose(self) -> None:
        return None


class AdapterPool:
    """The in-process adapters of one worker process, by (spec, model options)."""

    def __init__(self, log_dir: Path | None) -> None:
        self._held: dict[tuple[str, str], ModelAdapter] = {}
        self._log_dir = log_dir

    def resolver(self, base_urls: tuple[str, ...]) -> Callable[[str, ModelOptions], ModelAdapter]:
        def resolve(spec: str, options: ModelOptions) -> ModelAdapter:
            if not in_process(spec, base_urls):
                return self._fresh(spec, options)
            key = (spec, repr(options))
            if key not in self._held:
                self._held[key] = self._fresh(spec, options)
                self._log(spec)
            return HeldAdapter(self._held[key])  # type: ignore[return-value]

        return resolve

    @staticmethod
    def _fresh(spec: str, options: ModelOptions) -> ModelAdapter:
        try:
            return resolve_model(spec, options)
        except (ModelResolutionError, ImportError) as exc:
            raise RunError(str(exc)) from None

    def _log(self, spec: str) -> None:
        if self._log_dir is None:
            return
        self._log_dir.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "model": spec}) + "\n"
        with open(self._log_dir / LOADS_FILE, "a", encoding="utf-8") as fh:
            fh.write(line)

    def __len__(self) -> int:
        return len(self._held)
