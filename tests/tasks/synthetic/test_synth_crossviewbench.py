"""The synthetic CrossViewBench: upstream record format, answers recomputed from the stored geometry."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cvbench.core.types import OPTION_LETTERS, REGION_PLACEHOLDER, TASK_TYPES, Sample
from cvbench.imaging.masks import decode_rle
from cvbench.tasks.crossviewbench import iter_crossviewbench
from cvbench.tasks.synthetic import generate_crossviewbench
from cvbench.tasks.synthetic.questions import APART_MIN, CONTACT_EPS, MIN_REF_PX
from cvbench.tasks.synthetic.scene import SceneObject
from cvbench.tasks.synthetic.shapes import Shape

from .conftest import CVB_PER_TYPE, CVB_SEED

UPSTREAM_KEYS = {
    "sample_id",
    "question_type",
    "question",
    "options",
    "answer",
    "region_refs",
    "views",
    "selected_object_names",
    "object_ids",
    "dataset",
    "scene",
    "metadata",
}
YES_NO_TYPES = {"Q5", "Q6", "Q10", "Q13", "Q15", "Q17"}


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def records(cvb_jsonl: Path) -> list[dict[str, Any]]:
    return _records(cvb_jsonl)


def test_every_task_type_has_n_questions(records: list[dict[str, Any]]) -> None:
    counts = Counter(r["question_type"] for r in records)
    assert counts == dict.fromkeys(TASK_TYPES, CVB_PER_TYPE)
    assert len({r["sample_id"] for r in records}) == len(records)


def test_records_follow_the_upstream_format(records: list[dict[str, Any]], cvb_jsonl: Path) -> None:
    root = cvb_jsonl.parent
    for r in records:
        assert set(r) == UPSTREAM_KEYS, r["sample_id"]
        assert r["dataset"] == "cvbench-synth"
        letters = [o.split(". ", 1)[0] for o in r["options"]]
        assert letters == list(OPTION_LETTERS[: len(letters)])
        assert r["answer"] in letters
        if r["question_type"] in YES_NO_TYPES:
            assert r["options"] == ["A. yes", "B. no"]
        assert r["question"].count(REGION_PLACEHOLDER) == len(r["region_refs"])
        assert len(r["views"]) >= 2
        for v in r["views"]:
            image = Image.open(root / v["image_path"])
            for obj in v["objects"]:
                mask = decode_rle(obj["mask_rle"])
                assert isinstance(obj["mask_rle"]["counts"], str)
                assert mask.shape == (image.height, image.width)
                ys, xs = np.nonzero(mask)
                assert obj["bbox_xyxy"] == [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]
            tracks = [o["track_id"] for o in v["objects"]]
            assert len(set(tracks)) == len(tracks)
        for view_idx, obj_idx in r["region_refs"]:
            assert 0 <= view_idx < len(r["views"]) and 0 <= obj_idx < len(r["views"][view_idx]["objects"])


def test_referenced_masks_match_the_stored_geometry(records: list[dict[str, Any]]) -> None:
    for r in records:
        md = r["metadata"]
        assert len(md["region_objects"]) == len(r["region_refs"])
        for (view_idx, obj_idx), oid in zip(r["region_refs"], md["region_objects"]):
            view = r["views"][view_idx]
            mask = decode_rle(view["objects"][obj_idx]["mask_rle"])
            assert int(mask.sum()) == md["geometry"][oid][view["view_id"]]["visible_px"] >= MIN_REF_PX


def test_no_answer_leaks_through_ids_or_order(records: list[dict[str, Any]]) -> None:
    # the same object gets unrelated track ids in different views, and lists are not in id order
    same_track = 0
    total = 0
    in_id_order = 0
    for r in records:
        md = r["metadata"]
        by_view = []
        for view_idx, v in enumerate(r["views"]):
            ids = {}
            for (vi, oi), oid in zip(r["region_refs"], md["region_objects"]):
                if vi == view_idx:
                    ids[oid] = v["objects"][oi]["track_id"]
            by_view.append(ids)
        for oid in set(by_view[0]) & set(by_view[1]):
            total += 1
            same_track += by_view[0][oid] == by_view[1][oid]
        in_id_order += all(a < b for a, b in zip(md["region_objects"], md["region_objects"][1:]))
    assert total > 0 and same_track <= total // 10
    assert in_id_order < len(records) // 2
    for r in records:  # image files are named by scene and camera only
        for v in r["views"]:
            assert re.fullmatch(r"images/scene-\d{4}/cam\d\.png", v["image_path"]), v["image_path"]
            assert v["image_path"] == f"images/{r['scene']}/{v['view_id']}.png"


def test_answer_letters_are_balanced_per_type(records: list[dict[str, Any]]) -> None:
    for qtype in TASK_TYPES:
        rs = [r for r in records if r["question_type"] == qtype]
        counts = Counter(r["answer"] for r in rs)
        n_options = len(rs[0]["options"])
        full = [counts.get(letter, 0) for letter in OPTION_LETTERS[:n_options]]
        assert max(full) - min(full) <= 1, (qtype, counts)


def test_scenes_hold_a_few_questions_each(records: list[dict[str, Any]]) -> None:
    per_scene = Counter(r["scene"] for r in records)
    assert max(per_scene.values()) <= 6
    assert len(per_scene) < len(records)  # scenes are shared


# ------------------------------------------------------------------------------ answers from geometry


def _project(cam: dict[str, Any], p: np.ndarray) -> tuple[float, float, float]:
    """(x, y, depth) of a world point, from the stored camera only."""
    pos, tgt = np.array(cam["position"]), np.array(cam["target"])
    fwd = (tgt - pos) / np.linalg.norm(tgt - pos)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    rel = p - pos
    z = float(rel @ fwd)
    return (
        cam["focal_px"] * float(rel @ right) / z + cam["width"] / 2,
        cam["focal_px"] * float(rel @ down) / z + cam["height"] / 2,
        z,
    )


def _object(md: dict[str, Any], oid: str) -> SceneObject:
    o = md["objects"][oid]
    return SceneObject(
        oid,
        Shape(o["shape"], tuple(o["dims"])),
        tuple(o["centre"]),
        tuple(tuple(row) for row in o["rotation"]),
        o["colour"],
    )


def _brute_gap(a: SceneObject, b: SceneObject) -> float:
    pa, pb = a.surface(0.02), b.surface(0.02)
    return min(float(np.linalg.norm(pa[i : i + 256, None] - pb[None], axis=2).min()) for i in range(0, len(pa), 256))


def expected_answer(r: dict[str, Any]) -> str:
    """The answer letter recomputed from the record's stored geometry alone."""
    md = r["metadata"]
    ro = md["region_objects"]
    first, second = r["views"][0]["view_id"], r["views"][1]["view_id"]
    geo = md["geometry"]
    cams = md["cameras"]

    def g(oid: str, view: str, key: str) -> Any:
        return geo[oid][view][key]

    def centre(oid: str) -> np.ndarray:
        return np.array(md["objects"][oid]["centre"])

    def yes(flag: bool) -> str:
        return "A" if flag else "B"

    def one(flags: list[bool]) -> str:
        assert sum(flags) == 1, flags
        return OPTION_LETTERS[flags.index(True)]

    t = r["question_type"]
    if t in ("Q1", "Q2"):
        return one([c == ro[0] for c in ro[1:]])
    if t == "Q3":
        hits = [c == ro[3] for c in ro[:3]]
        return one(hits) if any(hits) else "D"
    if t == "Q4":
        labels = "XYZ"
        want = f"object 1 is {labels[ro[2:5].index(ro[0])]} and object 2 is {labels[ro[2:5].index(ro[1])]}"
        return one([o.split(". ", 1)[1] == want for o in r["options"]])
    if t == "Q5":
        return yes(ro[0] == ro[1])
    if t == "Q6":
        vis = g(ro[0], second, "visible_px")
        assert vis == 0 or vis >= MIN_REF_PX
        return yes(vis > 0)
    if t == "Q7":
        return one([g(o, second, "visible_px") == 0 for o in ro])
    if t == "Q8":
        assert 0 < g(ro[0], second, "visible_px") < g(ro[0], second, "full_px")
        return one([g(ro[0], second, "occluder") == c for c in ro[1:]])
    if t == "Q9":
        d = [float(np.linalg.norm(centre(c) - centre(ro[0]))) for c in ro[1:]]
        best = int(np.argmin(d))
        assert all(d[best] <= 0.75 * x for i, x in enumerate(d) if i != best)
        return OPTION_LETTERS[best]
    if t == "Q10":
        ratio = g(ro[0], second, "apparent_size") / g(ro[0], first, "apparent_size")
        assert len(ro) == 1 and (ratio >= 1.2 or ratio <= 0.83)  # marked in the first image only
        return yes(ratio > 1)
    if t == "Q11":
        fr = [g(o, first, "visible_fraction") for o in ro]
        return one([x == min(fr) for x in fr])
    if t == "Q12":
        assert len(ro) == 1  # marked in the first image only
        return "A" if g(ro[0], first, "visible_fraction") > g(ro[0], second, "visible_fraction") else "B"
    if t == "Q13":
        xa = [_project(cams[first], centre(o))[0] for o in ro]
        xb = [_project(cams[second], centre(o))[0] for o in ro]
        assert xa[0] < xa[1]  # the question's premise: the first is left of the second
        return yes(xb[0] > xb[1])
    if t in ("Q14", "Q16"):
        assert len(ro) == 2  # marked in the first image only (Q16 since cvb/6)
        if t == "Q14":
            shift = [
                float(
                    np.hypot(
                        *(
                            np.array(_project(cams[second], centre(o))[:2])
                            - np.array(_project(cams[first], centre(o))[:2])
                        )
                    )
                )
                for o in ro[:2]
            ]
        else:
            shift = [g(o, second, "apparent_size") / g(o, first, "apparent_size") for o in ro[:2]]
        return "A" if shift[0] > shift[1] else "B"
    if t == "Q15":
        za = [_project(cams[first], centre(o))[2] for o in ro]
        zb = [_project(cams[second], centre(o))[2] for o in ro]
        assert za[0] < za[1]  # premise: the first is nearer in the first image
        return yes(zb[0] < zb[1])
    if t == "Q17":
        gap = _brute_gap(_object(md, ro[0]), _object(md, ro[1]))
        assert gap <= CONTACT_EPS + 0.02 or gap >= APART_MIN - 0.02
        return yes(gap <= CONTACT_EPS + 0.02)
    raise AssertionError(f"unknown type {t}")


