"""An adapter is handed a `Request` and nothing else: the gold answer and the protocol record stay
with the runner. These tests walk everything a model can reach from the request it receives."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cvbench.core.types import (
    Capabilities,
    GenerationConfig,
    ModelInfo,
    Option,
    Prompt,
    RenderedPrompt,
    Request,
    Response,
)
from cvbench.runner.options import RunOptions
from cvbench.runner.session import Runner
from tests.conftest import TinyData

FORBIDDEN = {"answer", "protocol", "gold", "target", "answer_region_id", "correct"}


def reachable_names(value: Any, seen: set[int] | None = None) -> set[str]:
    """Every attribute and mapping key reachable from `value` (dataclass fields, mappings, sequences)."""
    seen = set() if seen is None else seen
    if id(value) in seen or isinstance(value, (str, bytes, int, float, bool, type(None), np.ndarray)):
        return set()
    seen.add(id(value))
    names: set[str] = set()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            names.add(f.name)
            names |= reachable_names(getattr(value, f.name), seen)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            names.add(str(k))
            names |= reachable_names(v, seen)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            names |= reachable_names(v, seen)
    return names


class RecordingAdapter:
    """Keeps every request it is given and answers "A"."""

    capabilities = Capabilities(max_images=None, native_regions=False)

    def __init__(self) -> None:
        self.info = ModelInfo(model_id="test:recording", display_name="recording", access="baseline")
        self.requests: list[Request] = []

    def settings(self) -> Mapping[str, Any]:
        return {}

    async def generate(self, request: Request) -> Response:
        self.requests.append(request)
        return Response(text="A")

    async def aclose(self) -> None:
        return None


def test_the_model_side_prompt_has_no_field_that_carries_the_answer() -> None:
    names = {f.name for f in dataclasses.fields(Prompt)} | {f.name for f in dataclasses.fields(Request)}
    assert not names & FORBIDDEN


def test_a_request_refuses_the_runner_side_prompt() -> None:
    prompt = Prompt(sample_id="s", text="q", images=(), options=(Option("A", "x"),), mode="overlay")
    rendered = RenderedPrompt(prompt, "A", {"seed": 1})
    with pytest.raises(TypeError, match="must be a Prompt, not RenderedPrompt"):
        Request("m", rendered, GenerationConfig())  # type: ignore[arg-type]
    assert Request("m", prompt, GenerationConfig()).prompt is prompt


def test_an_adapter_in_a_real_run_reaches_no_answer(tiny_data: TinyData, tmp_path: Path) -> None:
    adapter = RecordingAdapter()
    options = RunOptions(
        tasks=(tiny_data.task,), data_dir=tiny_data.root, out=tmp_path / "run", progress=False, use_cache=False
    )
    outcome = Runner(options, resolve_model=lambda spec, opts: adapter).execute()
    assert outcome.status == "complete" and len(adapter.requests) == tiny_data.n_valid
    for request in adapter.requests:
        assert not reachable_names(request) & FORBIDDEN, request.prompt.sample_id
        assert request.prompt.task is not None and request.prompt.task.task_type is not None
    # the runner still scored them: the answers stayed on its side
    records = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    answered = [r for r in records if r["parse_status"] != "invalid"]
    assert len(answered) == tiny_data.n_valid and all(r["answer"] for r in answered)
    assert sum(r["correct"] for r in answered) == sum(r["answer"] == "A" for r in answered)
