"""CoLVA called as its public demo calls it (docs/formats.md §3.2).

A remote-code stand-in whose `chat` has the upstream `InternVLChatModel.chat` signature records
what it receives (tests/model_adapters/upstream_fakes.py). Expected values follow the demo:
`load_image(..., max_num=12)` tiling, option ids chosen by the >25-candidate rule, every drawn
candidate in the object list, and no CPU run (the remote code needs CUDA).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from cvbench.core.seeding import rng_for
from cvbench.core.types import Capabilities, GenerationConfig, Request
from cvbench.model_adapters.colva import MAX_TILES, VPT_CONTEXT, make_adapter, tile_grid
from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError
from cvbench.prompting.build import PromptSettings, build_prompt
from cvbench.prompting.protocols.mmvm import upstream_option_ids
from tests.prompting.test_protocol_data import make_mmvm_sample

from .upstream_fakes import write_colva_checkpoint

DEVICE = os.environ.get("CVBENCH_TEST_DEVICE", "cpu")  # bench/gpu_check.sh: cuda
NATIVE = Capabilities(max_images=None, native_regions=True, option_logprobs=False, system_prompt=False)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_colva_checkpoint(tmp_path_factory.mktemp("colva_upstream"))


def test_twelve_tiles_as_in_the_demo() -> None:
    assert MAX_TILES == 12
    assert tile_grid(1800, 1800) == (3, 3)  # 9 tiles (+ thumbnail); with the training config's 6: 2 x 2
    assert tile_grid(1800, 1800, max_tiles=6) == (2, 2)


def test_a_cpu_device_is_refused_before_loading(tmp_path: Path) -> None:
    missing = tmp_path / "never-loaded"  # loading it would fail differently
    with pytest.raises(
        ModelResolutionError,
        match=r"device 'cpu' refused before loading: CoLVA's remote code .*"
        r"torch.autocast\(device_type='cuda'\)",
    ):
        make_adapter(str(missing), ModelOptions(extra={"device": "cpu"}))


def test_chat_receives_the_demo_inputs_and_the_upstream_option_ids(checkpoint: Path, tmp_path: Path) -> None:
    sample = make_mmvm_sample(tmp_path, n=30, gt=3, hw=(240, 320), prerendered=False)
    prompt = build_prompt(sample, PromptSettings(mode="native", seed=5), NATIVE, setting="27")
    adapter = make_adapter(
        str(checkpoint), ModelOptions(extra={"device": DEVICE, "allow_cpu": DEVICE == "cpu", "local_files_only": True})
    )
    assert adapter.settings()["max_tiles"] == 12
    assert adapter.settings()["max_tiles_source"] == "demo load_image(max_num=12)"
    response = asyncio.run(adapter.generate(Request("colva", prompt.prompt, GenerationConfig(max_tokens=16))))
    assert response.ok, response.error
    call = sys.modules[type(adapter._model).__module__].CALLS[-1]
    assert set(call) >= {"history", "return_history", "num_patches_list", "ot_pixel_values", "ot_visual_prompts"}
    assert call["history"] is None and call["return_history"] is False
    assert call["device"].startswith(DEVICE)
    cols, rows = tile_grid(320, 240, max_tiles=12)
    assert call["num_patches_list"] == [cols * rows + 1] * 2
    # every drawn candidate (27) gets a visual prompt, ids ascending; the options are upstream's 25
    ids = sorted(prompt.protocol["ids_shown"], key=int)
    assert len(ids) == 27 and tuple(call["ot_visual_prompts"][1].shape) == (27, 1024, 1024)
    assert f"Objects in Image-2: <object-{ids[0]}>{VPT_CONTEXT}, <object-{ids[1]}>" in call["question"]
    offered = [o.text for o in prompt.options[:-1]]
    assert tuple(offered) == upstream_option_ids(ids, rng_for(5, sample.sample_id, "mmvm-option-ids", 27))
    assert call["question"].endswith("".join(f"{o.letter}. {o.text}\n" for o in prompt.options))
    asyncio.run(adapter.aclose())
