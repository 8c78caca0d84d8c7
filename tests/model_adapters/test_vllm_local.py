"""The in-process vLLM adapter: request construction (pure functions) and its start-up errors.

vLLM itself needs a CUDA GPU, so the engine is not started here.
"""

from __future__ import annotations

import importlib.util
import io
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from cvbench.core.types import GenerationConfig, Option, Prompt, PromptImage
from cvbench.model_adapters.local_common import letter_token_ids, scores_from_top_logprobs
from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError
from cvbench.model_adapters.vllm_local import (
    engine_kwargs,
    first_token_logprobs,
    image_part,
    make_adapter,
    sampling_kwargs,
    vllm_messages,
)


def encoded(pixels: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


PIXELS = np.random.default_rng(3).integers(0, 256, size=(3, 4, 3), dtype=np.uint8)
PNG = PromptImage(encoded(PIXELS, "PNG"), "image/png", 4, 3, "Image 1")
JPEG = PromptImage(encoded(np.full((6, 8, 3), 90, np.uint8), "JPEG"), "image/jpeg", 8, 6, "Image 2")
OPTIONS = (Option("A", "1"), Option("B", "2"), Option("C", "None of the above choices are correct"))


def prompt(system: str | None = None) -> Prompt:
    return Prompt(
        sample_id="s",
        text="Which one?\nA. 1\nB. 2",
        images=(PNG, JPEG),
        options=OPTIONS,
        mode="overlay",
        system=system,
    )


def test_messages_carry_the_decoded_images_in_order_then_the_text() -> None:
    messages = vllm_messages(prompt(system="Be brief."))
    assert messages[0] == {"role": "system", "content": "Be brief."}
    user = messages[1]
    assert user["role"] == "user" and [p["type"] for p in user["content"]] == ["image_pil", "image_pil", "text"]
    first, second = (part["image_pil"] for part in user["content"][:2])
    assert first.mode == "RGB" and np.array_equal(np.asarray(first), PIXELS)
    assert second.size == (8, 6) and np.array_equal(np.asarray(second), np.asarray(Image.open(io.BytesIO(JPEG.data))))
    assert user["content"][2] == {"type": "text", "text": "Which one?\nA. 1\nB. 2"}
    assert len(messages) == 2


def test_a_rendered_image_reaches_the_engine_as_its_pixels_without_being_encoded() -> None:
    def never(pixels: np.ndarray) -> bytes:
        raise AssertionError("an in-process model must not encode the image")

    deferred = PromptImage.deferred(PIXELS, never, "image/png", "Image 1", "identity")
    part = image_part(deferred)
    assert part["type"] == "image_pil" and np.array_equal(np.asarray(part["image_pil"]), PIXELS)
    assert not deferred.encoded


def test_undecodable_image_bytes_are_named() -> None:
    with pytest.raises(ValueError, match="Image 3: image bytes"):
        image_part(PromptImage(b"not an image", "image/png", 4, 3, "Image 3"))


def test_scoring_messages_end_with_the_assistant_prefix_to_continue() -> None:
    messages = vllm_messages(prompt(), answer_prefix="Answer:")
    assert messages[-1] == {"role": "assistant", "content": "Answer:"}
    assert messages[0]["role"] == "user"
    assert image_part(PNG)["type"] == "image_pil"


def test_engine_kwargs_from_options() -> None:
    kwargs = engine_kwargs(
        "Qwen/Qwen2.5-VL-7B-Instruct",
        {
            "tensor_parallel_size": "2",
            "max_images": 4,
            "max_model_len": "32768",
            "gpu_memory_utilization": "0.8",
            "logprobs": 30,
        },
        seed=11,
    )
    assert kwargs == {
        "model": "Qwen/Qwen2.5-VL-7B-Instruct",
        "limit_mm_per_prompt": {"image": 4},
        "tensor_parallel_size": 2,
        "dtype": "auto",
        "trust_remote_code": False,
        "seed": 11,
        "max_logprobs": 30,
        "max_model_len": 32768,
        "gpu_memory_utilization": 0.8,
    }
    defaults = engine_kwargs("m", {}, seed=0)
    assert defaults["limit_mm_per_prompt"] == {"image": 8} and defaults["max_logprobs"] == 20
    with pytest.raises(ModelResolutionError, match="tensor_parallel_size"):
        engine_kwargs("m", {"tensor_parallel_size": "two"}, seed=0)


def test_sampling_kwargs_greedy_sampled_and_scoring() -> None:
    assert sampling_kwargs(GenerationConfig(temperature=0.0, max_tokens=64), False, 20) == {
        "temperature": 0.0,
        "max_tokens": 64,
    }
    assert sampling_kwargs(GenerationConfig(temperature=0.7, top_p=0.9, seed=5, max_tokens=8), False, 20) == {
        "temperature": 0.7,
        "max_tokens": 8,
        "top_p": 0.9,
        "seed": 5,
    }
    assert sampling_kwargs(GenerationConfig(option_logprobs=True), True, 25) == {
        "temperature": 0.0,
        "max_tokens": 1,
        "logprobs": 25,
    }


def test_option_scores_from_the_first_token_top_logprobs() -> None:
    # a CompletionOutput-shaped value: logprobs is a list (per generated token) of {token_id: Logprob}
    completion = SimpleNamespace(
        logprobs=[
            {
                10: SimpleNamespace(logprob=-0.2),
                11: SimpleNamespace(logprob=-2.0),
                21: SimpleNamespace(logprob=-1.5),
                99: SimpleNamespace(logprob=-3.0),
            }
        ]
    )
    top = first_token_logprobs(completion)
    assert top == {10: -0.2, 11: -2.0, 21: -1.5, 99: -3.0}
    vocab = {"A": 10, " A": 11, "B": 20, " B": 21, "C": 30, " C": 31}
    table = letter_token_ids(lambda s: [vocab[s]], ["A", "B", "C"])
    # C made no top-k entry: left out rather than given a made-up value
    assert scores_from_top_logprobs(top, table) == {"A": -0.2, "B": -1.5}
    with pytest.raises(ValueError, match="no logprobs"):
        first_token_logprobs(SimpleNamespace(logprobs=None))


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_missing_vllm_names_the_extra() -> None:
    with pytest.raises(ModelResolutionError, match=r"pip install 'cvbench\[vllm\]'"):
        make_adapter("Qwen/Qwen2.5-VL-7B-Instruct", ModelOptions())


def test_without_a_cuda_gpu_the_error_says_so(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    # an importable stand-in for the vllm package: the adapter must stop before using it
    (tmp_path / "vllm").mkdir()
    (tmp_path / "vllm" / "__init__.py").write_text("def LLM(**kwargs):\n    raise AssertionError('engine started')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    try:
        with pytest.raises(ModelResolutionError, match="needs a CUDA GPU"):
            make_adapter("Qwen/Qwen2.5-VL-7B-Instruct", ModelOptions())
    finally:
        sys.modules.pop("vllm", None)  # no later test may find the stand-in


def test_options_are_checked_before_anything_is_imported() -> None:
    with pytest.raises(ModelResolutionError, match="unknown model option"):
        make_adapter("m", ModelOptions(extra={"tp": 2}))
    with pytest.raises(ModelResolutionError, match="needs a model name"):
        make_adapter("", ModelOptions())
