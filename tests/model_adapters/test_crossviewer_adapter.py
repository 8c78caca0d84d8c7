"""The CrossViewer adapter against a stand-in checkout of Thinkirin/Crossview-Suite.

The real model needs Qwen3-VL-8B weights, which cannot exist here. The user-supplied code
folder is the adapter's boundary, so the test writes a small `CrossViewer/crossviewer/model.py`
with the same constructor and forward interface: it records what it receives and returns
`answer_logits` from a weight vector that only the checkpoint file provides.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cvbench.core.types import (
    GenerationConfig,
    NativeRegions,
    NativeView,
    Option,
    Prompt,
    RegionRef,
    Request,
)
from cvbench.model_adapters.crossviewer import REGION_TOKEN, make_adapter
from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError

VOCAB = {" A": 1, "A": 2, "A.": 3, " B": 4, "B": 5, "B.": 6, " C": 7, "C)": 8}

MODEL_PY = textwrap.dedent("""
    import torch

    CALLS = []
    VOCAB = %r


    class _Tokenizer:
        def encode(self, text, add_special_tokens=False):
            if text in VOCAB:
                return [VOCAB[text]]
            return [99] * max(2, len(text.split()))


    class _Processor:
        def __call__(self, text, images, return_tensors):
            return {"pixel_values": torch.zeros(len(images), 3), "image_grid_thw": torch.ones(len(images), 3)}


    class CrossViewerModel(torch.nn.Module):
        def __init__(self, vision_encoder_path, **kwargs):
            super().__init__()
            self.init_kwargs = dict(kwargs, vision_encoder_path=vision_encoder_path)
            self.answer_bias = torch.nn.Parameter(torch.zeros(100))
            self.tokenizer = _Tokenizer()
            self.processor = _Processor()

        def forward(self, **inputs):
            CALLS.append(inputs)
            if "explode" in inputs["questions"][0]:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return {"answer_logits": self.answer_bias.detach()[None, :] + torch.randn(1, 100) * 0}
