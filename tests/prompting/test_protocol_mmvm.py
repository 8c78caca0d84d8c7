from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from cvbench.core.types import ImageRef, Option
from cvbench.imaging import render as R
from cvbench.imaging.images import load_image
from cvbench.imaging.masks import decode_region
from cvbench.prompting.encoding import ImagePolicy
from cvbench.prompting.protocols import ProtocolError
from cvbench.prompting.protocols import mmvm as P
from tests.prompting.test_protocol_data import (
    ellipse_mask,
    grid_masks,
    make_mmvm_sample,
    textured_image,
)

BUILD = {"style": "contour", "alpha": 0.4, "thickness": 2, "policy": ImagePolicy(), "seed": 0}


# ------------------------------------------------------------------------------ text


def test_question_body_is_upstream_verbatim():
    assert P.MMVM_QUESTION_BODY == (
        "Here are two images. In the second image, I have marked several visual objects with their contours in "
        "different colors, and each is identified by a white numeric ID against a background that matches the "
        "contour's color. Could you please tell me which of these marked objects is the same as the object marked "
        "with a cyan contour in the first image? Please make a choice from the following options: "
    )
    assert P.NONE_OF_THE_ABOVE == "None of the above choices are correct"
    assert P.MAX_ID_OPTIONS == 25 and P.QUERY_CYAN == (0, 255, 255)


def test_options_are_ids_ascending_numerically_then_none():
    opts = P.mmvm_options(["10", "2", 9, "1"])
    assert [o.line for o in opts] == ["A. 1", "B. 2", "C. 9", "D. 10", "E. None of the above choices are correct"]


def test_options_stop_at_25_ids():
    opts = P.mmvm_options(range(1, 38))
    assert len(opts) == 26
    assert [o.text for o in opts[:25]] == [str(i) for i in range(1, 26)]
    assert opts[25] == Option("Z", P.NONE_OF_THE_ABOVE)


def test_question_is_body_then_option_lines():
    text = P.mmvm_question(P.mmvm_options([3, 1]))
    assert text == P.MMVM_QUESTION_BODY + "\nA. 1\nB. 3\nC. None of the above choices are correct\n"


@pytest.mark.parametrize("style, word", [("mask", "mask"), ("box", "box"), ("marks", "in cyan")])
def test_other_styles_name_their_marks(style, word):
    text = P.mmvm_question(P.mmvm_options([1]), style)
    assert "contour" not in text and word in text
    assert text.endswith("\nA. 1\nB. None of the above choices are correct\n")


# ------------------------------------------------------------------------------ rendering


def test_query_view_is_a_cyan_contour_on_the_boundary_only():
    hw = (360, 480)
    img = textured_image(*hw, seed=3)
    mask = ellipse_mask(hw, (240, 180), (90, 60))
    out = P.render_query_view(img, mask)
    changed = (out != img).any(axis=2)
    assert (out[changed] == P.QUERY_CYAN).all()
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    outer = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert not (changed & inner).any() and not (changed & ~outer).any()
    assert changed.sum() > 300


def test_query_contour_is_thicker_on_big_images():
    small = P.render_query_view(np.zeros((300, 400, 3), np.uint8), ellipse_mask((300, 400), (200, 150), (80, 60)))
    big = P.render_query_view(np.zeros((1080, 1920, 3), np.uint8), ellipse_mask((1080, 1920), (960, 540), (384, 216)))
    # ring width ~ painted area / perimeter; OpenCV draws thickness t about t + 1 px wide
    width_small = (small == P.QUERY_CYAN).all(axis=2).sum() / (2 * np.pi * 70.7)
    width_big = (big == P.QUERY_CYAN).all(axis=2).sum() / (2 * np.pi * 306)
    assert 2.0 < width_small < 3.6 and width_big > width_small + 1.0


