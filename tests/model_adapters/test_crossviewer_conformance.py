"""CrossViewer evaluated as its authors evaluated it (docs/formats.md §3.1).

The stand-in checkout (tests/model_adapters/upstream_fakes.py) has the upstream constructor,
`forward` and `resize_image_mask_torch` signatures and records what it receives. Each expected
value below is derived from the upstream rules: eval config values, the per-view object cap with
referenced objects first and refs remapped, deferred placeholder expansion by the model, the
max-pixels clamp, argmax ties, and the checkpoint coverage check.
"""

from __future__ import annotations

import asyncio
import os
import sys
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
from cvbench.model_adapters.crossviewer import make_adapter
from cvbench.model_adapters.crossviewer_eval import (
    RELEASED_Q225W,
    apply_object_cap,
    load_eval_config,
    region_token_count,
)
from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError
from cvbench.runner.records import score_response
from cvbench.scoring.metrics import metric, scored_record

from .upstream_fakes import VOCAB, write_crossviewer_checkout

# bench/gpu_check.sh runs these tests with CVBENCH_TEST_DEVICE=cuda (the adapter's CUDA path)
DEVICE = os.environ.get("CVBENCH_TEST_DEVICE", "cpu")

Q225W_YAML = """
model:
  vision_encoder_path: null
  freeze_vision_encoder: true
  num_object_tokens: 10
  num_cross_attn_heads: 8
  contrast_dim: 256
  attn_implementation: "flash_attention_2"
  low_cpu_mem_usage: true
  use_all_views_for_vqa: true
  match_mode: "greedy"
  region_source: "fused"
  pixelrefer_mode: "gpu_full"
  preprocess_on_gpu: true
loss:
  temperature: 0.07
  info_nce_weight: 1.0
  triplet_weight: 0.1
  vqa_weight: 0.5
data:
  include_options_in_question: true
  use_processor: false
  return_raw_images: true
  defer_region_token_expansion: true
  max_objects_per_sample: 6
"""

# default.yaml's eval-relevant values: cap 5, no deferral, processor on the host, no raw images
DEFAULT_YAML = """
model:
  freeze_vision_encoder: true
  num_object_tokens: 10
  num_cross_attn_heads: 8
  contrast_dim: 256
  use_all_views_for_vqa: true
  match_mode: "greedy"
loss:
  temperature: 0.07
data:
  max_objects_per_sample: 5
"""


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Path]]:
    root = write_crossviewer_checkout(tmp_path_factory.mktemp("Crossview-Suite"))
    bias = torch.zeros(100)
    bias[VOCAB["A."]], bias[VOCAB["B"]], bias[VOCAB["D"]] = 2.0, 3.0, -1.0
    good = root / "good.pth"
    torch.save({"model_state_dict": {"answer_bias": bias, "backbone": torch.ones(3)}}, good)
    partial = root / "partial.pth"
    torch.save({"model_state_dict": {"backbone": torch.ones(3), "head.weight": torch.ones(2)}}, partial)
    yield root, good, partial
    for name in [n for n in sys.modules if n == "crossviewer" or n.startswith("crossviewer.")]:
        del sys.modules[name]
    while str(root / "CrossViewer") in sys.path:
        sys.path.remove(str(root / "CrossViewer"))


def box(h: int, w: int, top: int, left: int, size: int) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    mask[top : top + size, left : left + size] = True
    return mask


def three_view_request(question: str = "Is <region> in view 2 the same object as <region>?") -> Request:
    """3 views; view 1 has 8 objects (over the cap of 6) and its referenced object is the last one."""
    v0 = NativeView(
        "cam0", np.full((60, 80, 3), 10, np.uint8), (box(60, 80, 5, 5, 10), box(60, 80, 30, 40, 6)), ("a0", "a1")
    )
    v1 = NativeView(
        "cam1",
        np.full((64, 96, 3), 20, np.uint8),
        tuple(box(64, 96, 2 + 7 * (k % 8), 3 + 10 * k, 5) for k in range(8)),
        tuple(f"b{k}" for k in range(8)),
    )
    v2 = NativeView("cam2", np.full((50, 50, 3), 30, np.uint8), (box(50, 50, 20, 20, 8),), ("c0",))
    native = NativeRegions(views=(v0, v1, v2), refs=(RegionRef(1, 7), RegionRef(0, 1)))
    options = (Option("A", "yes"), Option("B", "no"), Option("C", "unsure"), Option("D", "both"))
    text = question + "\n\n" + "\n".join(o.line for o in options)
    prompt = Prompt(
        sample_id="cvb-q5-3",
        text=text,
        images=(),
        options=options,
        mode="native",
        native=native,
    )
    return Request("crossviewer", prompt, GenerationConfig(max_tokens=8))


def adapter_for(root: Path, checkpoint: Path, **extra: Any) -> Any:
    return make_adapter(
        "",
        ModelOptions(seed=1, extra={"repo_path": str(root), "checkpoint": str(checkpoint), "device": DEVICE, **extra}),
    )


def last_call() -> dict[str, Any]:
    calls: list[dict[str, Any]] = sys.modules["crossviewer.model"].CALLS
    return calls[-1]


