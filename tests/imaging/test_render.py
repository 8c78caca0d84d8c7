from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from cvbench.imaging import render as R
from tests.prompting.test_protocol_data import ellipse_mask, grid_masks, textured_image

WHITE_LAB = R.srgb_to_lab([255, 255, 255])
CYAN_LAB = R.srgb_to_lab(R.QUERY_CYAN)


# ------------------------------------------------------------------------------ colour science


@pytest.mark.parametrize(
    "lab1, lab2, expected",
    [
        # Sharma, Wu & Dalal (2005) CIEDE2000 test data, pairs 1, 7, 17 and 25
        ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
        ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
        ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
        ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ],
)
def test_ciede2000_matches_published_test_pairs(lab1, lab2, expected):
    assert R.ciede2000(np.array(lab1), np.array(lab2)) == pytest.approx(expected, abs=1e-4)


def test_srgb_to_lab_of_white_and_black():
    assert R.srgb_to_lab([255, 255, 255]) == pytest.approx([100.0, 0.0, 0.0], abs=0.01)
    assert R.srgb_to_lab([0, 0, 0]) == pytest.approx([0.0, 0.0, 0.0], abs=0.01)


# ------------------------------------------------------------------------------ palette


def _min_pairwise(colours) -> float:
    lab = R.srgb_to_lab(np.array([c.rgb for c in colours]))
    d = R.ciede2000(lab[:, None], lab[None])
    np.fill_diagonal(d, np.inf)
    return float(d.min())


def test_named_palette_is_pairwise_distinct_with_unique_plain_names():
    names = [c.name for c in R.NAMED_PALETTE]
    assert len(names) == len(set(names)) >= 8
    assert all(n is not None and n.isalpha() and n.islower() for n in names)
    assert names[:4] == ["red", "blue", "green", "yellow"]
    assert _min_pairwise(R.NAMED_PALETTE) >= 14.0


def test_37_candidate_colours_are_pairwise_distinct():
    colours = R.palette(37)
    assert len({c.rgb for c in colours}) == 37
    assert _min_pairwise(colours) >= 13.0
    assert _min_pairwise(R.PALETTE) >= 13.0


def test_no_palette_colour_is_near_white_or_near_the_query_cyan():
    lab = R.srgb_to_lab(np.array([c.rgb for c in R.PALETTE]))
    assert R.ciede2000(lab, WHITE_LAB).min() > 25.0
    assert R.ciede2000(lab, CYAN_LAB).min() > 35.0
    assert R.QUERY_CYAN == (0, 255, 255)


def test_palette_prefix_is_stable():
    assert R.palette(3) == R.PALETTE[:3]
    assert R.palette(0) == ()


