"""CoLVA's inputs, checked against the documented interface (docs/formats.md §3.2)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cvbench.core.types import NativeRegions, NativeView, Option, Prompt, PromptImage, RegionRef
from cvbench.model_adapters.colva import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VPT_CONTEXT,
    build_colva_inputs,
    colva_question,
    dynamic_tiles,
    make_adapter,
    normalise,
    radio_canvas,
    radio_pixel_values,
    radio_size,
    tile_grid,
    tile_pixel_values,
    visual_prompt_stack,
)
from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError

# ---------------------------------------------------------------------------------- tiling


@pytest.mark.parametrize(
    ("size", "grid"),
    [
        ((448, 448), (1, 1)),
        ((896, 448), (2, 1)),
        ((448, 1344), (1, 3)),
        ((1000, 300), (3, 1)),  # aspect 3.33: 3x1 is closest
        ((1344, 896), (3, 2)),  # aspect 1.5 exactly
        ((4000, 100), (6, 1)),  # extreme aspect: the widest grid allowed by 6 tiles
        ((1000, 1000), (2, 2)),  # square tie 1x1 / 2x2: the image has over half of 2x2's pixels
        ((500, 500), (1, 1)),  # square tie, too few pixels for 2x2
    ],
)
def test_tile_grid_picks_the_closest_aspect_ratio(size: tuple[int, int], grid: tuple[int, int]) -> None:
    assert tile_grid(*size, max_tiles=6) == grid  # the training config's 6; 12 is the default


def test_tile_grid_respects_the_tile_budget() -> None:
    for w, h in [(3000, 500), (500, 3000), (1234, 987), (50, 40)]:
        cols, rows = tile_grid(w, h, max_tiles=6)
        assert 1 <= cols * rows <= 6
    assert tile_grid(3000, 500, max_tiles=12) == (6, 1)
    with pytest.raises(ValueError):
        tile_grid(0, 10)


def test_dynamic_tiles_cut_row_by_row_and_add_a_thumbnail() -> None:
    pixels = np.zeros((448 * 2, 448 * 3, 3), dtype=np.uint8)
    for r in range(2):
        for c in range(3):
            pixels[r * 448 : (r + 1) * 448, c * 448 : (c + 1) * 448] = 40 * (r * 3 + c) + 10
    tiles = dynamic_tiles(Image.fromarray(pixels))
    assert len(tiles) == 7 and all(t.size == (448, 448) for t in tiles)
    for k in range(6):  # the image is already 3x2 tiles: each tile is one flat colour, in row order
        assert np.asarray(tiles[k])[200, 200, 0] == 40 * k + 10
    assert np.asarray(tiles[6])[10, 10, 0] == 10  # thumbnail: the whole image, top-left is tile 0
    single = dynamic_tiles(Image.fromarray(np.zeros((300, 300, 3), np.uint8)))
    assert len(single) == 1  # one tile: no thumbnail


def test_normalisation_uses_imagenet_statistics() -> None:
    mean_pixel = np.round(np.asarray(IMAGENET_MEAN) * 255).astype(np.uint8)
    out = normalise(np.broadcast_to(mean_pixel, (2, 3, 3)).copy(), IMAGENET_MEAN, IMAGENET_STD)
    assert out.shape == (3, 2, 3) and out.dtype == np.float32
    assert np.abs(out).max() < 0.01
    white = normalise(np.full((1, 1, 3), 255, np.uint8), IMAGENET_MEAN, IMAGENET_STD)
    assert white[:, 0, 0] == pytest.approx([(1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)], rel=1e-5)
    assert tile_pixel_values(Image.fromarray(np.zeros((448, 896, 3), np.uint8))).shape == (3, 3, 448, 448)


# ---------------------------------------------------------------------------------- RADIO inputs


def test_radio_canvas_keeps_the_aspect_ratio_top_left_on_white() -> None:
    assert radio_size(1000, 2000) == (512, 1024)
    assert radio_size(900, 600) == (1024, 682)  # int(600 / 900 * 1024) = 682
    canvas = radio_canvas(np.zeros((1000, 2000, 3), np.uint8))
    assert canvas.shape == (1024, 1024, 3) and canvas.dtype == np.uint8
    assert (canvas[:512] == 0).all() and (canvas[512:] == 255).all()
    values = radio_pixel_values(np.zeros((900, 600, 3), np.uint8))
    assert values.shape == (3, 1024, 1024) and values.dtype == np.float32
    assert values[:, :, :682].max() == 0.0 and values[:, :, 682:].min() == 1.0  # scaled to [0, 1] only
    clip = radio_pixel_values(np.zeros((900, 600, 3), np.uint8), normalize="clip")
    assert clip[0, 0, 0] == pytest.approx(-0.48145466 / 0.26862954, rel=1e-5)
    with pytest.raises(ValueError, match="ot_normalize"):
        radio_pixel_values(np.zeros((4, 4, 3), np.uint8), normalize="imagenet")


def test_visual_prompts_use_the_same_geometry_as_the_image() -> None:
    full = np.ones((100, 200), bool)  # the whole (wide) image
    left = np.zeros((100, 200), bool)
    left[:, :100] = True
    stack = visual_prompt_stack([full, left])
    assert stack.shape == (2, 1024, 1024) and stack.dtype == np.float32
    # padded to 200x200 at the bottom, then resized: the image occupies the top 512 rows on the canvas
    # (bilinear: a few rows/columns around 512 blend the edge)
    assert stack[0, :505].min() == 1.0 and stack[0, 515:].max() == 0.0 and 0 < stack[0, 510, 0] < 1
    assert stack[1, :505, :505].min() == 1.0 and stack[1, :, 515:].max() == 0.0
    image_rows = (radio_canvas(np.zeros((100, 200, 3), np.uint8))[:, 0, 0] == 0).sum()
    assert image_rows == 512
    with pytest.raises(ValueError):
        visual_prompt_stack([])


# ---------------------------------------------------------------------------------- prompt


def test_colva_question_prefix() -> None:
    text = colva_question(1, ["1", "2", "3"], "Which one?\nA. 1\n")
    assert text == (
        "Image-1: <image>\nImage-2: <image>\n"
        f"Objects in Image-1: <query object>{VPT_CONTEXT}\n"
        f"Objects in Image-2: <object-1>{VPT_CONTEXT}, <object-2>{VPT_CONTEXT}, <object-3>{VPT_CONTEXT}.\n"
        "Which one?\nA. 1\n"
    )
    two_queries = colva_question(2, ["1"], "Q")
    assert two_queries.startswith(
        "Image-1: <image>\nImage-2: <image>\nImage-3: <image>\n"
        f"Objects in Image-1: <query object>{VPT_CONTEXT}\n"
        f"Objects in Image-2: <query object>{VPT_CONTEXT}\n"
        f"Objects in Image-3: <object-1>{VPT_CONTEXT}.\n"
    )


def png(pixels: np.ndarray, label: str) -> PromptImage:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return PromptImage(buffer.getvalue(), "image/png", pixels.shape[1], pixels.shape[0], label)


def mmvm_prompt(n_candidates: int, with_overlays: bool = True) -> Prompt:
    h, w = 60, 90
    query_mask = np.zeros((h, w), bool)
    query_mask[5:15, 5:15] = True
    # candidate k (in selection order) occupies column band k; its drawn id is a shuffle
    ids = [str(i) for i in np.random.default_rng(1).permutation(np.arange(1, n_candidates + 1))]
    masks = []
    for k in range(n_candidates):
        m = np.zeros((h, w), bool)
        m[:, k * 2 : k * 2 + 2] = True
        masks.append(m)
    order = tuple(sorted(range(n_candidates), key=lambda j: int(ids[j])))
    native = NativeRegions(
        views=(
            NativeView("q", np.full((h, w, 3), 30, np.uint8), (query_mask,), ("0",)),
            NativeView("c", np.full((h, w, 3), 60, np.uint8), tuple(masks), tuple(ids)),
        ),
        refs=(),
        query=RegionRef(0, 0),
        candidate_order=order,
    )
    shown = sorted(ids, key=int)[:25]
    options = tuple(Option(chr(65 + k), i) for k, i in enumerate(shown))
    options += (Option(chr(65 + len(shown)), "None of the above choices are correct"),)
    text = "Here are two images...\n" + "".join(o.line + "\n" for o in options)
    images = (
        (png(np.full((h, w, 3), 200, np.uint8), "Image 1"), png(np.full((900, 1400, 3), 100, np.uint8), "Image 2"))
        if with_overlays
        else ()
    )
    return Prompt(sample_id="case_1", text=text, images=images, options=options, mode="native", native=native)


def test_inputs_pass_candidate_masks_in_ascending_id_order() -> None:
    prompt = mmvm_prompt(5)
    inputs = build_colva_inputs(prompt)
    cand = prompt.native.views[1]
    assert inputs["candidate_ids"] == ["1", "2", "3", "4", "5"]
    prompts = inputs["ot_visual_prompts"]
    assert [p.shape for p in prompts] == [(1, 1024, 1024), (5, 1024, 1024)]
    for k, region_index in enumerate(prompt.native.candidate_order):
        assert cand.region_ids[region_index] == str(k + 1)
        assert np.array_equal(prompts[1][k], visual_prompt_stack([cand.masks[region_index]])[0])
    assert np.array_equal(prompts[0][0], visual_prompt_stack([prompt.native.views[0].masks[0]])[0])
    assert inputs["question"].startswith("Image-1: <image>\nImage-2: <image>\nObjects in Image-1: <query object>")
    assert (
        ", ".join(f"<object-{i}>{VPT_CONTEXT}" for i in range(1, 6)) + ".\nHere are two images..." in inputs["question"]
    )
    assert inputs["question"].endswith(prompt.text)


def test_overlays_are_tiled_and_originals_go_to_the_expert() -> None:
    inputs = build_colva_inputs(mmvm_prompt(3))
    # query overlay 90x60: aspect 1.5 -> 3x2 tiles + thumbnail; candidate overlay 1400x900: aspect 1.56 -> 3x2 too
    assert tile_grid(90, 60) == (3, 2) and tile_grid(1400, 900) == (3, 2)
    assert inputs["num_patches_list"] == [7, 7]
    assert inputs["pixel_values"].shape == (sum(inputs["num_patches_list"]), 3, 448, 448)
    ot = inputs["ot_pixel_values"]
    assert ot.shape == (2, 3, 1024, 1024)
    assert ot[0, 0, 0, 0] == pytest.approx(30 / 255) and ot[1, 0, 0, 0] == pytest.approx(60 / 255)


def test_more_than_25_candidates_all_stay_in_the_object_list() -> None:
    prompt = mmvm_prompt(30)
    assert len(prompt.options) == 26  # 25 ids + "None of the above"
    inputs = build_colva_inputs(prompt)
    assert inputs["candidate_ids"] == [str(i) for i in range(1, 31)]
    assert inputs["ot_visual_prompts"][1].shape[0] == 30
    assert f"<object-30>{VPT_CONTEXT}.\n" in inputs["question"]


def test_missing_overlays_or_native_regions_are_errors() -> None:
    with pytest.raises(ValueError, match="one overlay image per view"):
        build_colva_inputs(mmvm_prompt(3, with_overlays=False))
    no_native = Prompt(sample_id="x", text="q", images=(), options=(), mode="overlay")
    with pytest.raises(ValueError, match="native-mode prompt"):
        build_colva_inputs(no_native)


def test_adapter_option_errors() -> None:
    with pytest.raises(ModelResolutionError, match="checkpoint"):
        make_adapter("zhouyik/colva_internvl2_4b", ModelOptions(extra={"checkpoint": "other/repo"}))
    with pytest.raises(ModelResolutionError, match="unknown model option"):
        make_adapter("", ModelOptions(extra={"tiles": 6}))
