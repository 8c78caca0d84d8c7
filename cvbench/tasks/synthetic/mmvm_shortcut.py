"""What an appearance shortcut makes of an MMVM case: how each candidate's region statistics
(hue-saturation-value histogram, mean CIELAB colour, box aspect) compare with the query's.

The generator uses it to place the true match at a planned rank among the candidates, drawn
uniformly, so that a reader of these statistics (the `mask-heuristic` baseline's MMVM rule, which
picks the most similar candidate) finds the match with chance probability in every candidate
setting: the match's rank among any random subset that keeps it is then uniform too. The answers
do not depend on it: the match is always the query object itself. The statistics mirror that
baseline's (docs/running.md), written here because the tasks layer may not import model adapters;
they are read from the JPEG-decoded pixels a run hands to a model.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from cvbench.tasks.synthetic.io import JPEG_QUALITY

_HIST_BINS = (12, 4, 4)


@dataclass(frozen=True)
class Appearance:
    hist: np.ndarray  # normalised HSV histogram of the region's pixels
    lab: np.ndarray  # mean CIELAB colour
    aspect: float  # box height / width


def jpeg_round_trip(image: np.ndarray) -> np.ndarray:
    """The pixels a reader of the written JPEG sees (same settings as io.write_jpeg)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), "RGB").save(
        buf, format="JPEG", quality=JPEG_QUALITY, subsampling=2, optimize=False, progressive=False
    )
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def appearance(image: np.ndarray, mask: np.ndarray) -> Appearance:
    ys, xs = np.nonzero(mask)
    return appearance_at(image, ys, xs)


def appearance_at(image: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> Appearance:
    """The statistics of the pixels at (ys, xs)."""
    pixels = image[ys, xs].reshape(-1, 1, 3).astype(np.uint8)
    hsv = cv2.cvtColor(pixels, cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(float)
    hist, _ = np.histogramdd(hsv, bins=_HIST_BINS, range=((0, 180), (0, 256), (0, 256)))
    hist = hist.reshape(-1) / max(1.0, hist.sum())
    lab = cv2.cvtColor(pixels, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(float).mean(axis=0)
    aspect = float((ys.max() - ys.min() + 1) / (xs.max() - xs.min() + 1)) if xs.size else 1.0
    return Appearance(hist, lab, aspect)


def similarity(a: Appearance, b: Appearance) -> float:
    inter = float(np.minimum(a.hist, b.hist).sum())
    colour = float(np.linalg.norm(a.lab - b.lab)) / 100.0
    shape = abs(np.log(max(a.aspect, 1e-3)) - np.log(max(b.aspect, 1e-3)))
    return float(inter - 0.5 * colour - 0.15 * shape)


def match_rank(query: Appearance, candidates: Sequence[Appearance], match: int) -> int:
    """How many candidates look more like the query than the true match does (0: the shortcut is right)."""
    sims = [similarity(query, c) for c in candidates]
    return sum(1 for i, s in enumerate(sims) if i != match and s >= sims[match])
