"""Drawing primitives for visual prompts: a named palette, contours, translucent fills, boxes, tags.

Every function is pure: it takes an H x W x 3 uint8 RGB image and returns a new one (the
input is never modified). Masks are H x W bool arrays at the image size. Work is done on
each mask's bounding-box crop, so drawing 37 regions on a 1920x1080 image stays cheap.
Over 500 lines because the styles share private crop, contour and tag-placement helpers that
would otherwise become public API.

Public API
----------
- ``PaletteColour(name, rgb)``; ``PALETTE`` (48 colours, the first 12 with plain names a
  model can read, in NAMED_PALETTE); ``QUERY_CYAN``; ``palette(n) -> tuple[PaletteColour, ...]``
- ``srgb_to_lab(rgb) -> ndarray``, ``ciede2000(lab1, lab2) -> ndarray`` (colour distances)
- ``scaled_thickness(base, hw) -> int``: line width for an image size (base at <= 1024 px long side)
- ``tag_font(hw) -> TagFont``: the one font scale used for every tag on an image
- ``draw_contour(image, mask, rgb, thickness) -> ndarray``
- ``draw_fill(image, mask, rgb, alpha) -> ndarray``
- ``draw_box(image, mask, rgb, thickness) -> ndarray``
- ``place_tags(masks, sizes, hw) -> list[(x1, y1, x2, y2)]``: tag boxes, centred inside
  their masks, nudged apart where they would overlap
- ``draw_tags(image, masks, texts, colours, font, text_rgb=None) -> ndarray``
- ``draw_regions(image, masks, colours, style, *, alpha, thickness, tags=None, text_rgb=None) -> ndarray``:
  one call for a style ("contour" | "mask" | "box" | "marks") with optional tags
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np

from cvbench.imaging.bitmap_font import CAP_ROWS, outline, text_mask, text_size
from cvbench.imaging.masks import interior_point

RGB = tuple[int, int, int]
STYLES: tuple[str, ...] = ("contour", "mask", "box", "marks")
# "upstream": the CoLVA authors' MMVM drawing rule (draw_upstream_mmvm); MMVM only
MMVM_STYLES: tuple[str, ...] = ("upstream",) + STYLES
ALL_STYLES: tuple[str, ...] = MMVM_STYLES


# ------------------------------------------------------------------------------ palette


@dataclass(frozen=True)
class PaletteColour:
    name: str | None  # a plain colour word for the named part of the palette, else None
    rgb: RGB

    @property
    def hex(self) -> str:
        return "#{:02x}{:02x}{:02x}".format(*self.rgb)

    @property
    def label(self) -> str:
        """The name when there is one, else the hex code (what provenance records)."""
        return self.name if self.name is not None else self.hex

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "rgb": list(self.rgb), "hex": self.hex}


# Reserved for the MMVM query object (upstream draws it in pure cyan); no palette colour is near it.
QUERY_CYAN: RGB = (0, 255, 255)

# Chosen by hand for plain names and pairwise CIEDE2000 >= 14; ordered so that the first few
# (what most CrossViewBench questions use) are the most distinct.
NAMED_PALETTE: tuple[PaletteColour, ...] = (
    PaletteColour("red", (230, 0, 0)),
    PaletteColour("blue", (0, 90, 255)),
    PaletteColour("green", (0, 190, 0)),
    PaletteColour("yellow", (255, 225, 0)),
    PaletteColour("magenta", (255, 0, 255)),
    PaletteColour("orange", (255, 130, 0)),
    PaletteColour("purple", (110, 0, 170)),
    PaletteColour("brown", (140, 80, 20)),
    PaletteColour("pink", (255, 150, 190)),
    PaletteColour("navy", (0, 0, 120)),
    PaletteColour("olive", (120, 130, 0)),
    PaletteColour("maroon", (120, 0, 40)),
)

# Extension for many MMVM candidates: greedy farthest-point picks (CIEDE2000) from a 17-step
# RGB grid, after the named colours, excluding anything within 25 of white, 35 of cyan, or with
# L* < 20. Frozen here (not recomputed) so the palette never changes between versions.
_EXTENDED_RGB: tuple[RGB, ...] = (
    (0, 102, 102),
    (119, 102, 119),
    (170, 170, 255),
    (17, 68, 0),
    (170, 153, 136),
    (51, 51, 51),
    (221, 34, 102),
    (34, 136, 85),
    (0, 153, 255),
    (187, 255, 85),
    (102, 102, 85),
    (255, 119, 102),
    (204, 153, 0),
    (68, 51, 0),
    (51, 68, 119),
    (153, 102, 187),
    (187, 187, 102),
    (85, 51, 85),
    (170, 153, 170),
    (170, 102, 85),
    (187, 0, 153),
    (34, 119, 153),
    (153, 0, 0),
    (238, 187, 255),
    (119, 136, 170),
    (153, 119, 51),
    (187, 119, 136),
    (170, 0, 255),
    (85, 34, 0),
    (255, 187, 119),
    (17, 68, 85),
    (102, 68, 68),
    (136, 136, 102),
    (255, 68, 170),
    (0, 68, 51),
    (51, 119, 0),
)

PALETTE: tuple[PaletteColour, ...] = NAMED_PALETTE + tuple(PaletteColour(None, rgb) for rgb in _EXTENDED_RGB)


def palette(n: int) -> tuple[PaletteColour, ...]:
    """The first n palette colours; beyond len(PALETTE) colours repeat (never happens for the benchmarks)."""
    if n < 0:
        raise ValueError(f"palette size must be >= 0, got {n}")
    return tuple(PALETTE[i % len(PALETTE)] for i in range(n))


def srgb_to_lab(rgb: Sequence[float] | np.ndarray) -> np.ndarray:
    """CIELAB (D65) of sRGB colours given as 0-255 values; shape (..., 3)."""
    c = np.asarray(rgb, dtype=float) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    to_xyz = np.array(
        [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
    )
    xyz = linear @ to_xyz.T / np.array([0.95047, 1.0, 1.08883])
    eps = (6 / 29) ** 3
    f = np.where(xyz > eps, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference between CIELAB colours (broadcasting over leading axes)."""
    l1, a1, b1 = np.moveaxis(np.asarray(lab1, dtype=float), -1, 0)
    l2, a2, b2 = np.moveaxis(np.asarray(lab2, dtype=float), -1, 0)
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_mean**7 / (c_mean**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    chroma_zero = c1p * c2p == 0
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(chroma_zero, 0.0, dh)
    d_l, d_c = l2 - l1, c2p - c1p
    d_h = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh) / 2)
    l_mean, cp_mean = (l1 + l2) / 2, (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_mean = np.where(np.abs(h1p - h2p) > 180, np.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2), h_sum / 2)
    h_mean = np.where(chroma_zero, h_sum, h_mean)
    t = (
        1
        - 0.17 * np.cos(np.radians(h_mean - 30))
        + 0.24 * np.cos(np.radians(2 * h_mean))
        + 0.32 * np.cos(np.radians(3 * h_mean + 6))
        - 0.20 * np.cos(np.radians(4 * h_mean - 63))
    )
    d_theta = 30 * np.exp(-(((h_mean - 275) / 25) ** 2))
    r_c = 2 * np.sqrt(cp_mean**7 / (cp_mean**7 + 25.0**7))
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    s_c = 1 + 0.045 * cp_mean
    s_h = 1 + 0.015 * cp_mean * t
    r_t = -np.sin(np.radians(2 * d_theta)) * r_c
    return cast(
        "np.ndarray", np.sqrt((d_l / s_l) ** 2 + (d_c / s_c) ** 2 + (d_h / s_h) ** 2 + r_t * (d_c / s_c) * (d_h / s_h))
    )


