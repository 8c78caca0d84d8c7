"""Writers of small datasets in the exact upstream shapes, quirks included, for the tests."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cvbench.imaging.masks import encode_rle, encode_rle_uncompressed

H, W = 48, 64  # every test image is this small


def write_image(path: Path, h: int = H, w: int = W, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)).save(path)
    return path


def box_mask(x1: int, y1: int, x2: int, y2: int, h: int = H, w: int = W) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    m[y1:y2, x1:x2] = True
    return m


# ------------------------------------------------------------------------------ CrossViewBench


def cvb_object(
    x1: int, y1: int, x2: int, y2: int, track_id: Any = None, rle: str = "str", h: int = H, w: int = W
) -> dict[str, Any]:
    """An upstream object; rle: 'str' (compressed), 'list' (uncompressed) or 'none' (bbox only)."""
    obj: dict[str, Any] = {"bbox_xyxy": [x1, y1, x2 - 1, y2 - 1]}
    if rle == "str":
        obj["mask_rle"] = encode_rle(box_mask(x1, y1, x2, y2, h, w))
    elif rle == "list":
        obj["mask_rle"] = encode_rle_uncompressed(box_mask(x1, y1, x2, y2, h, w))
    if track_id is not None:
        obj["track_id"] = track_id
    return obj


def cvb_record(sample_id: Any, images: Sequence[str], **overrides: Any) -> dict[str, Any]:
    """A valid Q1 record with two views of two objects each; `overrides` replace keys."""
    views = [
        {
            "view_id": f"cam{i}",
            "image_path": img,
            "objects": [
                cvb_object(2, 2, 20, 20, track_id=f"t{i}a"),
                cvb_object(30, 10, 60, 40, track_id=f"t{i}b", rle="list"),
            ],
        }
        for i, img in enumerate(images)
    ]
    record: dict[str, Any] = {
        "sample_id": sample_id,
        "question_type": "Q1",
        "question": "Which object in the second view is <region>?",
        "options": ["A. the left one", "B. the right one"],
        "answer": "A",
        "region_refs": [[0, 0]],
        "views": views,
        "dataset": "EgoHumans",
        "scene": "scene_01",
        "spatial_info": {"baseline_m": 1.5},
    }
    record.update(overrides)
    return record


def write_jsonl(path: Path, lines: Sequence[dict[str, Any] | str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return path


# ------------------------------------------------------------------------------ MMVM

MMVM_HEADER = [
    "index",
    "question",
    "pure_question",
    "choices",
    "choices_head",
    "answer",
    "match_type",
    "image_path",
    "image_path_v3",
    "question_v3",
    "image",
    "image_v3",
]
PURE_QUESTION = (
    "Here are two images. In the second image, I have marked several visual objects with their contours "
    "in different colors. Which of these marked objects is the same as the object marked with a cyan "
    "contour in the first image?"
)


def square_polygon(x: float, y: float, size: float) -> list[float]:
    return [x, y, x + size, y, x + size, y + size, x, y + size]


def make_case(
    root: Path,
    case: str,
    ids: Sequence[int],
    *,
    h: int = H,
    w: int = W,
    declared_hw: tuple[int, int] | None = None,
    extra_polygons: Sequence[list[float]] = (),
    skip: Sequence[str] = (),
) -> Path:
    """match_bench/<case>/ with the six upstream files; candidates are small squares on a grid."""
    folder = root / "match_bench" / case
    dh, dw = declared_hw or (h, w)
    for name, seed in (("FRAME00.jpg", 1), ("FRAME00_ORI.jpg", 2), ("FRAME01_CAND.jpg", 3), ("FRAME01_ORI.jpg", 4)):
        if name not in skip:
            write_image(folder / name, h, w, seed)
    query = [{"height": dh, "width": dw, "segmentation": [square_polygon(4, 4, 10)], "id": 0}]
    cols = max(1, w // 8)
    cands = []
    for k, cid in enumerate(ids):
        x, y = (k % cols) * 8 + 1, (k // cols) * 8 + 1
        segs = [square_polygon(x, y, 5), *extra_polygons] if k == 0 else [square_polygon(x, y, 5)]
        cands.append({"height": dh, "width": dw, "segmentation": segs, "id": cid})
    if "FRAME00.json" not in skip:
        (folder / "FRAME00.json").write_text(json.dumps(query))
    if "FRAME01_CAND.json" not in skip:
        (folder / "FRAME01_CAND.json").write_text(json.dumps(cands))
    return folder


def mmvm_row(
    index: Any,
    case: str,
    ids: Sequence[int],
    answer_id: int | None,
    *,
    match_type: str = "[1, 5]",
    prefix: str = "match_bench",
    n_options: int | None = None,
    **overrides: str,
) -> dict[str, str]:
    """A TSV row asking about `case`; options list the ascending ids (at most 25) + None of the above."""
    shown = sorted(ids)[: n_options or 25]
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    lines = [f"{letters[i]}. {cid}" for i, cid in enumerate(shown)]
    lines.append(f"{letters[len(shown)]}. None of the above choices are correct")
    answer = letters[shown.index(answer_id)] if answer_id is not None else letters[len(shown)]
    choices = "\n".join(lines)
    row = {
        "index": str(index),
        "question": PURE_QUESTION + " Please make a choice from the following options: \n" + choices,
        "pure_question": PURE_QUESTION,
        "choices": choices,
        "choices_head": "".join(letters[: len(lines)]),
        "answer": answer,
        "match_type": match_type,
        "image_path": repr([f"{prefix}/{case}/FRAME00.jpg", f"{prefix}/{case}/FRAME01_CAND.jpg"]),
        "image_path_v3": repr([f"{prefix}/{case}/FRAME00_v3.jpg"]),
        "question_v3": "an alternate rendering",
        "image": "aGVsbG8=" * 50,
        "image_v3": "",
    }
    row.update(overrides)
    return row


def write_tsv(path: Path, rows: Sequence[dict[str, str]], header: Sequence[str] = MMVM_HEADER) -> Path:
    """Tab-separated with csv's minimal quoting (multi-line cells quoted), as pandas publishes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([row.get(col, "") for col in header])
    return path
