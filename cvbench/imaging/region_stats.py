"""Statistics of one masked region of an image, as a reader without cross-view reasoning sees it:
colour (hue-saturation-value histogram, mean CIELAB colour), size, position, box, convex fill and
contact with the frame.

One definition serves both sides of the synthetic benchmark's shortcut design: the
`mask-heuristic` baseline answers from these statistics, and the synthetic generators place
each answer where these same statistics do not give it away (docs/synthetic.md). Were they two
copies, a change to one would silently void the other's validity figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

HIST_BINS = (12, 4, 4)
SAME_OBJECT_THRESHOLD = 0.45  # appearance similarity above which two regions are taken to be one object


@dataclass(frozen=True)
class Appearance:
    hist: np.ndarray  # normalised hue-saturation-value histogram of the region's pixels
    lab: np.ndarray  # mean CIELAB colour
    aspect: float  # box height / width (compared on a log scale)


@dataclass(frozen=True)
class RegionFeatures(Appearance):
    area: float  # fraction of the image
    centroid: tuple[float, float]  # (x, y) as fractions of width, height
    bbox: tuple[float, float, float, float]  # x1, y1, x2, y2 as fractions
    fill: float  # area / convex hull area (occlusion and truncation lower it)
    border: bool  # touches the image border (truncated by the frame)

    @property
    def bottom(self) -> float:
        return self.bbox[3]

    @property
    def completeness(self) -> float:
        return self.fill - (0.25 if self.border else 0.0)


EMPTY_REGION = RegionFeatures(
    hist=np.zeros(int(np.prod(HIST_BINS))),
    lab=np.zeros(3),
    aspect=1.0,
    area=0.0,
    centroid=(0.5, 0.5),
    bbox=(0.5, 0.5, 0.5, 0.5),
    fill=0.0,
    border=False,
)


def appearance_at(image: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> Appearance:
    """The colour statistics and box aspect of the pixels at (ys, xs) of an RGB image."""
    pixels = image[ys, xs].reshape(-1, 1, 3).astype(np.uint8)
    hsv = cv2.cvtColor(pixels, cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(float)
    hist, _ = np.histogramdd(hsv, bins=HIST_BINS, range=((0, 180), (0, 256), (0, 256)))
    hist = hist.reshape(-1) / max(1.0, hist.sum())
    lab = cv2.cvtColor(pixels, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(float).mean(axis=0)
    aspect = float((ys.max() - ys.min() + 1) / (xs.max() - xs.min() + 1)) if xs.size else 1.0
    return Appearance(hist, lab, aspect)


def region_features(image: np.ndarray, mask: np.ndarray) -> RegionFeatures:
    """Every statistic of the region `mask` (non-zero pixels) of the RGB `image`."""
    h, w = mask.shape[:2]
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return EMPTY_REGION
    x1, x2, y1, y2 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
    # the contour of the box's crop: the same hull as the whole image's, at a fraction of the cost
    crop = mask[y1 : y2 + 1, x1 : x2 + 1].astype(bool).astype(np.uint8)
    contours, _ = cv2.findContours(crop, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull_area = float(cv2.contourArea(cv2.convexHull(np.concatenate(contours)))) if contours else 0.0
    look = appearance_at(image, ys, xs)
    return RegionFeatures(
        hist=look.hist,
        lab=look.lab,
        aspect=look.aspect,
        area=xs.size / float(h * w),
        centroid=(float(xs.mean()) / w, float(ys.mean()) / h),
        bbox=(x1 / w, y1 / h, (x2 + 1) / w, (y2 + 1) / h),
        fill=min(1.0, xs.size / hull_area) if hull_area > 0 else 1.0,
        border=bool(x1 == 0 or y1 == 0 or x2 == w - 1 or y2 == h - 1),
    )


def box_cover(cover: RegionFeatures, target: RegionFeatures) -> float:
    """The share of `target`'s box that `cover`'s box overlaps."""
    a, t = cover.bbox, target.bbox
    ix = max(0.0, min(a[2], t[2]) - max(a[0], t[0]))
    iy = max(0.0, min(a[3], t[3]) - max(a[1], t[1]))
    return ix * iy / max(1e-9, (t[2] - t[0]) * (t[3] - t[1]))


def boxes_in_contact(a: RegionFeatures, b: RegionFeatures) -> bool:
    """The two boxes meet (within 2% of the image) and their bottom edges are level (both on the
    ground) or one's bottom sits on the other's top."""
    gap = 0.02
    meet = not (
        a.bbox[2] + gap < b.bbox[0]
        or b.bbox[2] + gap < a.bbox[0]
        or a.bbox[3] + gap < b.bbox[1]
        or b.bbox[3] + gap < a.bbox[1]
    )
    stacked = abs(a.bottom - b.bbox[1]) < 0.04 or abs(b.bottom - a.bbox[1]) < 0.04
    level = abs(a.bottom - b.bottom) < 0.04
    return meet and (stacked or level)


def appearance_similarity(a: Appearance, b: Appearance) -> float:
    """Colour-histogram intersection, minus mean-colour distance and shape (aspect) difference."""
    inter = float(np.minimum(a.hist, b.hist).sum())
    colour = float(np.linalg.norm(a.lab - b.lab)) / 100.0
    shape = abs(np.log(max(a.aspect, 1e-3)) - np.log(max(b.aspect, 1e-3)))
    return float(inter - 0.5 * colour - 0.15 * shape)