def relative_luminance(rgb: RGB) -> float:
    c = np.asarray(rgb, dtype=float) / 255.0
    linear = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2])


def contrasting_text(rgb: RGB) -> RGB:
    """Black or white, whichever has the higher WCAG contrast against `rgb`."""
    lum = relative_luminance(rgb)
    return (0, 0, 0) if (lum + 0.05) / 0.05 > 1.05 / (lum + 0.05) else (255, 255, 255)


# ------------------------------------------------------------------------------ sizes


def scaled_thickness(base: int, hw: tuple[int, int]) -> int:
    """`base` on images up to 1024 px on the long side, growing linearly beyond (2 -> 4 at 1920)."""
    if base < 1:
        raise ValueError(f"thickness must be >= 1, got {base}")
    return max(base, round(base * max(hw) / 1024))


@dataclass(frozen=True)
class TagFont:
    """One bitmap-font setting for all tags on an image (legible, never per-object).

    Text comes from cvbench.imaging.bitmap_font (integer block scaling of fixed glyphs), so
    tags are the same pixels under every supported opencv/pillow version."""

    scale: int  # each font pixel becomes scale x scale image pixels
    padding: int

    def ink(self, text: str) -> np.ndarray:
        """The text's ink mask, trimmed of blank rows below the lowest inked row."""
        mask = text_mask(text, self.scale)
        rows = np.flatnonzero(mask.any(axis=1))
        return mask[: int(rows[-1]) + 1] if rows.size else mask[: CAP_ROWS * self.scale]

    def box_size(self, text: str) -> tuple[int, int]:
        """(width, height) of the filled tag box for `text`."""
        ink = self.ink(text)
        return ink.shape[1] + 2 * self.padding, ink.shape[0] + 2 * self.padding

    def as_dict(self) -> dict[str, object]:
        return {"face": "cvbench-bitmap-5x9", "scale": self.scale, "padding": self.padding}


