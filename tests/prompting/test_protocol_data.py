"""Builders for real Samples on disk (images written as files, geometry encoded as upstream).

Imported by the render/protocol/prompting tests; the tests at the bottom check the builders.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from cvbench.core.types import (
    ImageRef,
    Option,
    Region,
    RegionRef,
    Sample,
    SourceLocation,
    View,
)
from cvbench.imaging.masks import encode_rle, mask_to_polygons
from cvbench.prompting.protocols.mmvm import (
    mmvm_options,
    mmvm_question,
    render_candidate_view,
    render_query_view,
)


def textured_image(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth coloured background with some structure (not flat, so blends are testable)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:h, 0:w]
    base = np.stack(
        [(xs * 200 // max(w, 1)) % 256, (ys * 180 // max(h, 1)) % 256, np.full_like(xs, 90)], axis=-1
    ).astype(np.int32)
    noise = rng.integers(-12, 13, size=(h, w, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def ellipse_mask(hw: tuple[int, int], centre: tuple[int, int], axes: tuple[int, int], angle: float = 0) -> np.ndarray:
    m = np.zeros(hw, np.uint8)
    cv2.ellipse(m, centre, axes, angle, 0, 360, 1, -1)
    return m.astype(bool)


def grid_masks(hw: tuple[int, int], n: int, seed: int) -> list[np.ndarray]:
    """n separated ellipses laid out on a grid (each fully inside its own cell)."""
    rng = np.random.default_rng(seed)
    h, w = hw
    cols = int(np.ceil(np.sqrt(n * w / h)))
    rows = int(np.ceil(n / cols))
    cw, ch = w // cols, h // rows
    out = []
    for k in range(n):
        r, c = divmod(k, cols)
        cx, cy = c * cw + cw // 2, r * ch + ch // 2
        ax = int(rng.integers(max(4, cw // 5), max(5, cw // 2 - 4)))
        ay = int(rng.integers(max(4, ch // 5), max(5, ch // 2 - 4)))
        out.append(ellipse_mask(hw, (cx, cy), (ax, ay), float(rng.integers(0, 30))))
    return out


def write_image(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, quality=92) if path.suffix == ".jpg" else Image.fromarray(rgb).save(path)
    return path


def polygon_region(region_id: str, mask: np.ndarray) -> Region:
    return Region(
        region_id=region_id,
        polygons=tuple(tuple(p) for p in mask_to_polygons(mask)),
        declared_hw=(mask.shape[0], mask.shape[1]),
    )


def make_mmvm_sample(
    root: Path,
    n: int = 6,
    gt: int | None = 0,
    hw: tuple[int, int] = (360, 480),
    seed: int = 0,
    sample_id: str = "case_001",
    prerendered: bool = True,
    answer_none: bool = False,
) -> Sample:
    """An MMVM case like upstream's: ORI + pre-rendered overlay images, polygons, ids a shuffle of 1..n.

    gt: index of the matching candidate (None: the query has no match; answer "None of the above").
    """
    rng = np.random.default_rng(seed)
    case = root / sample_id
    query_img = textured_image(*hw, seed=seed + 1)
    cand_img = textured_image(*hw, seed=seed + 2)
    query_mask = ellipse_mask(hw, (hw[1] // 2, hw[0] // 2), (hw[1] // 6, hw[0] // 5), 10)
    cand_masks = grid_masks(hw, n, seed)
    ids = [str(int(i) + 1) for i in rng.permutation(n)]
    write_image(case / "FRAME00_ORI.jpg", query_img)
    write_image(case / "FRAME01_ORI.jpg", cand_img)
    options = mmvm_options(ids)
    answer = options[-1].letter if gt is None or answer_none else next(o.letter for o in options if o.text == ids[gt])
    if prerendered:
        write_image(case / "FRAME00.jpg", render_query_view(query_img, query_mask))
        write_image(case / "FRAME01_CAND.jpg", render_candidate_view(cand_img, cand_masks, ids, rng))
    views = (
        View(
            "FRAME00",
            ImageRef(case / "FRAME00_ORI.jpg"),
            (polygon_region("0", query_mask),),
            ImageRef(case / "FRAME00.jpg") if prerendered else None,
        ),
        View(
            "FRAME01",
            ImageRef(case / "FRAME01_ORI.jpg"),
            tuple(polygon_region(i, m) for i, m in zip(ids, cand_masks)),
            ImageRef(case / "FRAME01_CAND.jpg") if prerendered else None,
        ),
    )
    return Sample(
        sample_id=sample_id,
        benchmark="mmvm",
        question=mmvm_question(options).split("\n")[0],
        options=options,
        answer=answer,
        views=views,
        cluster=sample_id,
        source=SourceLocation(str(root / "mllm_match_eval_full.tsv"), line=2),
        cues=("CL", "RP"),
        candidate_count=n,
        prerendered_question=mmvm_question(options) if prerendered else None,
    )


def make_cvb_sample(
    root: Path,
    hw: tuple[int, int] = (300, 400),
    n_views: int = 3,
    refs: tuple[tuple[int, int], ...] = ((0, 0), (1, 1), (0, 0)),
    question: str = "Is <region> in Image 1 the same object as <region> in Image 2? <region> is the reference.",
    options: tuple[str, ...] = ("A. Yes", "B. No"),
    answer: str = "A",
    sample_id: str = "cvb-1",
    task_type: str = "Q5",
    token_counts: tuple[int, ...] | None = None,
) -> Sample:
    """A CrossViewBench record: n_views views with three objects each, RLE masks, refs, <region> placeholders."""
    views = []
    for v in range(n_views):
        img = textured_image(*hw, seed=10 + v)
        path = write_image(root / sample_id / f"view{v}.png", img)
        masks = grid_masks(hw, 3, seed=20 + v)
        regions = tuple(
            Region(region_id=f"track{v}{k}", rle=encode_rle(m), bbox_xyxy=None) for k, m in enumerate(masks)
        )
        views.append(View(f"cam{v}", ImageRef(path), regions))
    opts = tuple(Option(o.split(". ", 1)[0], o.split(". ", 1)[1]) for o in options)
    return Sample(
        sample_id=sample_id,
        benchmark="crossviewbench",
        question=question,
        options=opts,
        answer=answer,
        views=tuple(views),
        cluster="scene-1",
        source=SourceLocation(str(root / "crossviewbench.jsonl"), 3),
        task_type=task_type,
        category="correspondence",
        region_refs=tuple(RegionRef(v, r) for v, r in refs),
        region_token_counts=token_counts,
    )


def test_builders_make_consistent_samples(tmp_path: Path) -> None:
    s = make_mmvm_sample(tmp_path, n=5, gt=2)
    assert s.answer_region_id == s.views[1].regions[2].region_id
    assert sorted(int(r.region_id) for r in s.views[1].regions) == [1, 2, 3, 4, 5]
    c = make_cvb_sample(tmp_path)
    assert c.question.count("<region>") == len(c.region_refs) == 3
    assert all(v.image.path.is_file() for v in c.views)