# ------------------------------------------------------------------------------ primitives


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Mask pixels with a 4-neighbour outside the mask."""
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    inner = cv2.erode(mask.astype(np.uint8), cross, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return mask & ~inner.astype(bool)


def _near(region: np.ndarray, radius: int) -> np.ndarray:
    k = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(region.astype(np.uint8), k).astype(bool)


@pytest.mark.parametrize("thickness", [1, 2, 4])
def test_contour_pixels_lie_on_the_mask_boundary(thickness):
    hw = (200, 260)
    img = textured_image(*hw, seed=1)
    mask = ellipse_mask(hw, (120, 90), (70, 45), 20) | ellipse_mask(hw, (220, 170), (20, 15))
    out = R.draw_contour(img, mask, (230, 0, 0), thickness)
    changed = (out != img).any(axis=2)
    boundary = _boundary(mask)
    assert changed.any()
    assert not (changed & ~_near(boundary, thickness)).any(), "contour drawn away from the mask boundary"
    assert (out[changed] == (230, 0, 0)).all()
    painted = (out == (230, 0, 0)).all(axis=2)
    assert painted[boundary].mean() > 0.99, "the boundary is not covered"


def test_primitives_do_not_modify_their_input():
    img = textured_image(50, 60, seed=2)
    before = img.copy()
    mask = ellipse_mask((50, 60), (30, 25), (10, 8))
    R.draw_contour(img, mask, (1, 2, 3), 2)
    R.draw_fill(img, mask, (1, 2, 3), 0.5)
    R.draw_box(img, mask, (1, 2, 3), 2)
    R.draw_regions(img, [mask], [(1, 2, 3)], "marks", alpha=0.4, thickness=2, tags=["1"])
    assert (img == before).all()


def test_fill_blends_inside_and_leaves_outside_alone():
    img = textured_image(80, 90, seed=3)
    mask = ellipse_mask((80, 90), (45, 40), (25, 20))
    out = R.draw_fill(img, mask, (0, 90, 255), 0.4)
    assert (out[~mask] == img[~mask]).all()
    expected = np.rint(img[mask].astype(np.float32) * 0.6 + np.array([0, 90, 255], np.float32) * 0.4)
    assert np.abs(out[mask].astype(int) - expected.astype(int)).max() <= 1
    with pytest.raises(ValueError, match="alpha"):
        R.draw_fill(img, mask, (0, 0, 0), 0.0)


def test_box_outlines_the_tight_bounding_box():
    img = np.zeros((60, 80, 3), np.uint8)
    mask = np.zeros((60, 80), bool)
    mask[10:31, 20:51] = True
    mask[10, 20] = False  # bbox is still 20..50 x 10..30
    out = R.draw_box(img, mask, (0, 190, 0), 1)
    painted = (out == (0, 190, 0)).all(axis=2)
    ys, xs = np.nonzero(painted)
    assert (xs.min(), ys.min(), xs.max(), ys.max()) == (20, 10, 50, 30)
    assert not painted[15:25, 25:45].any()  # only the outline


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="does not match"):
        R.draw_contour(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 11), bool), (0, 0, 0), 1)
    with pytest.raises(ValueError, match="unknown style"):
        R.draw_regions(np.zeros((10, 10, 3), np.uint8), [], [], "glow", alpha=0.5, thickness=1)


def test_thickness_and_font_scale_with_image_size():
    assert R.scaled_thickness(2, (480, 640)) == 2
    assert R.scaled_thickness(2, (768, 1024)) == 2
    assert R.scaled_thickness(2, (1080, 1920)) == 4
    small, big = R.tag_font((480, 640)), R.tag_font((1080, 1920))
    assert big.scale > small.scale
    # digits at least 12 px tall even on small images
    assert small.ink("8").shape[0] >= 12
    assert big.ink("8").shape[0] >= 30


# ------------------------------------------------------------------------------ tags


def _tag_boxes(n: int, hw: tuple[int, int], masks: list[np.ndarray]) -> list[tuple[int, int, int, int]]:
    font = R.tag_font(hw)
    boxes = R.place_tags(masks, [font.box_size(str(i + 1)) for i in range(n)], hw)
    assert all(b is not None for b in boxes)
    return boxes  # type: ignore[return-value]


def _overlaps(a, b) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def test_37_tags_on_1920x1080_are_centred_inside_their_masks_without_overlap():
    hw = (1080, 1920)
    masks = grid_masks(hw, 37, seed=5)
    boxes = _tag_boxes(37, hw, masks)
    for box, mask in zip(boxes, masks):
        cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
        assert mask[cy, cx], f"tag centre {(cx, cy)} outside its mask"
        assert box[0] >= 0 and box[1] >= 0 and box[2] <= hw[1] and box[3] <= hw[0]
    assert not any(_overlaps(a, b) for a, b in itertools.combinations(boxes, 2))


def test_tags_of_overlapping_objects_are_nudged_apart():
    hw = (300, 400)
    a = ellipse_mask(hw, (200, 150), (120, 90))
    b = ellipse_mask(hw, (205, 152), (110, 85))  # nearly the same object: same interior point
    c = ellipse_mask(hw, (195, 148), (115, 80))
    boxes = _tag_boxes(3, hw, [a, b, c])
    assert not any(_overlaps(x, y) for x, y in itertools.combinations(boxes, 2))
    for box, mask in zip(boxes, [a, b, c]):
        assert mask[(box[1] + box[3]) // 2, (box[0] + box[2]) // 2]


def test_tag_prefers_the_point_farthest_from_the_border():
    hw = (200, 300)
    mask = np.zeros(hw, bool)
    mask[20:180, 20:120] = True  # wide part
    mask[90:110, 120:290] = True  # thin arm
    (box,) = _tag_boxes(1, hw, [mask])
    cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
    assert 50 <= cx <= 90 and 80 <= cy <= 120


def test_tags_draw_a_box_of_the_region_colour_with_white_text():
    hw = (240, 320)
    img = np.full((*hw, 3), 40, np.uint8)
    mask = ellipse_mask(hw, (160, 120), (80, 60))
    out = R.draw_regions(
        img, [mask], [(255, 225, 0)], "contour", alpha=0.4, thickness=2, tags=["17"], text_rgb=(255, 255, 255)
    )
    font = R.tag_font(hw)
    (box,) = R.place_tags([mask], [font.box_size("17")], hw)
    crop = out[box[1] : box[3], box[0] : box[2]]
    yellow = (crop == (255, 225, 0)).all(axis=2).mean()
    white = (crop == (255, 255, 255)).all(axis=2).sum()
    assert yellow > 0.4 and white > 10


def test_contrasting_text_picks_black_on_light_and_white_on_dark():
    assert R.contrasting_text((255, 225, 0)) == (0, 0, 0)
    assert R.contrasting_text((0, 0, 120)) == (255, 255, 255)


def test_rendering_is_deterministic():
    hw = (1080, 1920)
    img = textured_image(*hw, seed=7)
    masks = grid_masks(hw, 37, seed=8)
    colours = [c.rgb for c in R.palette(37)]
    tags = [str(i) for i in range(1, 38)]
    a = R.draw_regions(img, masks, colours, "marks", alpha=0.4, thickness=4, tags=tags)
    b = R.draw_regions(img, masks, colours, "marks", alpha=0.4, thickness=4, tags=tags)
    assert (a == b).all()


@pytest.mark.parametrize("style", R.STYLES)
def test_every_style_marks_every_region(style):
    hw = (200, 300)
    img = np.full((*hw, 3), 128, np.uint8)
    masks = grid_masks(hw, 4, seed=9)
    colours = [c.rgb for c in R.palette(4)]
    out = R.draw_regions(
        img, masks, colours, style, alpha=0.5, thickness=2, tags=["1", "2", "3", "4"] if style == "marks" else None
    )
    for mask, colour in zip(masks, colours):
        near = _near(mask, 3)
        assert (out[near] == colour).all(axis=1).any() or (out[mask] != 128).any()
        assert ((out != img).any(axis=2) & near).sum() > 10


def test_tag_of_a_sliver_at_the_image_edge_stays_inside_the_image():
    hw = (100, 160)
    mask = np.zeros(hw, bool)
    mask[40:44, 0:2] = True  # 2 px wide at the left edge: no centred box fits
    (box,) = _tag_boxes(1, hw, [mask])
    assert box[0] == 0 and box[1] >= 0 and box[2] <= hw[1] and box[3] <= hw[0]
    assert box[1] <= 41 < box[3]  # level with the object
