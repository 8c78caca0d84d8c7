"""What an appearance shortcut makes of an MMVM case: how each candidate's region statistics
(hue-saturation-value histogram, mean CIELAB colour, box aspect) compare with the query's.

The generator uses it to place the true match at a planned rank among the candidates, drawn
uniformly, so that a reader of these statistics (the `mask-heuristic` baseline's MMVM rule, which
picks the most similar candidate) finds the match with chance probability in every candidate
setting: the match's rank among any random subset that keeps it is then uniform too. The answers
do not depend on it: the match is always the query object itself. The statistics are that
baseline's own (cvbench/imaging/region_stats.py), read from the JPEG-decoded pixels a run hands
to a model.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

from cvbench.imaging.region_stats import Appearance, appearance_at, appearance_similarity
from cvbench.tasks.synthetic.io import JPEG_QUALITY


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


def match_rank(query: Appearance, candidates: Sequence[Appearance], match: int) -> int:
    """How many candidates look more like the query than the true match does (0: the shortcut is right)."""
    sims = [appearance_similarity(query, c) for c in candidates]
    return sum(1 for i, s in enumerate(sims) if i != match and s >= sims[match])
