"""A held-out pixel shortcut for the synthetic CrossViewBench (issue 23): per task type, a rule
over the two images' region statistics that the generator does NOT steer by.

The generator balances the correct option's rank under the `mask-heuristic/1` cues
(cvbench/tasks/synthetic/questions/shortcut.py), so that baseline scores chance by construction.
This rule reads related but different statistics: "the same object" is the nearest mean RGB
colour in the other view (no histogram, no shape), sizes are bounding-box diagonals, completeness
is mask area over box area, depth order is mask area (larger = nearer), image position is the box
centre, contact is box overlap. A set that only defeats the one rule it was steered by would show
here. Used by bench/synthetic_validity.py; reads only the generated files (records, PNGs, RLEs).
The rule and the probe report one `Outcome` per question, with its scene (the image folder), for
the scene-clustered intervals; `type_totals` sums them per task type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
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
    a2, b2 = other[_match(refs[0], other)[0]], other[_match(refs[1], other)[0]]
    if t == "Q16":  # marked in the first image only (cvb/6): the colour matches' box diagonals
        return 0 if a2.diag / refs[0].diag > b2.diag / refs[1].diag else 1
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


def _load(jsonl: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]


@dataclass(frozen=True)
class Outcome:
    """One question's result under the held-out rule or the probe, with its scene (the cluster of
    the scene-clustered intervals in bench/synthetic_validity.py)."""

    sample_id: str
    question_type: str
    scene: str
    right: bool
    chance: float  # 1 / options


def scene_of(record: dict[str, Any], where: str) -> str:
    """The scene of a generated record: the folder its images lie in (`images/<scene>/<camera>.png`),
    the same for every view. `where` (file:line) names the record in errors."""
    folders = {str(PurePosixPath(view["image_path"]).parent) for view in record.get("views", [])}
    if len(folders) != 1 or folders == {"."}:
        raise ValueError(f"{where}: views' image_path folders {sorted(folders)}: expected one scene folder")
    return folders.pop()


def scenes_of(jsonl: Path) -> dict[str, str]:
    """sample_id -> scene for every record of a generated crossviewbench.jsonl."""
    return {str(r["sample_id"]): scene_of(r, f"{jsonl}:{k}") for k, r in enumerate(_load(jsonl), 1)}


def _outcome(record: dict[str, Any], pick: int, where: str) -> Outcome:
    return Outcome(
        str(record["sample_id"]),
        record["question_type"],
        scene_of(record, where),
        OPTION_LETTERS[pick] == record["answer"],
        1.0 / len(record["options"]),
    )


def type_totals(outcomes: Sequence[Outcome]) -> dict[str, tuple[int, int, float]]:
    """Per task type: (correct, n, mean chance), the figures heldout_results and probe_results
    returned before they returned per-question outcomes."""
    out: dict[str, list[float]] = {}
    for o in outcomes:
        cell = out.setdefault(o.question_type, [0, 0, 0.0])
        cell[0] += o.right
        cell[1] += 1
        cell[2] += o.chance
    return {t: (int(c), int(n), ch / n) for t, (c, n, ch) in out.items()}


def heldout_results(jsonl: Path) -> list[Outcome]:
    """Per question of a generated set (file order): the held-out rule's outcome."""
    return [_outcome(r, heldout_choice(r, jsonl.parent), f"{jsonl}:{k}") for k, r in enumerate(_load(jsonl), 1)]


# --- second probe: a classifier over per-option region features -----------------------------------
#
# The rule above is one fixed guess at what a shortcut reads. The probe learns one instead: per task
# type, a conditional logit (softmax over the options of w . x_option) over region statistics of the
# two images, fitted on a set generated from one seed and scored on a set from another. A
# regularity the generator leaves in the pixels that a linear reader of these statistics can find
# shows here even where no rule was written for it. Numpy only; no model, no new dependency.

PROBE_STEPS = 400
PROBE_L2 = 1e-2
PROBE_RATE = 0.5


def _stats(blob: Blob, size: tuple[int, int]) -> list[float]:
    w, h = size
    x1, y1, x2, y2 = blob.box
    touches = float(x1 <= 0 or y1 <= 0 or x2 >= w or y2 >= h)
    shape = [np.log(max(blob.area, 1.0)), np.log(max(blob.diag, 1.0)), blob.solidity, (y2 - y1) / max(1.0, x2 - x1)]
    return shape + [blob.centre[0] / w, blob.centre[1] / h, y2 / h, touches]


def _iou(a: Blob, b: Blob) -> float:
    ix = max(0.0, min(a.box[2], b.box[2]) - max(a.box[0], b.box[0]))
    iy = max(0.0, min(a.box[3], b.box[3]) - max(a.box[1], b.box[1]))
    union = (a.box[2] - a.box[0]) * (a.box[3] - a.box[1]) + (b.box[2] - b.box[0]) * (b.box[3] - b.box[1])
    return ix * iy / max(1.0, union - ix * iy)


def _relation(c: Blob, target: Blob, size: tuple[int, int]) -> list[float]:
    """How option region `c` relates to `target`: colour distance, centre distance, box overlap."""
    dist = float(np.linalg.norm(c.centre - target.centre)) / size[0]
    return [_dist(c, target) / 100.0, dist, _iou(c, target), float(c.box[3] > target.box[3])]