def test_answers_recomputed_from_the_stored_geometry_match(records: list[dict[str, Any]]) -> None:
    for r in records:
        assert expected_answer(r) == r["answer"], r["sample_id"]


def test_the_loader_reads_every_record(cvb_jsonl: Path) -> None:
    items = list(iter_crossviewbench(cvb_jsonl, cvb_jsonl.parent))
    assert len(items) == 17 * CVB_PER_TYPE
    bad = [str(i) for i in items if not isinstance(i, Sample)]
    assert bad == []
    samples = [i for i in items if isinstance(i, Sample)]
    assert {s.task_type for s in samples} == set(TASK_TYPES)
    assert all(s.answer is not None and s.option(s.answer) is not None for s in samples)


def test_same_seed_gives_byte_identical_files(cvb_jsonl: Path, tmp_path: Path) -> None:
    again = generate_crossviewbench(tmp_path / "again", CVB_PER_TYPE, CVB_SEED)
    first_files = sorted(p.relative_to(cvb_jsonl.parent) for p in cvb_jsonl.parent.rglob("*") if p.is_file())
    second_files = sorted(p.relative_to(again.parent) for p in again.parent.rglob("*") if p.is_file())
    assert first_files == second_files
    for rel in first_files:
        assert (cvb_jsonl.parent / rel).read_bytes() == (again.parent / rel).read_bytes(), rel


