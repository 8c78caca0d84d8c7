"""The CoLVA adapter end to end against a stand-in Hub folder with remote code.

The real checkpoint (InternVL2-4B + RADIO) cannot be downloaded here. Its boundary is
`AutoModel.from_pretrained(..., trust_remote_code=True)` + `model.chat(...)`, so the test saves
a folder with a tiny remote-code model exposing the same `chat` signature (it records its
arguments and answers with a value read from its saved weights) and a tokenizer, and the
adapter loads it through the normal transformers path.
"""

from __future__ import annotations

import asyncio
import io
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from cvbench.core.types import (
    GenerationConfig,
    NativeRegions,
    NativeView,
    Option,
    Prompt,
    PromptImage,
    RegionRef,
    Request,
)
from cvbench.model_adapters.colva import VPT_CONTEXT, make_adapter
from cvbench.model_adapters.registry import ModelOptions

CONFIGURATION = textwrap.dedent("""
    from transformers import PretrainedConfig


    class StubColvaConfig(PretrainedConfig):
        model_type = "stub_colva"

        def __init__(self, answer="B", **kwargs):
            self.answer = answer
            super().__init__(**kwargs)
""")

MODELING = textwrap.dedent("""
    import torch
    from transformers import PreTrainedModel

    from .configuration_stub import StubColvaConfig


    class StubColva(PreTrainedModel):
        config_class = StubColvaConfig

        def __init__(self, config, use_flash_attn=False):
            super().__init__(config)
            self.weight_marker = torch.nn.Parameter(torch.zeros(1))
            self.use_flash_attn = use_flash_attn
            self.calls = []
            self.post_init()

        def chat(self, tokenizer, pixel_values, question, generation_config, num_patches_list=None,
                 ot_pixel_values=None, ot_visual_prompts=None):
            self.calls.append(dict(pixel_values=pixel_values, question=question,
                                   generation_config=generation_config, num_patches_list=num_patches_list,
                                   ot_pixel_values=ot_pixel_values, ot_visual_prompts=ot_visual_prompts))
            if pixel_values.shape[0] != sum(num_patches_list):
                raise ValueError("tiles and num_patches_list disagree")
            return f"{self.config.answer}. {int(self.weight_marker.item())}"
""")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from safetensors.torch import save_file
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    folder = tmp_path_factory.mktemp("stub_colva")
    (folder / "configuration_stub.py").write_text(CONFIGURATION)
    (folder / "modeling_stub.py").write_text(MODELING)
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "stub_colva",
                "answer": "B",
                "architectures": ["StubColva"],
                "auto_map": {
                    "AutoConfig": "configuration_stub.StubColvaConfig",
                    "AutoModel": "modeling_stub.StubColva",
                },
            }
        )
    )
    save_file({"weight_marker": torch.tensor([7.0])}, str(folder / "model.safetensors"), metadata={"format": "pt"})
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        ["Objects in Image-1: <query object>", "A. 1"],
        trainers.BpeTrainer(
            vocab_size=300, special_tokens=["<unk>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    transformers.PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>").save_pretrained(folder)
    return folder


def png(value: int, h: int, w: int) -> PromptImage:
    buffer = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(buffer, "PNG")
    return PromptImage(buffer.getvalue(), "image/png", w, h, f"overlay {value}")


def mmvm_request(with_native: bool = True) -> Request:
    query_mask = np.zeros((40, 60), bool)
    query_mask[5:15, 5:20] = True
    cand_masks = tuple(np.pad(np.ones((5, 5), bool), ((k * 6, 40 - 5 - k * 6), (0, 55))) for k in range(3))
    native = NativeRegions(
        views=(
            NativeView("q", np.full((40, 60, 3), 51, np.uint8), (query_mask,), ("0",)),
            NativeView("c", np.full((40, 60, 3), 102, np.uint8), cand_masks, ("2", "3", "1")),
        ),
        refs=(),
        query=RegionRef(0, 0),
        candidate_order=(2, 0, 1),
    )
    options = (
        Option("A", "1"),
        Option("B", "2"),
        Option("C", "3"),
        Option("D", "None of the above choices are correct"),
    )
    text = "Which one?\n" + "".join(o.line + "\n" for o in options)
    prompt = Prompt(
        sample_id="case_3",
        text=text,
        images=(png(200, 40, 60), png(150, 500, 1400)),
        options=options,
        mode="native" if with_native else "overlay",
        native=native if with_native else None,
    )
    return Request("colva", prompt, GenerationConfig(max_tokens=32))


def test_chat_gets_tiles_expert_inputs_and_the_object_prompt(checkpoint: Path) -> None:
    adapter = make_adapter(
        str(checkpoint), ModelOptions(extra={"device": "cpu", "allow_cpu": True, "local_files_only": True})
    )
    assert adapter.capabilities.native_regions and not adapter.capabilities.option_logprobs
    assert adapter.info.model_id == f"colva:{checkpoint}"
    response = asyncio.run(adapter.generate(mmvm_request()))
    assert response.ok, response.error
    assert response.text == "B. 7"  # the answer and the weight read from the saved checkpoint
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0

    call = adapter._model.calls[-1]
    assert call["generation_config"] == {"max_new_tokens": 32, "do_sample": False}
    assert call["num_patches_list"] == [7, 4]  # 60x40 -> 3x2 tiles + thumbnail; 1400x500 -> 3x1 + thumbnail
    assert tuple(call["pixel_values"].shape) == (11, 3, 448, 448) and call["pixel_values"].dtype == torch.float32
    assert tuple(call["ot_pixel_values"].shape) == (2, 3, 1024, 1024)
    assert float(call["ot_pixel_values"][1, 0, 0, 0]) == pytest.approx(102 / 255)
    prompts = call["ot_visual_prompts"]
    assert [tuple(p.shape) for p in prompts] == [(1, 1024, 1024), (3, 1024, 1024)]
    # ascending ids 1, 2, 3 are regions 2, 0, 1: their bands start at rows 12, 0, 6 of 60 (x 1024/60)
    first_rows = [int(torch.nonzero(p.sum(dim=1) > 0.5)[0]) for p in prompts[1]]
    for row, band_start in zip(first_rows, (12, 0, 6)):
        assert abs(row - band_start * 1024 / 60) < 10
    assert call["question"] == (
        "Image-1: <image>\nImage-2: <image>\n"
        f"Objects in Image-1: <query object>{VPT_CONTEXT}\n"
        f"Objects in Image-2: <object-1>{VPT_CONTEXT}, <object-2>{VPT_CONTEXT}, "
        f"<object-3>{VPT_CONTEXT}.\n" + mmvm_request().prompt.text
    )
    asyncio.run(adapter.aclose())


def test_a_prompt_without_regions_is_an_error_response(checkpoint: Path) -> None:
    adapter = make_adapter(
        "",
        ModelOptions(
            extra={"checkpoint": str(checkpoint), "device": "cpu", "allow_cpu": True, "local_files_only": True}
        ),
    )
    response = asyncio.run(adapter.generate(mmvm_request(with_native=False)))
    assert not response.ok and response.error.kind == "invalid_request"
    assert "native-mode prompt" in response.error.message
    asyncio.run(adapter.aclose())
