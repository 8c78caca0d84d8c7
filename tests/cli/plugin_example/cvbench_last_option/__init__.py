"""Example cvbench plugin (docs/plugins.md): a model adapter and a task, registered by entry points."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from cvbench import Capabilities, ModelInfo, Request, Response, Usage


class LastOption:
    """Always answers the last option: a floor that shows option-order bias from the other side."""

    def __init__(self, name: str) -> None:
        self.info = ModelInfo(f"last-option:{name or 'default'}", "Last option", "baseline", None, "last-option")
        self.capabilities = Capabilities(max_images=None)

    def settings(self) -> Mapping[str, Any]:
        return {"rule": "always the last option"}

    async def generate(self, request: Request) -> Response:
        started = time.perf_counter()
        options = request.prompt.options
        letter = options[-1].letter if options else ""
        return Response(text=letter, usage=Usage(0, 0, 0.0), latency_s=time.perf_counter() - started)

    async def aclose(self) -> None:
        return None


def make_adapter(model_name: str, options: Any) -> LastOption:
    """The factory: cvbench calls it with the text after `last-option:` and its ModelOptions."""
    return LastOption(model_name)


def task_specs() -> list[dict[str, Any]]:
    """Task spec tables (the fields of a spec file): MMVM's synthetic set scored at 4 candidates only."""
    return [
        {
            "name": "synth-mmvm-4",
            "benchmark": "mmvm",
            "description": "The synthetic MMVM set, 4 candidates only (example plugin task)",
            "source": "mmvm-tsv",
            "data_file": "mllm_match_eval_full.tsv",
            "data_subdir": "synth-mmvm",
            "synthetic": False,
            "slice_dims": ["cue"],
            "candidate_settings": ["4"],
        }
    ]
