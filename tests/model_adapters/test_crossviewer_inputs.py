"""CrossViewer's per-sample input, checked against the documented interface (docs/formats.md §3.1)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cvbench.core.types import (
    GenerationConfig,
    NativeRegions,
    NativeView,
    Option,
    Prompt,
    RegionRef,
    Request,
)
from cvbench.model_adapters.crossviewer import (
    REGION_TOKEN,
    build_crossviewer_batch,
    expand_region_placeholders,
    make_adapter,
    question_of,
    region_token_count,
    region_tokens,
    view_mask_stack,
)
from cvbench.model_adapters.local_common import EXTENDED_LETTER_FORMS, letter_spellings, letter_token_ids
from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError


def box_mask(h: int, w: int, top: int, left: int, bottom: int, right: int) -> np.ndarray:
    mask = np.zeros((h, w), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def image(h: int, w: int, value: int = 0) -> np.ndarray:
    return np.full((h, w, 3), value, dtype=np.uint8)


OPTIONS = (Option("A", "yes"), Option("B", "no"))


def native_sample(token_counts: tuple[int, ...] | None = None) -> NativeRegions:
    view0 = NativeView(
        "cam0",
        image(60, 80, 10),
        (box_mask(60, 80, 5, 5, 20, 30), box_mask(60, 80, 30, 40, 50, 70), box_mask(60, 80, 0, 0, 3, 3)),
        ("7", "8", "9"),
    )
    view1 = NativeView("cam1", image(40, 50, 20), (box_mask(40, 50, 10, 10, 30, 30),), ("7",))
    return NativeRegions(views=(view0, view1), refs=(RegionRef(0, 1), RegionRef(1, 0)), token_counts=token_counts)


# ---------------------------------------------------------------------------------- masks


def test_view_mask_stack_pads_with_zeros_and_puts_the_global_mask_last() -> None:
    m = box_mask(6, 5, 1, 1, 3, 4)
    stack = view_mask_stack([m], 6, 5, pad_to=3)
    assert stack.shape == (4, 6, 5) and stack.dtype == np.float32
    assert np.array_equal(stack[0], m.astype(np.float32))
    assert not stack[1].any() and not stack[2].any()
    assert (stack[3] == 1.0).all()
    with pytest.raises(ValueError, match="shape"):
        view_mask_stack([np.zeros((5, 5), bool)], 6, 5, pad_to=1)
    with pytest.raises(ValueError, match="more than the padding target"):
        view_mask_stack([m, m], 6, 5, pad_to=1)


def test_batch_pads_every_view_to_the_largest_object_count_of_the_sample() -> None:
    native = native_sample()
    batch = build_crossviewer_batch(native, "Is <region> the same object as <region>?", OPTIONS)
    masks = batch["masks"]
    assert [m.shape for m in masks] == [(4, 60, 80), (4, 40, 50)]  # K = 3 (largest view) + 1 global
    assert all(m.dtype == np.float32 for m in masks)
    for view, stack in zip(native.views, masks):
        for k, mask in enumerate(view.masks):
            assert np.array_equal(stack[k], mask.astype(np.float32))
        assert not stack[len(view.masks) : -1].any()  # zero padding
        assert (stack[-1] == 1.0).all()  # global mask last
    assert [im.shape for im in batch["images"]] == [(60, 80, 3), (40, 50, 3)]
    assert batch["images"][1][0, 0, 0] == 20  # the original image, untouched
    assert batch["region_refs"] == [(0, 1), (1, 0)]
    assert batch["letters"] == ["A", "B"]


def test_a_sample_without_objects_gets_only_the_global_mask() -> None:
    native = NativeRegions(views=(NativeView("a", image(8, 9), (), ()), NativeView("b", image(5, 7), (), ())), refs=())
    batch = build_crossviewer_batch(native, "Do the views overlap?", OPTIONS)
    assert [m.shape for m in batch["masks"]] == [(1, 8, 9), (1, 5, 7)]
    assert all((m == 1.0).all() for m in batch["masks"])
    assert batch["question"] == "Do the views overlap?\n\nA. yes\nB. no"


# ---------------------------------------------------------------------------------- text


def test_placeholders_expand_with_computed_counts_and_options_follow_a_blank_line() -> None:
    native = native_sample()
    batch = build_crossviewer_batch(native, "Is <region> the same object as <region>?", OPTIONS)
    counts = batch["region_token_counts"]
    assert counts == [region_token_count(native.views[0].masks[1]), region_token_count(native.views[1].masks[0])]
    assert batch["question"] == (
        "Is [" + REGION_TOKEN * counts[0] + "] the same object as [" + REGION_TOKEN * counts[1] + "]?\n\nA. yes\nB. no"
    )
    assert "<region>" not in batch["question"]


def test_given_token_counts_win_over_computed_ones() -> None:
    batch = build_crossviewer_batch(native_sample(token_counts=(3, 0)), "Is <region> the same as <region>?", OPTIONS)
    assert batch["region_token_counts"] == [3, 0]
    assert batch["question"].startswith("Is [<REGION><REGION><REGION>] the same as []?")
    override = build_crossviewer_batch(
        native_sample(token_counts=(3, 0)), "Is <region> the same as <region>?", OPTIONS, token_counts=(1, 2)
    )
    assert override["region_token_counts"] == [1, 2]


def test_placeholder_and_ref_mismatches_are_errors() -> None:
    with pytest.raises(ValueError, match="1 <region> placeholder"):
        build_crossviewer_batch(native_sample(), "Is <region> visible?", OPTIONS)
    with pytest.raises(ValueError, match="token counts for 2 region refs"):
        build_crossviewer_batch(native_sample(token_counts=(1,)), "<region> <region>", OPTIONS)
    bad = NativeRegions(views=native_sample().views, refs=(RegionRef(1, 5),))
    with pytest.raises(ValueError, match="names object 5"):
        build_crossviewer_batch(bad, "<region>", OPTIONS)
    with pytest.raises(ValueError, match="at least 2 views"):
        build_crossviewer_batch(NativeRegions(views=native_sample().views[:1], refs=()), "q", OPTIONS)


def test_expand_region_placeholders_and_region_tokens() -> None:
    assert expand_region_placeholders("a <region> b <region>", [2, 1]) == "a [<REGION><REGION>] b [<REGION>]"
    assert region_tokens(0) == "[]"
    with pytest.raises(ValueError):
        region_tokens(-1)


def test_question_of_strips_the_trailing_option_lines() -> None:
    prompt = Prompt(
        sample_id="s",
        text="Is <region> left of <region>?\n\nA. yes\nB. no",
        images=(),
        options=OPTIONS,
        mode="native",
    )
    assert question_of(Request("crossviewer", prompt, GenerationConfig())) == "Is <region> left of <region>?"
    odd = Prompt(sample_id="s", text="A. yes\nB. no\nIs <region> left?", images=(), options=OPTIONS, mode="native")
    with pytest.raises(ValueError, match="does not end with its option lines"):
        question_of(Request("crossviewer", odd, GenerationConfig()))


# ---------------------------------------------------------------------------------- token counts


def test_region_token_count_of_an_empty_mask_is_zero() -> None:
    assert region_token_count(np.zeros((50, 50), bool)) == 0


def test_region_token_count_for_a_small_square_is_worked_out_by_hand() -> None:
    # a 14x14 square far from the borders: area 196 -> scale ceil(sqrt(196*32/196)) = 6;
    # crop = box grown by 28 px each side, end exclusive: 69 x 69 -> grid ceil(69*6/14) = 30 per side;
    # the square covers 14/69 of each side -> about (30*14/69)^2 = 37 cells -> capped at 32
    mask = box_mask(200, 200, 90, 90, 104, 104)
    assert region_token_count(mask) == 32
    # the scale is chosen so the object fills the cap: a smaller cap is reached as well
    assert region_token_count(mask, max_tokens=10) == 10


def test_region_token_count_below_the_cap_for_a_thin_object() -> None:
    # a 1 x 200 px line: area 200 -> scale ceil(sqrt(196*32/200)) = 6; crop 56 x 255 -> grid 24 x 110;
    # rows are sampled every 14/6 px, so the line gets weight 0.25 in one grid row:
    # about 0.25 * 110 * 200/255 = 21.6 plus the column rounding -> well below the cap
    line = box_mask(300, 400, 145, 50, 146, 250)
    assert region_token_count(line) == 28


def test_region_token_count_never_exceeds_the_cap_and_grows_with_the_cap() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        h, w = rng.integers(20, 300, size=2)
        top, left = rng.integers(0, h - 5), rng.integers(0, w - 5)
        mask = box_mask(
            int(h),
            int(w),
            int(top),
            int(left),
            int(top + rng.integers(1, h - top)),
            int(left + rng.integers(1, w - left)),
        )
        small = region_token_count(mask, max_tokens=8)
        assert 0 < small <= 8
        assert region_token_count(mask, max_tokens=32) >= small


def test_region_token_count_matches_a_torch_bilinear_reference() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    counts = []
    for trial in range(16):
        h, w = (int(x) for x in rng.integers(40, 400, size=2))
        top, left = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
        if trial % 2:
            mask = rng.random((h, w)) > 0.999  # scattered pixels -> a large, sparse crop
            mask[top : top + 9, left : left + 17] = True
        else:  # thin lines: the coarse grid catches only part of them
            mask = np.zeros((h, w), bool)
            mask[top, left:] = True
            mask[top:, left] = True
        rows, cols = np.nonzero(mask)
        area = rows.size
        crop = mask[
            max(0, rows.min() - 28) : min(h - 1, rows.max() + 28), max(0, cols.min() - 28) : min(w - 1, cols.max() + 28)
        ].astype(np.float32)
        scale = math.ceil(math.sqrt(196 * 32 / area))
        if scale == 1 and area / 196 > 100:
            scale = 1 / math.sqrt(area / 196 / 100)
        gh = max(14, math.ceil(crop.shape[0] * scale / 14) * 14) // 14
        gw = max(14, math.ceil(crop.shape[1] * scale / 14) * 14) // 14
        grid = torch.nn.functional.interpolate(
            torch.from_numpy(crop)[None, None], size=(gh, gw), mode="bilinear", align_corners=False
        )[0, 0]
        counts.append(region_token_count(mask, max_resize_pixels=None))  # the clamp: test_crossviewer_conformance
        assert counts[-1] == min(32, int(grid.sum().item()))
    assert min(counts) < 32  # the uncapped path was exercised


# ---------------------------------------------------------------------------------- letters and options


def test_extended_letter_spellings_are_the_documented_ones() -> None:
    assert letter_spellings("A", EXTENDED_LETTER_FORMS) == [" A", "A", "A.", " A.", "A)", " A)", "A、", " A、"]
    vocab = {"A": 1, " A": 2, "A.": 3, "B": 4, " B": 5, "B)": 6}

    def encode(text: str) -> list[int]:  # a tokenizer where only some spellings are single tokens
        return [vocab[text]] if text in vocab else [9, 9]

    assert letter_token_ids(encode, ["A", "B"], EXTENDED_LETTER_FORMS) == {"A": [2, 1, 3], "B": [5, 4, 6]}
    with pytest.raises(ValueError, match="C"):
        letter_token_ids(encode, ["C"], EXTENDED_LETTER_FORMS)


def test_adapter_requires_its_code_folder_and_checkpoint(tmp_path) -> None:
    with pytest.raises(ModelResolutionError, match="repo_path"):
        make_adapter("", ModelOptions())
    checkpoint = tmp_path / "model.pth"
    checkpoint.write_bytes(b"")
    with pytest.raises(ModelResolutionError, match="crossviewer/model.py not found"):
        make_adapter("", ModelOptions(extra={"repo_path": str(tmp_path), "checkpoint": str(checkpoint)}))
    with pytest.raises(ModelResolutionError, match="unknown model option"):
        make_adapter("", ModelOptions(extra={"repo": str(tmp_path)}))
    with pytest.raises(ModelResolutionError, match="base model"):
        make_adapter("Qwen/Qwen3-VL-2B-Instruct", ModelOptions(extra={"base_model": "Qwen/Qwen3-VL-8B-Instruct"}))