def test_candidate_view_draws_each_candidate_in_its_own_colour_with_its_id():
    hw = (480, 640)
    img = np.full((*hw, 3), 90, np.uint8)
    masks = grid_masks(hw, 9, seed=1)
    rng = np.random.default_rng(4)
    colours = P.candidate_colours(9, np.random.default_rng(4))
    out = P.render_candidate_view(img, masks, [str(i) for i in range(1, 10)], rng)
    assert len({c.rgb for c in colours}) == 9 and set(colours) == set(R.palette(9))
    font = R.tag_font(hw)
    boxes = R.place_tags(masks, [font.box_size(str(i)) for i in range(1, 10)], hw)
    for mask, colour, box in zip(masks, colours, boxes):
        ring = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~cv2.erode(
            mask.astype(np.uint8), np.ones((5, 5), np.uint8)
        ).astype(bool)
        assert (out[ring] == colour.rgb).all(axis=1).mean() > 0.3
        crop = out[box[1] : box[3], box[0] : box[2]]
        assert (crop == colour.rgb).all(axis=2).mean() > 0.3  # the tag box has the contour's colour
        assert (crop == (255, 255, 255)).all(axis=2).sum() > 5  # white digits
        assert mask[(box[1] + box[3]) // 2, (box[0] + box[2]) // 2]


def test_candidate_colours_depend_only_on_the_rng():
    a = P.candidate_colours(12, np.random.default_rng(1))
    assert a == P.candidate_colours(12, np.random.default_rng(1))
    assert a != P.candidate_colours(12, np.random.default_rng(2))


# ------------------------------------------------------------------------------ candidate settings


def _shown_gt(sel: P.CandidateSelection, sample) -> str:
    return sel.ids[sel.indices.index([r.region_id for r in sample.views[1].regions].index(sample.answer_region_id))]


@pytest.mark.parametrize("k", [4, 8, 12])
def test_subset_keeps_the_ground_truth_and_renumbers(tmp_path: Path, k: int):
    for seed in range(6):
        sample = make_mmvm_sample(tmp_path, n=20, gt=seed % 20, sample_id=f"case_{seed}", prerendered=False)
        sel = P.select_candidates(sample, str(k), seed=seed)
        assert sel.subset and sel.total == 20
        assert len(sel.indices) == k == len(set(sel.indices))
        gt_index = [r.region_id for r in sample.views[1].regions].index(sample.answer_region_id)
        assert gt_index in sel.indices
        assert sorted(int(i) for i in sel.ids) == list(range(1, k + 1))
        assert [o.text for o in sel.options] == [str(i) for i in range(1, k + 1)] + [P.NONE_OF_THE_ABOVE]
        answer = next(o for o in sel.options if o.letter == sel.answer)
        assert answer.text == _shown_gt(sel, sample)


def test_subset_is_deterministic_and_depends_on_seed_and_sample(tmp_path: Path):
    sample = make_mmvm_sample(tmp_path, n=30, gt=7, prerendered=False)
    a = P.select_candidates(sample, "8", seed=0)
    assert a == P.select_candidates(sample, "8", seed=0)
    others = {P.select_candidates(sample, "8", seed=s).indices for s in range(1, 6)}
    assert len(others | {a.indices}) > 1
    renamed = dataclasses.replace(sample, sample_id="case_other")
    assert (
        P.select_candidates(renamed, "8", seed=0).indices != a.indices
        or P.select_candidates(renamed, "8", seed=0).ids != a.ids
    )


def test_questions_with_at_most_k_candidates_are_unchanged(tmp_path: Path):
    sample = make_mmvm_sample(tmp_path, n=4, gt=1, prerendered=False)
    for setting in ("4", "8", "12", "all"):
        sel = P.select_candidates(sample, setting, seed=3)
        assert not sel.subset
        assert sel.options == sample.options and sel.answer == sample.answer
        assert sel.ids == tuple(r.region_id for r in sample.views[1].regions)


def test_none_of_the_above_stays_none_and_draws_only_listed_candidates(tmp_path: Path):
    sample = make_mmvm_sample(tmp_path, n=30, gt=None, prerendered=False)
    assert sample.answer == "Z"  # 25 ids listed, then None
    listed = {o.text for o in sample.options}
    for k in (4, 8, 12):
        sel = P.select_candidates(sample, str(k), seed=1)
        assert sel.options[-1].text == P.NONE_OF_THE_ABOVE and sel.answer == sel.options[-1].letter
        assert all(sample.views[1].regions[i].region_id in listed for i in sel.indices)


def test_answer_id_missing_from_candidates_is_an_error(tmp_path: Path):
    sample = make_mmvm_sample(tmp_path, n=5, gt=0, prerendered=False)
    broken = dataclasses.replace(
        sample,
        views=(
            sample.views[0],
            dataclasses.replace(
                sample.views[1],
                regions=tuple(r for r in sample.views[1].regions if r.region_id != sample.answer_region_id),
            ),
        ),
    )
    with pytest.raises(ProtocolError, match="not among the candidate ids"):
        P.select_candidates(broken, "4", seed=0)


@pytest.mark.parametrize("setting", ["3x", "0", "", "ALL"])
def test_bad_settings_are_errors(tmp_path: Path, setting: str):
    with pytest.raises(ProtocolError, match="setting"):
        P.select_candidates(make_mmvm_sample(tmp_path, prerendered=False), setting, seed=0)


# ------------------------------------------------------------------------------ build


def test_overlay_rerenders_only_the_kept_candidates(tmp_path: Path):
    sample = make_mmvm_sample(tmp_path, n=14, gt=3)
    out = P.build_mmvm(sample, mode="overlay", setting="4", **BUILD)
    assert len(out.views) == 2 and out.view_labels == ("Image 1", "Image 2")
    rec = out.record
    assert rec["protocol"] == "mmvm/1" and rec["subset_applied"] and rec["candidates_total"] == 14
    assert rec["ids_shown"] == ["1", "2", "3", "4"] and len(rec["colours"]) == 4
    assert rec["cues"] == ["CL", "RP"] and rec["query_colour"]["rgb"] == [0, 255, 255]
    gt_region = sample.answer_region_id
    shown = next(o.text for o in out.options if o.letter == out.answer)
    assert rec["id_map"][shown] == gt_region
    cand = out.views[1]
    original = load_image(sample.views[1].image)
    # candidates that were dropped are not drawn at all
    dropped = [r for r in sample.views[1].regions if r.region_id not in rec["candidates_kept"]]
    assert len(dropped) == 10
    for r in dropped:
        m = decode_region(r, original.shape[:2]).mask
        core = cv2.erode(m.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        ring = cv2.dilate(m.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~core
        assert (cand[ring] == original[ring]).all()
    assert out.text == P.mmvm_question(out.options)


def test_overlay_all_keeps_published_ids_options_and_answer(tmp_path: Path):
    sample = make_mmvm_sample(tmp_path, n=6, gt=2)
    out = P.build_mmvm(sample, mode="overlay", setting="all", **BUILD)
    assert out.options == sample.options and out.answer == sample.answer
    assert out.record["id_map"] == {r.region_id: r.region_id for r in sample.views[1].regions}


def test_prerendered_passes_the_shipped_files_and_question_through(tmp_path: Path):
    sample = make_mmvm_sample(tmp_path, n=6, gt=2)
    out = P.build_mmvm(sample, mode="prerendered", setting="all", **BUILD)
    assert out.text == sample.prerendered_question
    assert [v.data for v in out.views] == [Path(v.prerendered.path).read_bytes() for v in sample.views]
    assert out.options == sample.options and out.answer == sample.answer


def test_prerendered_with_a_subset_is_an_error(tmp_path: Path):
    sample = make_mmvm_sample(tmp_path, n=6, gt=2)
    with pytest.raises(ProtocolError, match="prerendered mode can only show"):
        P.build_mmvm(sample, mode="prerendered", setting="4", **BUILD)
    assert P.build_mmvm(sample, mode="prerendered", setting="8", **BUILD).text == sample.prerendered_question


def test_native_gives_original_images_masks_and_ascending_candidate_order(tmp_path: Path):
    sample = make_mmvm_sample(tmp_path, n=9, gt=4)
    out = P.build_mmvm(sample, mode="native", setting="all", **BUILD)
    native = out.native
    assert native is not None and native.query is not None
    assert (native.query.view_index, native.query.region_index) == (0, 0)
    cand = native.views[1]
    assert (cand.image == load_image(sample.views[1].image)).all()
    assert len(cand.masks) == 9 and all(m.dtype == bool and m.shape == cand.image.shape[:2] for m in cand.masks)
    ordered_ids = [int(cand.region_ids[i]) for i in native.candidate_order]
    assert ordered_ids == sorted(ordered_ids) == list(range(1, 10))
    # the images shown alongside carry the MMVM marks the question talks about
    assert (out.views[0] == P.QUERY_CYAN).all(axis=2).sum() > 100


def test_native_subset_keeps_only_kept_masks_with_new_ids(tmp_path: Path):
    sample = make_mmvm_sample(tmp_path, n=12, gt=4)
    out = P.build_mmvm(sample, mode="native", setting="4", **BUILD)
    cand = out.native.views[1]
    assert len(cand.masks) == 4 and sorted(cand.region_ids) == ["1", "2", "3", "4"]
    assert [cand.region_ids[i] for i in out.native.candidate_order] == ["1", "2", "3", "4"]


def test_missing_image_is_a_protocol_error_naming_the_sample(tmp_path: Path):
    sample = make_mmvm_sample(tmp_path, n=4, gt=0, prerendered=False)
    gone = dataclasses.replace(sample.views[1], image=ImageRef(tmp_path / "nope.jpg"))
    with pytest.raises(ProtocolError, match=r"case_001.*nope\.jpg"):
        P.build_mmvm(dataclasses.replace(sample, views=(sample.views[0], gone)), mode="overlay", **BUILD)


def test_build_is_deterministic(tmp_path: Path):
    sample = make_mmvm_sample(tmp_path, n=16, gt=5)
    a = P.build_mmvm(sample, mode="overlay", setting="8", **BUILD)
    b = P.build_mmvm(sample, mode="overlay", setting="8", **BUILD)
    assert all((x == y).all() for x, y in zip(a.views, b.views)) and a.record == b.record
