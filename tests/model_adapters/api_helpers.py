"""Shared pieces of the API adapter tests: real PNG/JPEG prompts, requests, options, key env."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

from cvbench.core.types import GenerationConfig, Option, Prompt, PromptImage, Request, Response
from cvbench.model_adapters.registry import ModelOptions

T = TypeVar("T")

TEST_KEYS = {
    "OPENAI_API_KEY": "sk-test-openai-5f1c9a7e2b4d8c06",
    "ANTHROPIC_API_KEY": "sk-ant-test-9d2e4f6a8b0c1e3f",
    "GEMINI_API_KEY": "AIzaTestGeminiKey0123456789abcdefXYZ",
    "CVBENCH_VLLM_API_KEY": "vllm-test-key-77aa55cc",
}


def encoded_image(color: tuple[int, int, int], size: tuple[int, int], fmt: str) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", size, color)
    image.putpixel((1, 1), (color[2], color[0], color[1]))  # not a flat image: exercises the codec
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def make_prompt(
    n_images: int = 2,
    *,
    system: str | None = "You are a careful visual judge.",
    text: str = "Which marked object is the same? Options:\nA. 1\nB. 2\nC. 3",
    sample_id: str = "s1",
) -> Prompt:
    images = []
    palette = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]
    for i in range(n_images):
        fmt, mime = ("PNG", "image/png") if i % 2 == 0 else ("JPEG", "image/jpeg")
        size = (32 + 8 * i, 24 + 4 * i)
        images.append(
            PromptImage(
                data=encoded_image(palette[i % 4], size, fmt),
                mime=mime,
                width=size[0],
                height=size[1],
                label=f"Image {i + 1}",
            )
        )
    options = (Option("A", "1"), Option("B", "2"), Option("C", "3"))
    return Prompt(sample_id=sample_id, text=text, images=tuple(images), options=options, mode="overlay", system=system)


def make_request(model_id: str, prompt: Prompt | None = None, **config: Any) -> Request:
    settings: dict[str, Any] = {"temperature": 0.0, "max_tokens": 77}
    settings.update(config)
    return Request(model_id=model_id, prompt=prompt or make_prompt(), config=GenerationConfig(**settings))


def fast_options(**overrides: Any) -> ModelOptions:
    """Short waits so fault tests stay fast; Retry-After from the server still wins."""
    extra = {"retry_base_delay_s": 0.05, "retry_max_delay_s": 0.2}
    extra.update(overrides.pop("extra", {}))
    values: dict[str, Any] = {"concurrency": 4, "timeout_s": 5.0, "max_retries": 3, "budget_s": 20.0, "extra": extra}
    values.update(overrides)
    return ModelOptions(**values)


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def answer(adapter: Any, request: Request) -> Response:
    """One request through an adapter that exists already, closed afterwards (a fresh event loop)."""

    async def go() -> Response:
        try:
            return await adapter.generate(request)
        finally:
            await adapter.aclose()

    return run(go())


def generate_once(
    make_adapter: Callable[[str, ModelOptions], Any],
    model_name: str,
    base_url: str,
    request: Request | None = None,
    **option_overrides: Any,
) -> tuple[Response, Any]:
    """Build the adapter against `base_url`, answer one request (a default one if none), close it."""
    extra = {"base_url": base_url, **option_overrides.pop("extra", {})}
    adapter = make_adapter(model_name, fast_options(extra=extra, **option_overrides))

    return answer(adapter, request or make_request(adapter.info.model_id)), adapter


def small_mmvm_set(factory: Any, per_cue: int = 1) -> Path:
    """A data root holding a freshly generated synthetic MMVM set (`per_cue` cases per cue)."""
    from cvbench.tasks.registry import get_task
    from cvbench.tasks.synthetic import generate_mmvm

    root: Path = factory.mktemp("data")
    generate_mmvm(root / get_task("synth-mmvm").data_subdir, per_cue=per_cue, seed=0)
    return root


def isolate_keys(monkeypatch: Any, tmp_path: Any, **keys: str) -> None:
    """Run in an empty directory (no stray .env) with exactly the given key variables set."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "CVBENCH_VLLM_API_KEY",
        "CVBENCH_VLLM_URL",
        "OPENAI_BASE_URL",
        "ANTHROPIC_BASE_URL",
        "CVBENCH_GOOGLE_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in keys.items():
        monkeypatch.setenv(name, value)


def assert_no_secret(text: str | None) -> None:
    for value in TEST_KEYS.values():
        assert value not in (text or ""), "an API key leaked into an error message"