# ---------------------------------------------------------------------------------- config


def test_a_config_file_with_the_released_values_equals_the_recorded_defaults(tmp_path: Path) -> None:
    path = tmp_path / "q225w_scene_disjoint.yaml"
    path.write_text(Q225W_YAML)
    loaded = load_eval_config(path)
    assert loaded == RELEASED_Q225W.__class__(**{**RELEASED_Q225W.record(), "source": str(path)})
    assert (
        RELEASED_Q225W.use_all_views_for_vqa,
        RELEASED_Q225W.max_objects_per_sample,
        RELEASED_Q225W.defer_region_token_expansion,
        RELEASED_Q225W.match_mode,
    ) == (True, 6, True, "greedy")
    other = tmp_path / "default.yaml"
    other.write_text(DEFAULT_YAML)
    cfg = load_eval_config(other)
    # keys the file leaves out take eval_mc.py's fallbacks
    assert (
        cfg.max_objects_per_sample,
        cfg.defer_region_token_expansion,
        cfg.use_processor,
        cfg.return_raw_images,
        cfg.preprocess_on_gpu,
    ) == (5, False, True, False, False)
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  use_all_views_for_vqa: 3\n")
    with pytest.raises(Exception, match=r"bad.yaml: model.use_all_views_for_vqa=3, expected true or false"):
        load_eval_config(bad)


# ---------------------------------------------------------------------------------- object cap


def test_the_cap_keeps_referenced_objects_first_and_remaps_refs() -> None:
    native = three_view_request().prompt.native
    assert native is not None
    capped = apply_object_cap(native, 6)
    assert capped.kept == ((0, 1), (7, 0, 1, 2, 3, 4), (0,))
    assert capped.native.refs == (RegionRef(1, 0), RegionRef(0, 1))
    assert np.array_equal(capped.native.views[1].masks[0], native.views[1].masks[7])
    assert capped.native.views[1].region_ids == ("b7", "b0", "b1", "b2", "b3", "b4")
    assert capped.changed and not apply_object_cap(native, 8).changed
    assert apply_object_cap(native, -1).kept[1] == tuple(range(8))


def test_the_model_receives_what_the_upstream_eval_passes(checkout: tuple[Path, Path, Path]) -> None:
    root, good, _ = checkout
    adapter = adapter_for(root, good)
    settings = adapter.settings()
    assert settings["eval_config"]["source"] == "released q225w_scene_disjoint defaults"
    assert settings["token_counts_by"] == "crossviewer.gpu_preprocess.resize_image_mask_torch"
    assert settings["checkpoint_load"]["missing_keys"] == 0 and not settings["checkpoint_load"]["refused"]
    init = sys.modules["crossviewer.model"].INITS[-1]
    assert (
        init["match_mode"],
        init["pixelrefer_mode"],
        init["mask_num"],
        init["temperature"],
        init["triplet_weight"],
        init["load_device"],
    ) == ("greedy", "gpu_full", 32, 0.07, 0.1, None)
    # a CPU device: recorded, the model's CPU path (upstream refuses preprocess_on_gpu there)
    assert init["preprocess_on_gpu"] is (DEVICE == "cuda")

    request = three_view_request()
    response = asyncio.run(adapter.generate(request))
    assert response.ok, response.error
    call = last_call()
    assert call["use_all_views_for_vqa"] is True and call["use_all_views_for_infonce"] is False
    assert call["compute_infonce"] == [False] and call["answers"] is None
    # capped: every view padded to 6 objects + the global mask
    assert [m.shape for m in call["masks"][0]] == [(7, 60, 80), (7, 64, 96), (7, 50, 50)]
    native = request.prompt.native
    assert native is not None
    assert np.array_equal(call["masks"][0][1][0], native.views[1].masks[7].astype(np.float32))
    assert call["region_refs"] == [[(1, 0), (0, 1)]] and call["target_indices"] == [6]
    # deferred expansion: the placeholders reach the model, which counts the tokens itself
    assert call["questions"][0].startswith("Is <region> in view 2 the same object as <region>?\n\nA. yes")
    assert call["region_token_counts"] == [None]
    model_counts = call["model_token_counts"][0]
    assert response.details is not None
    assert response.details["region_token_counts"] == model_counts  # the host count equals the model's
    assert response.details["kept_objects"] == [[0, 1], [7, 0, 1, 2, 3, 4], [0]]
    assert response.details["objects_capped"] is True
    assert [im.size for im in call["raw_images"][0]] == [(80, 60), (96, 64), (50, 50)]
    assert response.text == "B"
    asyncio.run(adapter.aclose())