def tag_font(hw: tuple[int, int]) -> TagFont:
    """Capitals and digits about 1.7% of the long side tall (>= 14 px): 35 px on 1920x1080,
    21 px on 1280x720, 14 px up to 1030 px."""
    digit_px = max(15.0, max(hw) * 0.017)
    scale = max(2, round(digit_px / CAP_ROWS))
    return TagFont(scale=scale, padding=max(3, round(scale * CAP_ROWS * 0.25)))


# ------------------------------------------------------------------------------ geometry helpers


Box = tuple[int, int, int, int]


def _bbox(mask: np.ndarray) -> Box | None:
    """(x, y, w, h) of the mask's nonzero pixels, or None when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    cols = np.flatnonzero(mask[y0:y1].any(axis=0))  # only the occupied rows: small objects are cheap
    return int(cols[0]), y0, int(cols[-1] - cols[0] + 1), y1 - y0


_UNSET: Box = (-1, -1, -1, -1)


def _box_of(mask: np.ndarray, box: Box | None) -> Box | None:
    """A precomputed bbox (drawing many regions computes each once), else computed now."""
    return _bbox(mask) if box == _UNSET else box


def _check(image: np.ndarray, mask: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be H x W x 3 uint8 RGB, got shape {image.shape} dtype {image.dtype}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {image.shape[:2]}")


def _mask_contours(mask: np.ndarray, box: Box | None = _UNSET, *, tree: bool = False) -> list[np.ndarray]:
    """Outer contours (every point), or with `tree` every piece, holes included (simple chain
    approximation, as the MMVM authors retrieve them)."""
    box = _box_of(mask, box)
    if box is None:
        return []
    x, y, w, h = box
    crop = np.ascontiguousarray(mask[y : y + h, x : x + w], dtype=np.uint8)
    mode, approx = (cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE) if tree else (cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    found, _ = cv2.findContours(crop, mode, approx, offset=(x, y))
    return list(found)


# ------------------------------------------------------------------------------ primitives


def draw_contour(image: np.ndarray, mask: np.ndarray, rgb: RGB, thickness: int) -> np.ndarray:
    """The mask's outer boundary drawn in `rgb`, `thickness` px wide, centred on the boundary pixels."""
    _check(image, mask)
    out = image.copy()
    _contour_in_place(out, mask, rgb, thickness)
    return cast("np.ndarray", out)


