"""A held-out pixel shortcut for the synthetic CrossViewBench (issue 23): per task type, a rule
over the two images' region statistics that the generator does NOT steer by.

The generator balances the correct option's rank under the `mask-heuristic/1` cues
(cvbench/tasks/synthetic/questions/shortcut.py), so that baseline scores chance by construction.
This rule reads related but different statistics: "the same object" is the nearest mean RGB
colour in the other view (no histogram, no shape), sizes are bounding-box diagonals, completeness
is mask area over box area, depth order is mask area (larger = nearer), image position is the box
centre, contact is box overlap. A set that only defeats the one rule it was steered by would show
here. Used by bench/synthetic_validity.py; reads only the generated files (records, PNGs, RLEs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cvbench.core.types import OPTION_LETTERS
from cvbench.imaging.masks import decode_rle

SAME_RGB = 40.0  # mean-colour distance under which two regions count as one object (Q6)


@dataclass(frozen=True)
class Blob:
    rgb: np.ndarray
    area: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 (pixels)

    @property
    def diag(self) -> float:
        return float(np.hypot(self.box[2] - self.box[0], self.box[3] - self.box[1]))

    @property
    def centre(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])

    @property
    def solidity(self) -> float:
        return self.area / max(1.0, (self.box[2] - self.box[0]) * (self.box[3] - self.box[1]))


def _blobs(record: dict[str, Any], root: Path) -> list[list[Blob]]:
    views = []
    for view in record["views"]:
        image = np.asarray(Image.open(root / view["image_path"]).convert("RGB"))
        blobs = []
        for obj in view["objects"]:
            m = decode_rle(obj["mask_rle"]).astype(bool)
            x1, y1, x2, y2 = obj["bbox_xyxy"]
            blobs.append(Blob(image[m].mean(axis=0), float(m.sum()), (x1, y1, x2 + 1, y2 + 1)))
        views.append(blobs)
    return views


def _dist(a: Blob, b: Blob) -> float:
    return float(np.linalg.norm(a.rgb - b.rgb))


def _match(blob: Blob, others: Sequence[Blob]) -> tuple[int, float]:
    d = [_dist(blob, o) for o in others]
    k = int(np.argmin(d))
    return k, d[k]


def _overlap(a: Blob, b: Blob) -> bool:
    return not (a.box[2] < b.box[0] or b.box[2] < a.box[0] or a.box[3] < b.box[1] or b.box[3] < a.box[1])


def heldout_choice(record: dict[str, Any], root: Path) -> int:
    """The option index this rule picks."""
    views = _blobs(record, root)
    refs = [views[v][i] for v, i in record["region_refs"]]
    other = views[1]
    t = record["question_type"]
    if t in ("Q1", "Q2"):
        return int(np.argmin([_dist(refs[0], c) for c in refs[1:]]))
    if t == "Q3":
        return int(np.argmin([_dist(refs[3], c) for c in refs[:3]]))
    if t == "Q4":
        scores = []
        for opt in record["options"]:
            m = re.search(r"object 1 is ([XYZ]) and object 2 is ([XYZ])", opt)
            assert m is not None, opt
            x, y = (2 + "XYZ".index(g) for g in m.groups())
            scores.append(_dist(refs[0], refs[x]) + _dist(refs[1], refs[y]))
        return int(np.argmin(scores))
    if t == "Q5":
        k, _ = _match(refs[0], other)
        return 0 if other[k] is refs[1] else 1
    if t == "Q6":
        return 0 if _match(refs[0], other)[1] < SAME_RGB else 1
    if t == "Q7":
        return int(np.argmax([_match(r, other)[1] for r in refs]))
    if t in ("Q8", "Q9"):
        cands = refs[1:]
        rest = [o for o in other if all(o is not c for c in cands)]
        target = rest[_match(refs[0], rest)[0]] if rest else refs[0]
        return int(np.argmin([float(np.linalg.norm(c.centre - target.centre)) for c in cands]))
    if t == "Q10":
        return 0 if other[_match(refs[0], other)[0]].diag > refs[0].diag else 1
    if t == "Q11":
        return int(np.argmin([r.solidity for r in refs]))
    if t == "Q12":
        return 0 if refs[0].solidity >= other[_match(refs[0], other)[0]].solidity else 1
    if t == "Q16":
        return 0 if refs[2].diag / refs[0].diag > refs[3].diag / refs[1].diag else 1
    a2, b2 = other[_match(refs[0], other)[0]], other[_match(refs[1], other)[0]]
    if t == "Q13":
        return 0 if (refs[0].centre[0] < refs[1].centre[0]) != (a2.centre[0] < b2.centre[0]) else 1
    if t == "Q14":
        moves = [float(np.linalg.norm(a2.centre - refs[0].centre)), float(np.linalg.norm(b2.centre - refs[1].centre))]
        return int(np.argmax(moves))
    if t == "Q15":
        return 0 if (refs[0].area > refs[1].area) == (a2.area > b2.area) else 1
    if t == "Q17":
        return 0 if _overlap(a2, b2) else 1
    raise ValueError(f"no held-out rule for {t}")


def heldout_results(jsonl: Path) -> dict[str, tuple[int, int, float]]:
    """Per task type: (correct, n, chance) of the held-out rule on a generated set."""
    out: dict[str, list[float]] = {}
    for line in jsonl.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        right = OPTION_LETTERS[heldout_choice(r, jsonl.parent)] == r["answer"]
        cell = out.setdefault(r["question_type"], [0, 0, 0.0])
        cell[0] += right
        cell[1] += 1
        cell[2] += 1.0 / len(r["options"])
    return {t: (int(c), int(n), ch / n) for t, (c, n, ch) in out.items()}
