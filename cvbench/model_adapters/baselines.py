"""Built-in baselines: no network, no model. They put a floor under every number.

- `random`: a uniformly random option, seeded from the run seed, the sample id and the
  candidate setting, so a rerun gives the same answers.
- `first-option`: always option A (shows option-order bias in a benchmark).
- `mask-heuristic`: in `mask_heuristic.py` (masks and pixels only, no cross-view reasoning).
- `text-only`: reads only the prompt text and the option texts, never an image or a mask: the
  option sharing the most words with the question, ties to the longest option text, then to
  the last option (so it does not coincide with `first-option`). It measures how much of a
  benchmark is answerable from wording alone.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from cvbench.core.seeding import rng_for
from cvbench.core.types import (
    Capabilities,
    ModelInfo,
    Option,
    Request,
    Response,
    Usage,
)
from cvbench.model_adapters.registry import ModelOptions


class _Baseline:
    """Shared plumbing: settings, closing, a Response around a chosen letter."""

    info: ModelInfo
    capabilities: Capabilities
    takes_pixels = True  # in-process: reads no image bytes, so images are never encoded for it

    def settings(self) -> Mapping[str, Any]:
        return {}

    async def aclose(self) -> None:
        return None

    @staticmethod
    def _answer(letter: str | None, started: float, why: str) -> Response:
        return Response(
            text=letter or "",
            usage=Usage(0, 0, 0.0),
            latency_s=time.perf_counter() - started,
            finish_reason=why,
            served_model=None,
        )


class RandomBaseline(_Baseline):
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.info = ModelInfo("baseline:random", "Random", "baseline", None, "baseline")
        # images are never looked at: one small image keeps prompt building cheap
        self.capabilities = Capabilities(max_images=None)

    def settings(self) -> Mapping[str, Any]:
        return {"rule": "uniform over options", "seed": self.seed}

    async def generate(self, request: Request) -> Response:
        started = time.perf_counter()
        options = request.prompt.options
        if not options:
            return self._answer(None, started, "no options")
        rng = rng_for(self.seed, request.prompt.sample_id, request.prompt.setting, "random-baseline")
        return self._answer(options[int(rng.integers(len(options)))].letter, started, "random")


class FirstOptionBaseline(_Baseline):
    def __init__(self) -> None:
        self.info = ModelInfo("baseline:first-option", "First option", "baseline", None, "baseline")
        self.capabilities = Capabilities(max_images=None)

    def settings(self) -> Mapping[str, Any]:
        return {"rule": "always the first option"}

    async def generate(self, request: Request) -> Response:
        started = time.perf_counter()
        options = request.prompt.options
        return self._answer(options[0].letter if options else None, started, "first option")


_WORD = re.compile(r"[a-z]+")
_STOP = frozenset(
    ["the", "a", "an", "of", "in", "is", "it", "to", "and", "or", "on", "at", "be", "by", "as", "are", "which"]
    + ["what", "this", "that", "image"]
)


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


def text_only_choice(question: str, options: Sequence[Option]) -> str | None:
    """The option with the most words in common with the question; ties to the longer option
    text, then to the later option."""
    if not options:
        return None
    q = _words(question)
    scored = [(len(q & _words(o.text)), len(o.text), k) for k, o in enumerate(options)]
    return options[max(scored)[2]].letter


class TextOnlyBaseline(_Baseline):
    def __init__(self) -> None:
        self.info = ModelInfo("baseline:text-only", "Text only", "baseline", None, "baseline")
        self.capabilities = Capabilities(max_images=None)

    def settings(self) -> Mapping[str, Any]:
        return {"rule": "most question words shared, then longest, then last option"}

    async def generate(self, request: Request) -> Response:
        started = time.perf_counter()
        prompt = request.prompt
        question = prompt.text.rsplit("\n\n", 1)[0] if prompt.options else prompt.text
        return self._answer(text_only_choice(question, prompt.options), started, "prompt text only")


def make_random(model_name: str, options: ModelOptions) -> RandomBaseline:
    return RandomBaseline(options.seed)


def make_first_option(model_name: str, options: ModelOptions) -> FirstOptionBaseline:
    return FirstOptionBaseline()


def make_text_only(model_name: str, options: ModelOptions) -> TextOnlyBaseline:
    return TextOnlyBaseline()