def _contour_in_place(out: np.ndarray, mask: np.ndarray, rgb: RGB, thickness: int, box: Box | None = _UNSET) -> None:
    pieces = _mask_contours(mask, box)
    if pieces:
        cv2.drawContours(out, pieces, -1, tuple(int(v) for v in rgb), int(thickness), lineType=cv2.LINE_8)


def draw_fill(image: np.ndarray, mask: np.ndarray, rgb: RGB, alpha: float) -> np.ndarray:
    """The mask filled with `rgb` at opacity `alpha` (0 < alpha <= 1) over the image."""
    _check(image, mask)
    out = image.copy()
    _fill_in_place(out, mask, rgb, alpha)
    return cast("np.ndarray", out)


def _fill_in_place(out: np.ndarray, mask: np.ndarray, rgb: RGB, alpha: float, box: Box | None = _UNSET) -> None:
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    box = _box_of(mask, box)
    if box is None:
        return
    x, y, w, h = box
    view = out[y : y + h, x : x + w]
    sel = mask[y : y + h, x : x + w]
    colour = np.asarray(rgb, dtype=np.float32)
    blended = view[sel].astype(np.float32) * (1.0 - alpha) + colour * alpha
    view[sel] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def draw_box(image: np.ndarray, mask: np.ndarray, rgb: RGB, thickness: int) -> np.ndarray:
    """The mask's tight bounding box drawn as a rectangle outline in `rgb`."""
    _check(image, mask)
    out = image.copy()
    _box_in_place(out, mask, rgb, thickness)
    return cast("np.ndarray", out)


def _box_in_place(out: np.ndarray, mask: np.ndarray, rgb: RGB, thickness: int, box: Box | None = _UNSET) -> None:
    box = _box_of(mask, box)
    if box is None:
        return
    x, y, w, h = box
    cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), tuple(int(v) for v in rgb), int(thickness), lineType=cv2.LINE_8)


# ------------------------------------------------------------------------------ tags