def test_another_seed_gives_other_questions(cvb_jsonl: Path, tmp_path: Path) -> None:
    other = generate_crossviewbench(tmp_path / "other", 1, CVB_SEED + 1)
    assert other.read_text() != cvb_jsonl.read_text()
    assert len(_records(other)) == 17


def _pixels(cam: dict[str, Any], obj: SceneObject) -> set[tuple[int, int]]:
    """The in-frame pixels that an object's surface samples project to (stored camera only)."""
    pts = [_project(cam, p) for p in obj.surface(0.01)]
    return {(int(x), int(y)) for x, y, z in pts if z > 0 and 0 <= x < cam["width"] and 0 <= y < cam["height"]}


def test_q17_pairs_overlap_in_both_images(records: list[dict[str, Any]]) -> None:
    """Touching or not, a Q17 pair's projections overlap in both images: the second image's
    overlap must not tell contact (a pair overlapping in one image only is seldom touching)."""
    asked = [r for r in records if r["question_type"] == "Q17"]
    assert asked
    for r in asked:
        md = r["metadata"]
        p, q = (_object(md, o) for o in md["region_objects"])
        for view in r["views"]:
            cam = md["cameras"][view["view_id"]]
            assert _pixels(cam, p) & _pixels(cam, q), (r["sample_id"], view["view_id"])
        assert min(md["facts"]["projection_overlap_px"], md["facts"]["projection_overlap_px_second"]) >= 40