def _object_pair(a1: Blob, b1: Blob, a2: Blob, b2: Blob, size: tuple[int, int]) -> list[float]:
    """Two objects in the first image (a1, b1) and their colour matches in the second (a2, b2)."""
    dx1, dx2 = (a1.centre[0] - b1.centre[0]) / size[0], (a2.centre[0] - b2.centre[0]) / size[0]
    la1, la2 = np.log(max(a1.area, 1.0) / max(b1.area, 1.0)), np.log(max(a2.area, 1.0) / max(b2.area, 1.0))
    bot1, bot2 = (a1.box[3] - b1.box[3]) / size[1], (a2.box[3] - b2.box[3]) / size[1]
    move = [float(np.linalg.norm(x2.centre - x1.centre)) / size[0] for x1, x2 in ((a1, a2), (b1, b2))]
    grow = [np.log(max(x2.diag, 1.0) / max(x1.diag, 1.0)) for x1, x2 in ((a1, a2), (b1, b2))]
    orders = [dx1, dx2, dx1 * dx2, la1, la2, la1 * la2, bot1, bot2, bot1 * bot2]
    overlaps = [_iou(a1, b1), _iou(a2, b2), float(_overlap(a1, b1)), float(_overlap(a2, b2))]
    return orders + overlaps + [move[0] - move[1], grow[0] - grow[1]]


def option_features(record: dict[str, Any], root: Path) -> np.ndarray:
    """Options x features for one record (the same columns for every record of a task type)."""
    views = _blobs(record, root)
    size = Image.open(root / record["views"][0]["image_path"]).size
    refs = [views[v][i] for v, i in record["region_refs"]]
    other = views[1]
    t = record["question_type"]
    n = len(record["options"])
    if t in ("Q1", "Q2", "Q3"):
        query, cands = (refs[3], refs[:3]) if t == "Q3" else (refs[0], refs[1:])
        rows = [_stats(c, size) + _relation(c, query, size) + [0.0] for c in cands]
        if t == "Q3":  # "none of them": its own column, and how far the best colour match is
            rows.append([0.0] * (len(rows[0]) - 1) + [min(_dist(query, c) for c in cands) / 100.0])
        return np.array(rows)
    if t == "Q4":
        rows = []
        for opt in record["options"]:
            m = re.search(r"object 1 is ([XYZ]) and object 2 is ([XYZ])", opt)
            assert m is not None, opt
            x, y = (2 + "XYZ".index(g) for g in m.groups())
            pair = (_relation(refs[x], refs[0], size), _relation(refs[y], refs[1], size))
            rows.append([p + q for p, q in zip(*pair)])
        return np.array(rows)
    if t == "Q7":
        rows = []
        for r in refs:
            k, d = _match(r, other)
            rows.append(_stats(r, size) + [d / 100.0] + _stats(other[k], size))
        return np.array(rows)
    if t in ("Q8", "Q9"):
        cands = refs[1:]
        rest = [o for o in other if all(o is not c for c in cands)]
        target = rest[_match(refs[0], rest)[0]] if rest else refs[0]
        return np.array([_stats(c, size) + _relation(c, target, size) for c in cands])
    if t == "Q11":
        return np.array([_stats(r, size) for r in refs])
    # two options (yes/no, first/second): one row of question features for option 0, zeros for 1
    a1 = refs[0]
    a2 = other[_match(a1, other)[0]]
    b1 = refs[1] if len(refs) > 1 else a1
    b2 = other[_match(b1, other)[0]] if len(refs) > 1 else a2
    k, d = _match(a1, other)
    row = _stats(a1, size) + _stats(a2, size) + _stats(b1, size) + _stats(b2, size) + [d / 100.0, 1.0]
    row += _object_pair(a1, b1, a2, b2, size)
    out = np.zeros((n, len(row)))
    out[0] = row
    return out


def _softmax_rows(scores: list[np.ndarray]) -> list[np.ndarray]:
    out = []
    for s in scores:
        e = np.exp(s - s.max())
        out.append(e / e.sum())
    return out


def fit_probe(examples: Sequence[tuple[np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights, feature mean, feature scale) of a conditional logit fitted by gradient descent."""
    stacked = np.concatenate([x for x, _ in examples])
    mean, scale = stacked.mean(axis=0), stacked.std(axis=0) + 1e-6
    xs = [(x - mean) / scale for x, _ in examples]
    w = np.zeros(stacked.shape[1])
    for _ in range(PROBE_STEPS):
        grad = PROBE_L2 * w
        for x, p, (_, y) in zip(xs, _softmax_rows([x @ w for x in xs]), examples):
            grad += (x.T @ p - x[y]) / len(xs)
        w -= PROBE_RATE * grad
    return w, mean, scale


def probe_results(train: Path, test: Path) -> list[Outcome]:
    """Per question of `test` (file order): the outcome of the probe fitted on `train` (two
    generated sets' crossviewbench.jsonl, from different seeds)."""
    by_type: dict[str, list[tuple[np.ndarray, int]]] = {}
    for r in _load(train):
        by_type.setdefault(r["question_type"], []).append(
            (option_features(r, train.parent), OPTION_LETTERS.index(r["answer"]))
        )
    models = {t: fit_probe(ex) for t, ex in by_type.items()}
    out: list[Outcome] = []
    for k, r in enumerate(_load(test), 1):
        w, mean, scale = models[r["question_type"]]
        pick = int(np.argmax(((option_features(r, test.parent) - mean) / scale) @ w))
        out.append(_outcome(r, pick, f"{test}:{k}"))
    return out