def _overlap(boxes: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Overlap area of `box` (x1, y1, x2, y2, end exclusive) with each row of `boxes`."""
    if boxes.size == 0:
        return np.zeros(0)
    w = np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0])
    h = np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1])
    return cast("np.ndarray", np.clip(w, 0, None) * np.clip(h, 0, None))


def _candidate_centres(
    mask: np.ndarray, step: int, box: Box | None = _UNSET, limit: int = 400
) -> Iterator[tuple[int, int]]:
    """Points inside the mask: the interior point first, then (computed only if asked for)
    deepest-first on a grid."""
    box = _box_of(mask, box)
    if box is None:
        return
    x, y, w, h = box
    crop = mask[y : y + h, x : x + w]
    first = interior_point(crop)
    if first is not None:
        yield first[0] + x, first[1] + y
    dist = cv2.distanceTransform(np.pad(crop.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    grid = dist[::step, ::step]
    ys, xs = np.nonzero(grid > 0)
    for i in np.argsort(-grid[ys, xs], kind="stable")[:limit]:
        yield int(xs[i] * step + x), int(ys[i] * step + y)


def place_tags(
    masks: Sequence[np.ndarray],
    sizes: Sequence[tuple[int, int]],
    hw: tuple[int, int],
    boxes: Sequence[Box | None] | None = None,
) -> list[tuple[int, int, int, int] | None]:
    """A box (x1, y1, x2, y2; end exclusive) per mask for a tag of the given (width, height).

    Each box is centred on a pixel inside its mask (the point farthest from the border when
    that is free) and kept inside the image. Masks are served smallest first, since small
    objects have the fewest places; a tag that would overlap an earlier one moves to the next
    deepest free point of its own mask, and where none is free, to the point of least overlap.
    None for an empty mask. `boxes`: the masks' (x, y, w, h) bounding boxes when already known.
    """
    height, width = hw
    bboxes = list(boxes) if boxes is not None else [_bbox(m) for m in masks]
    placed: list[tuple[int, int, int, int] | None] = [None] * len(masks)
    taken = np.zeros((0, 4), dtype=np.int64)
    areas = [
        0 if b is None else int(np.count_nonzero(m[b[1] : b[1] + b[3], b[0] : b[0] + b[2]]))
        for m, b in zip(masks, bboxes)
    ]
    for i in sorted(range(len(masks)), key=lambda k: (areas[k], k)):
        tw, th = sizes[i]
        mask = masks[i]
        best: tuple[int, int, int, int] | None = None
        best_overlap = np.inf
        first: tuple[int, int] | None = None
        for cx, cy in _candidate_centres(mask, step=max(2, th // 2), box=bboxes[i]):
            first = first or (cx, cy)
            x1 = min(max(cx - tw // 2, 0), max(width - tw, 0))
            y1 = min(max(cy - th // 2, 0), max(height - th, 0))
            box = (x1, y1, x1 + tw, y1 + th)
            mx, my = min((x1 + x1 + tw) // 2, width - 1), min((y1 + y1 + th) // 2, height - 1)
            if not mask[my, mx]:  # clamping at the image edge moved the centre off the object
                continue
            overlap = float(_overlap(taken, box).sum())
            if overlap < best_overlap:
                best, best_overlap = box, overlap
                if overlap == 0:
                    break
        if best is None and first is not None:
            # a sliver at the image edge: no in-image box is centred on it; keep the tag whole
            # and as close to its interior point as the image allows
            cx, cy = first
            x1 = min(max(cx - tw // 2, 0), max(width - tw, 0))
            y1 = min(max(cy - th // 2, 0), max(height - th, 0))
            best = (x1, y1, x1 + tw, y1 + th)
        placed[i] = best
        if best is not None:
            taken = np.vstack([taken, np.asarray(best, dtype=np.int64)[None]])
    return placed


def draw_tags(
    image: np.ndarray,
    masks: Sequence[np.ndarray],
    texts: Sequence[str],
    colours: Sequence[RGB],
    font: TagFont,
    text_rgb: RGB | None = None,
) -> np.ndarray:
    """A filled box of each region's colour with its text, placed by `place_tags`.

    text_rgb None: black or white, whichever contrasts more with the box. A given text colour
    (MMVM: white) gets a thin dark outline so it stays legible on light boxes such as yellow.
    """
    out = image.copy()
    _tags_in_place(out, masks, texts, colours, font, text_rgb)
    return cast("np.ndarray", out)


def _tags_in_place(
    out: np.ndarray,
    masks: Sequence[np.ndarray],
    texts: Sequence[str],
    colours: Sequence[RGB],
    font: TagFont,
    text_rgb: RGB | None,
    bboxes: Sequence[Box | None] | None = None,
) -> list[tuple[int, int, int, int] | None]:
    if not (len(masks) == len(texts) == len(colours)):
        raise ValueError(f"masks, texts and colours differ in length: {len(masks)}, {len(texts)}, {len(colours)}")
    hw = out.shape[:2]
    for m in masks:
        _check(out, m)
    sizes = [font.box_size(t) for t in texts]
    boxes = place_tags(masks, sizes, hw, bboxes)
    for box, text, colour in zip(boxes, texts, colours):
        if box is None:
            continue
        x1, y1, x2, y2 = box
        out[y1:y2, x1:x2] = np.asarray(colour, dtype=np.uint8)
        ink = font.ink(text)
        ih, iw = ink.shape
        ox, oy = x1 + (x2 - x1 - iw) // 2, y1 + (y2 - y1 - ih) // 2
        if text_rgb is None:
            ink_rgb = contrasting_text(colour)
        else:
            ink_rgb = text_rgb
            halo_rgb = contrasting_text(text_rgb)
            if contrasting_text(colour) == halo_rgb:  # light box under light text: outline the glyphs
                r = max(1, font.scale // 2)
                _stamp(out, outline(ink, r), ox - r, oy - r, halo_rgb)
        _stamp(out, ink, ox, oy, ink_rgb)
    return boxes


def _stamp(out: np.ndarray, ink: np.ndarray, x: int, y: int, rgb: RGB) -> None:
    """Set the pixels of `ink` (placed with its top-left at x, y) to `rgb`, clipped to the image."""
    h, w = out.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + ink.shape[1], w), min(y + ink.shape[0], h)
    if x1 <= x0 or y1 <= y0:
        return
    sel = ink[y0 - y : y1 - y, x0 - x : x1 - x]
    out[y0:y1, x0:x1][sel] = np.asarray(rgb, dtype=np.uint8)


# ------------------------------------------------------------------------------ styles


def draw_regions(
    image: np.ndarray,
    masks: Sequence[np.ndarray],
    colours: Sequence[RGB],
    style: str,
    *,
    alpha: float,
    thickness: int,
    tags: Sequence[str] | None = None,
    text_rgb: RGB | None = None,
    font: TagFont | None = None,
) -> np.ndarray:
    """All regions of one image in one style, then the tags on top (so no fill hides a tag).

    contour: outline `thickness` px; mask: translucent fill at `alpha` plus an outline in the
    same colour (edges stay visible on busy backgrounds); box: bounding-box outline;
    marks (Set-of-Mark): translucent fill + outline + a tag (texts required).
    `thickness` is used as given (scale it with `scaled_thickness` first).
    """
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {', '.join(STYLES)}")
    if len(masks) != len(colours):
        raise ValueError(f"{len(masks)} masks but {len(colours)} colours")
    if style == "marks" and tags is None:
        raise ValueError("style 'marks' needs a tag text per region")
    out = image.copy()
    for m in masks:
        _check(out, m)
    bboxes = [_bbox(m) for m in masks]
    for mask, colour, box in zip(masks, colours, bboxes):
        if style == "contour":
            _contour_in_place(out, mask, colour, thickness, box)
        elif style == "box":
            _box_in_place(out, mask, colour, thickness, box)
        else:
            _fill_in_place(out, mask, colour, alpha, box)
            _contour_in_place(out, mask, colour, thickness, box)
    if tags is not None:
        _tags_in_place(out, masks, list(tags), list(colours), font or tag_font(out.shape[:2]), text_rgb, bboxes)
    return cast("np.ndarray", out)


# ------------------------------------------------------------------------------ MMVM upstream rule

UPSTREAM_MMVM_THICKNESS = 2
UPSTREAM_TAG_FRACTION = 0.15
UPSTREAM_MIN_SCALE = 2  # the bitmap scale nearest upstream's fallback Hershey scale 0.5 (~11 px digits)


@dataclass(frozen=True)
class UpstreamTagLayout:
    """Where the upstream rule puts each tag: the largest contour piece's centroid, one font scale."""

    scale: int
    centres: tuple[tuple[int, int] | None, ...]  # (x, y) per mask; None for an empty mask
    per_object_scale: tuple[int, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "face": "cvbench-bitmap-5x9",
            "scale": self.scale,
            "per_object_scale": list(self.per_object_scale),
            "rule": f"largest scale with text <= {UPSTREAM_TAG_FRACTION:.0%} of the largest contour piece's box, "
            f"minimum over objects, >= {UPSTREAM_MIN_SCALE}",
        }


def _piece_geometry(piece: np.ndarray) -> tuple[float, tuple[int, int], tuple[int, int]]:
    """(area, centroid (x, y), box (w, h)) of one closed contour: shoelace area and polygon
    moments in float64 on integer points (exact arithmetic, the same everywhere); a degenerate
    piece is centred on its box."""
    pts = piece.reshape(-1, 2).astype(np.float64)
    xs, ys = pts[:, 0], pts[:, 1]
    xn, yn = np.roll(xs, -1), np.roll(ys, -1)
    cross = xs * yn - xn * ys
    twice_area = float(cross.sum())
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
    size = (x1 - x0 + 1, y1 - y0 + 1)
    if twice_area == 0.0:
        return 0.0, (int(x0 + size[0] / 2), int(y0 + size[1] / 2)), size
    cx = float(((xs + xn) * cross).sum()) / (3.0 * twice_area)
    cy = float(((ys + yn) * cross).sum()) / (3.0 * twice_area)
    return abs(twice_area) / 2.0, (int(cx), int(cy)), size


def upstream_tag_layout(pieces: Sequence[Sequence[np.ndarray]], texts: Sequence[str]) -> UpstreamTagLayout:
    """The upstream MMVM tag rule (facts: docs/formats.md, MMVM rendering) with the bitmap font:
    per object the largest integer scale whose text is at most 15% of the largest piece's box in
    both width and height (UPSTREAM_MIN_SCALE when none fits), then the minimum over objects."""
    centres: list[tuple[int, int] | None] = []
    scales: list[int] = []
    for obj_pieces, text in zip(pieces, texts):
        if not obj_pieces:
            centres.append(None)
            continue
        geometry = [_piece_geometry(p) for p in obj_pieces]
        _area, centre, (bw, bh) = max(geometry, key=lambda g: g[0])  # first of equal areas, as argmax
        unit_w, _ = text_size(text, 1)
        fits = min(int(UPSTREAM_TAG_FRACTION * bw // max(unit_w, 1)), int(UPSTREAM_TAG_FRACTION * bh // CAP_ROWS))
        scales.append(max(UPSTREAM_MIN_SCALE, fits))
        centres.append(centre)
    scale = min(scales) if scales else UPSTREAM_MIN_SCALE
    return UpstreamTagLayout(scale=scale, centres=tuple(centres), per_object_scale=tuple(scales))


def draw_upstream_mmvm(
    image: np.ndarray,
    masks: Sequence[np.ndarray],
    colours: Sequence[RGB],
    tags: Sequence[str] | None = None,
    text_rgb: RGB = (255, 255, 255),
) -> tuple[np.ndarray, UpstreamTagLayout | None]:
    """MMVM views as the CoLVA authors draw them: every contour piece (holes too) 2 px wide
    at any image size, and (when `tags` is given) each tag as white text on a box of the
    object's colour centred on its largest piece, all tags at one scale. Returns the image
    and the tag layout (None without tags)."""
    if len(masks) != len(colours):
        raise ValueError(f"{len(masks)} masks but {len(colours)} colours")
    out = image.copy()
    for m in masks:
        _check(out, m)
    pieces = [_mask_contours(m, _bbox(m), tree=True) for m in masks]
    for obj_pieces, colour in zip(pieces, colours):
        if obj_pieces:
            cv2.drawContours(
                out, obj_pieces, -1, tuple(int(v) for v in colour), UPSTREAM_MMVM_THICKNESS, lineType=cv2.LINE_8
            )
    if tags is None:
        return out, None
    if len(tags) != len(masks):
        raise ValueError(f"{len(masks)} masks but {len(tags)} tags")
    layout = upstream_tag_layout(pieces, tags)
    pad = max(1, layout.scale // 2)
    height, width = out.shape[:2]
    for centre, text, colour in zip(layout.centres, tags, colours):
        if centre is None:
            continue
        ink = text_mask(text, layout.scale)[: CAP_ROWS * layout.scale]
        ih, iw = ink.shape
        ox, oy = centre[0] - iw // 2, centre[1] - ih // 2
        bx0, by0 = max(ox - pad, 0), max(oy - pad, 0)
        bx1, by1 = min(ox + iw + pad, width), min(oy + ih + pad, height)
        if bx1 > bx0 and by1 > by0:
            out[by0:by1, bx0:bx1] = np.asarray(colour, dtype=np.uint8)
        _stamp(out, ink, ox, oy, text_rgb)
    return out, layout