""") % (VOCAB,)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("Crossview-Suite")
    package = root / "CrossViewer" / "crossviewer"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text(MODEL_PY)
    bias = torch.zeros(100)
    bias[VOCAB[" A"]], bias[VOCAB["A."]] = 1.0, 2.5  # A's best spelling scores 2.5
    bias[VOCAB["B"]] = 3.0  # B wins
    bias[VOCAB["C)"]] = -1.0
    checkpoint = root / "crossviewer.pth"
    torch.save({"model_state_dict": {"answer_bias": bias}, "epoch": 3}, checkpoint)
    yield root, checkpoint
    # the adapter put the stand-in on sys.path: take it off again for the tests that follow
    for name in [n for n in sys.modules if n == "crossviewer" or n.startswith("crossviewer.")]:
        del sys.modules[name]
    code_dir = str(root / "CrossViewer")
    while code_dir in sys.path:
        sys.path.remove(code_dir)


def request(question: str = "Is <region> the same object as <region>?") -> Request:
    views = (
        NativeView(
            "cam0",
            np.full((30, 40, 3), 7, np.uint8),
            (np.pad(np.ones((5, 5), bool), ((2, 23), (3, 32))), np.zeros((30, 40), bool)),
            ("1", "2"),
        ),
        NativeView(
            "cam1", np.full((20, 25, 3), 9, np.uint8), (np.pad(np.ones((4, 4), bool), ((8, 8), (8, 13))),), ("1",)
        ),
    )
    native = NativeRegions(views=views, refs=(RegionRef(0, 0), RegionRef(1, 0)), token_counts=(2, 3))
    options = (Option("A", "yes"), Option("B", "no"), Option("C", "cannot tell"))
    text = question + "\n\n" + "\n".join(o.line for o in options)
    prompt = Prompt(sample_id="q1-7", text=text, images=(), options=options, mode="native", native=native)
    return Request("crossviewer", prompt, GenerationConfig(max_tokens=16))


def test_scores_letters_from_the_checkpoint_logits(checkout: tuple[Path, Path]) -> None:
    root, checkpoint = checkout
    # host-side expansion (as configs without defer_region_token_expansion): the sample's counts are used
    adapter = make_adapter(
        "",
        ModelOptions(
            seed=3,
            extra={
                "repo_path": str(root),
                "checkpoint": str(checkpoint),
                "device": "cpu",
                "defer_region_token_expansion": False,
            },
        ),
    )
    assert adapter.capabilities.native_regions and adapter.info.access == "native"
    settings = adapter.settings()
    assert (
        settings["checkpoint"].endswith("crossviewer.pth") and settings["checkpoint_bytes"] == checkpoint.stat().st_size
    )
    assert settings["match_mode"] == "greedy" and settings["batch_size"] == 1
    response = asyncio.run(adapter.generate(request()))
    assert response.ok, response.error
    assert response.option_scores == {"A": 2.5, "B": 3.0, "C": 0.0}  # max over each letter's spellings
    assert response.text == "B" and response.finish_reason == "scored"

    model_module = sys.modules["crossviewer.model"]
    call: dict[str, Any] = model_module.CALLS[-1]
    assert call["questions"] == [
        "Is [" + REGION_TOKEN * 2 + "] the same object as [" + REGION_TOKEN * 3 + "]?\n\nA. yes\nB. no\nC. cannot tell"
    ]
    masks = call["masks"][0]
    assert [m.shape for m in masks] == [(3, 30, 40), (3, 20, 25)]
    assert (masks[1][1] == 0).all() and (masks[0][-1] == 1).all() and (masks[1][-1] == 1).all()
    assert call["region_refs"] == [[(0, 0), (1, 0)]] and call["region_token_counts"] == [[2, 3]]
    assert call["target_indices"] == [2]  # the global mask's index
    assert call["answers"] is None and call["compute_infonce"] == [False]
    assert [im.size for im in call["raw_images"][0]] == [(40, 30), (25, 20)]
    assert call["pixel_values"][0].shape == (2, 3)  # CPU path: the processor's output is passed along

    init = model_module.CALLS and adapter._model.init_kwargs
    assert init["vision_encoder_path"] == "Qwen/Qwen3-VL-8B-Instruct" and init["match_mode"] == "greedy"
    assert init["preprocess_on_gpu"] is False
    asyncio.run(adapter.aclose())


def test_model_failures_become_error_responses(checkout: tuple[Path, Path]) -> None:
    root, checkpoint = checkout
    adapter = make_adapter(
        "", ModelOptions(extra={"repo_path": str(root), "checkpoint": str(checkpoint), "device": "cpu"})
    )

    async def both() -> list[Any]:
        return list(
            await asyncio.gather(adapter.generate(request("explode <region> <region>")), adapter.generate(request()))
        )

    exploded, fine = asyncio.run(both())
    assert not exploded.ok and exploded.error.kind == "server" and "out of memory" in exploded.error.message
    assert fine.ok and fine.text == "B"
    mismatch = asyncio.run(adapter.generate(request("only one <region>")))
    assert mismatch.error is not None and mismatch.error.kind == "invalid_request"
    overlay = Prompt(sample_id="x", text="q\n\nA. yes", images=(), options=(Option("A", "yes"),), mode="overlay")
    wrong_mode = asyncio.run(adapter.generate(Request("crossviewer", overlay, GenerationConfig())))
    assert wrong_mode.error is not None and "native-mode prompt" in wrong_mode.error.message
    asyncio.run(adapter.aclose())


def test_oracle_matching_and_missing_checkpoints_are_refused(checkout: tuple[Path, Path], tmp_path: Path) -> None:
    root, checkpoint = checkout
    with pytest.raises(ModelResolutionError, match="oracle"):
        make_adapter(
            "",
            ModelOptions(
                extra={"repo_path": str(root), "checkpoint": str(checkpoint), "match_mode": "gt", "device": "cpu"}
            ),
        )
    with pytest.raises(ModelResolutionError, match="does not exist"):
        make_adapter(
            "", ModelOptions(extra={"repo_path": str(root), "checkpoint": str(tmp_path / "none.pth"), "device": "cpu"})
        )