def test_a_config_without_deferral_expands_on_the_host_as_the_dataset_does(
    checkout: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    root, good, _ = checkout
    path = tmp_path / "default.yaml"
    path.write_text(DEFAULT_YAML)
    adapter = adapter_for(root, good, config=str(path))
    asyncio.run(adapter.generate(three_view_request()))
    call = last_call()
    # without use_additional_inputs the dataset gives every placeholder region_token_num (= mask_num, 32)
    assert call["region_token_counts"] == [[32, 32]]
    assert call["questions"][0].startswith("Is [" + "<REGION>" * 32 + "] in view 2")
    assert [m.shape[0] for m in call["masks"][0]] == [6, 6, 6]  # cap 5 + global
    assert call["raw_images"] == [None] and call["pixel_values"][0] is not None  # use_processor: true
    assert adapter.settings()["eval_config"]["source"] == str(path)
    asyncio.run(adapter.aclose())


# ---------------------------------------------------------------------------------- token counts


def test_cvbench_counts_equal_the_upstream_function_with_the_clamp(checkout: tuple[Path, Path, Path]) -> None:
    root, good, _ = checkout
    adapter_for(root, good)  # puts the checkout on sys.path
    from crossviewer.gpu_preprocess import resize_image_mask_torch  # type: ignore[import-not-found]

    rng = np.random.default_rng(11)
    clamped_somewhere = False
    for trial in range(24):
        h, w = (int(x) for x in rng.integers(30, 700, size=2))
        mask = np.zeros((h, w), bool)
        if trial % 3 == 0:  # a few scattered pixels: small area, large crop -> the clamp applies
            mask[rng.integers(0, h, 4), rng.integers(0, w, 4)] = True
        elif trial % 3 == 1:
            top, left = int(rng.integers(0, h - 3)), int(rng.integers(0, w - 3))
            mask[top : top + int(rng.integers(1, 40)), left : left + int(rng.integers(1, 40))] = True
        else:
            mask[int(rng.integers(0, h)), :] = True
        for max_pixels in (28 * 28 * 1280, 200_000, None):
            image = torch.zeros((h, w, 3), dtype=torch.uint8)
            _, _, nums, _ = resize_image_mask_torch(
                [image], [torch.from_numpy(mask.astype(np.float32))], [0], max_tokens=32, max_resize_pixels=max_pixels
            )
            assert region_token_count(mask, max_resize_pixels=max_pixels) == nums[0], (trial, max_pixels)
        clamped_somewhere |= region_token_count(mask, max_resize_pixels=200_000) != region_token_count(
            mask, max_resize_pixels=None
        )
    assert clamped_somewhere
    edge = np.zeros((40, 40), bool)
    edge[0, 0] = True  # the crop is empty upstream (end exclusive at the image edge): 0 tokens
    assert region_token_count(edge[:1, :]) == 0


def test_the_processor_max_pixels_reaches_the_count(checkout: tuple[Path, Path, Path]) -> None:
    root, good, _ = checkout
    adapter = adapter_for(root, good)
    model_module = sys.modules["crossviewer.model"]
    model_module.MAX_PIXELS = 40_000
    try:
        response = asyncio.run(adapter.generate(three_view_request()))
        assert response.details is not None
        assert response.details["region_token_counts"] == last_call()["model_token_counts"][0]
        calls = sys.modules["crossviewer.gpu_preprocess"].CALLS
        assert {c["max_resize_pixels"] for c in calls[-2:]} == {40_000}
    finally:
        model_module.MAX_PIXELS = None
    asyncio.run(adapter.aclose())


# ---------------------------------------------------------------------------------- ties and checkpoints


def test_a_tie_goes_to_the_first_letter_and_is_counted(checkout: tuple[Path, Path, Path]) -> None:
    root, good, _ = checkout
    adapter = adapter_for(root, good)
    request = three_view_request("TIE: is <region> the same as <region>?")
    response = asyncio.run(adapter.generate(request))
    assert response.option_scores is not None and response.option_scores["A"] == response.option_scores["B"] == 9.0
    assert response.text == "A" and response.details is not None and response.details["tie_rule"] == "first"
    parsed = score_response(response, request.prompt)
    assert (parsed.letter, parsed.status) == ("A", "logprob") and "tied option scores: A, B" in parsed.reason
    record = {
        "task": "t",
        "benchmark": "crossviewbench",
        "setting": "all",
        "cluster": "s",
        "slices": {},
        "n_options": 4,
        "correct": False,
        "parse_status": parsed.status,
        "parse_reason": parsed.reason,
        "usage": {},
        "latency_s": 0.0,
        "attempts": 1,
        "cached": False,
    }
    plain = {**record, "parse_reason": ""}
    assert metric([scored_record(record), scored_record(plain)], 0, "overall")["ties"] == 1
    asyncio.run(adapter.aclose())


def test_a_checkpoint_that_leaves_trained_parameters_out_is_refused(checkout: tuple[Path, Path, Path]) -> None:
    root, _, partial = checkout
    with pytest.raises(
        ModelResolutionError,
        match=r"does not cover the model: 1 trained parameter\(s\) missing, "
        r"e\.g\. answer_bias; pass allow_incomplete_checkpoint=true",
    ):
        adapter_for(root, partial)
    adapter = adapter_for(root, partial, allow_incomplete_checkpoint="true")
    report = adapter.settings()["checkpoint_load"]
    assert (report["missing_keys"], report["unexpected_keys"], report["missing_trainable"]) == (1, 1, 1)
    assert report["unexpected_examples"] == ["head.weight"] and adapter.settings()["allow_incomplete_checkpoint"]
    asyncio.run(adapter.aclose())
