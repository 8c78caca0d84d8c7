"""Synthetic MMVM scene design against held-out appearance shortcuts: each view has its own framing
(aim point, distance), and in the candidate view the query is held to no more visibility than any
other candidate (a query drawn from the clearly visible ones would stand out by area and shape)."""

from __future__ import annotations

import ast
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from cvbench.imaging.masks import polygons_to_mask
from cvbench.tasks.synthetic.mmvm import MIN_CANDIDATE_FRACTION, MIN_CANDIDATE_PX
from cvbench.tasks.synthetic.mmvm_cases import VIEW_DISTANCE


@pytest.fixture(scope="module")
def folders(mmvm_tsv: Path) -> list[Path]:
    with open(mmvm_tsv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [mmvm_tsv.parent / Path(ast.literal_eval(r["image_path"])[0]).parent for r in rows]


def test_every_candidate_meets_the_same_visibility_bar(folders: list[Path]) -> None:
    for folder in folders:
        facts = json.loads((folder / "synth_case.json").read_text())
        annotations = {a["id"]: a for a in json.loads((folder / "FRAME01_CAND.json").read_text())}
        for c in facts["candidates"]:
            assert c["visible_fraction_candidate_view"] >= MIN_CANDIDATE_FRACTION, (folder.name, c["id"])
            a = annotations[c["id"]]
            area = int(polygons_to_mask(a["segmentation"], a["height"], a["width"]).sum())
            # the written polygons show what the facts say (polygon rounding costs a few pixels)
            assert area >= 0.8 * MIN_CANDIDATE_PX and abs(area - c["visible_px_candidate_view"]) <= max(
                40, 0.25 * c["visible_px_candidate_view"]
            )


def test_each_view_has_its_own_aim_and_distance(folders: list[Path]) -> None:
    ratios = []
    for folder in folders:
        facts = json.loads((folder / "synth_case.json").read_text())
        (p0, t0), (p1, t1) = ((np.array(c["position"]), np.array(c["target"])) for c in facts["cameras"])
        assert np.linalg.norm(t0 - t1) > 1e-3  # not aimed at the same point
        ratios.append(float(np.linalg.norm(p1 - t1) / np.linalg.norm(p0 - t0)))
    span = VIEW_DISTANCE[1] / VIEW_DISTANCE[0]
    assert all(1 / span - 0.05 <= r <= span + 0.05 for r in ratios)  # the aim height shifts it a little
    assert max(ratios) / min(ratios) > 1.15  # the zoom between the views varies from case to case
