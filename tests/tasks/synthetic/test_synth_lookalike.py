"""Look-alike distractors: groups of identical objects, told apart only by the layout."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cvbench.core.seeding import rng_for
from cvbench.tasks.synthetic.crossviewbench import build_scenes
from cvbench.tasks.synthetic.facts import SceneFacts
from cvbench.tasks.synthetic.layout import appearance_key, crossview_scene
from cvbench.tasks.synthetic.questions import (
    ANCHOR_MAX_DIST,
    ANCHOR_MIN_PX,
    ANCHOR_RATIO,
    HALF_LOOKALIKE_TYPES,
    LOOKALIKE_TYPES,
    MIN_REF_PX,
    UNMISTAKABLE_TYPES,
    Draft,
)
from cvbench.tasks.synthetic.questions.geometric import CONTRARY_MIN_PX

from .conftest import CVB_PER_TYPE, CVB_SEED


@pytest.fixture(scope="module")
def records(cvb_jsonl: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in cvb_jsonl.read_text(encoding="utf-8").splitlines()]


def test_layouts_contain_groups_of_identical_objects() -> None:
    with_group = 0
    for k in range(8):
        scene = crossview_scene(f"s{k}", rng_for(21, "lookalike-layout", k), 160, 120)
        groups: dict[Any, list[Any]] = {}
        for o in scene.objects:
            groups.setdefault(appearance_key(o), []).append(o)
        for members in (g for g in groups.values() if len(g) > 1):
            with_group += 1
            assert 2 <= len(members) <= 4
            assert all(m.support is None for m in members)  # they stand on the ground
            # the group's colour belongs to the group alone
            assert sum(o.colour == members[0].colour for o in scene.objects) == len(members)
            decals = [m.decal for m in members]
            assert all(d is None for d in decals) or (
                all(d is not None and d.kind == "marker" for d in decals)
                and len({d.value for d in decals if d}) == len(decals)
            )
    assert with_group >= 2


def test_every_lookalike_type_question_has_lookalikes(records: list[dict[str, Any]]) -> None:
    for r in records:
        assert isinstance(r["metadata"]["lookalike"], bool)
    for qtype in LOOKALIKE_TYPES:
        flags = Counter(r["metadata"]["lookalike"] for r in records if r["question_type"] == qtype)
        assert flags == {True: CVB_PER_TYPE}, (qtype, flags)
    for qtype in HALF_LOOKALIKE_TYPES:  # half with a look-alike (counts differ by at most one)
        flags = Counter(r["metadata"]["lookalike"] for r in records if r["question_type"] == qtype)
        assert abs(flags[True] - flags[False]) <= 1, (qtype, flags)
    for qtype in UNMISTAKABLE_TYPES:
        assert not any(r["metadata"]["lookalike"] for r in records if r["question_type"] == qtype)


# ------------------------------------------------------------------------------ answerable from the layout


def _key_objects(r: dict[str, Any]) -> list[str]:
    """The objects a person must find again in the other image."""
    ro = r["metadata"]["region_objects"]
    return {
        "Q1": ro[:1],
        "Q2": ro[:1],
        "Q3": ro[3:4],
        "Q4": ro[:2],
        "Q5": ro[:1],
        "Q6": ro[:1],
        "Q9": ro[:1],
        "Q10": ro[:1],
        "Q12": ro[:1],
        "Q14": ro[:2],
        "Q16": ro[:2],
        "Q7": [r["metadata"]["facts"].get("absent")],
        "Q8": ro[:1],
    }[r["question_type"]]


def _look(o: dict[str, Any]) -> tuple[Any, ...]:
    return o["shape"], tuple(o["dims"]), o["colour"], tuple(o["rotation"][2])


def test_every_lookalike_question_is_solvable_by_the_layout(records: list[dict[str, Any]]) -> None:
    checked = 0
    planned = LOOKALIKE_TYPES + HALF_LOOKALIKE_TYPES
    for r in (r for r in records if r["metadata"]["lookalike"] and r["question_type"] in planned):
        md, t = r["metadata"], r["question_type"]
        objs = md["objects"]
        ro = md["region_objects"]
        views = [v["view_id"] for v in r["views"]]
        centre = {oid: np.array(o["centre"]) for oid, o in objs.items()}
        twins = {k: [o for o in objs if o != k and _look(objs[o]) == _look(objs[k])] for k in _key_objects(r)}
        listed = md["facts"]["lookalikes"]
        assert listed and set(listed) <= set(twins)
        for k, seen in listed.items():
            assert seen and set(seen) <= set(twins[k])  # the listed look-alikes really are identical
            for m in seen:  # ... and really visible in one of the two images
                assert max(md["geometry"][m][v]["visible_px"] for v in views) > 0
        # the distractors are appearance-identical to the object asked about
        if t in ("Q1", "Q2"):
            assert set(ro[1:]) & set(twins[ro[0]])
        if t == "Q3":
            assert set(ro[:3]) & set(twins[ro[3]])
        if t == "Q4":
            assert set(ro[2:]) & (set(twins[ro[0]]) | set(twins[ro[1]]))
        if t == "Q5":
            assert ro[0] == ro[1] or ro[1] in twins[ro[0]]
            assert any(md["geometry"][m][views[1]]["visible_px"] > 0 for m in listed[ro[0]])
        if t in ("Q7", "Q8"):  # the key object's look-alike is in plain view in the second image, unmarked
            assert any(
                md["geometry"][m][views[1]]["visible_px"] >= MIN_REF_PX and m not in ro
                for m in listed[_key_objects(r)[0]]
            )
        if t == "Q9":  # the query's look-alike is in the second image, unmarked
            assert any(md["geometry"][m][views[1]]["visible_px"] > 0 and m not in ro for m in listed[ro[0]])
        # every key object with a look-alike has an anchor that tells it apart
        anchors = md["facts"]["anchors"]
        assert set(anchors) == set(listed)
        looks = Counter((o["shape"], o["colour"]) for o in objs.values())
        for k, anchor in anchors.items():
            unique = [
                o for o in objs if o != k and o not in twins[k] and looks[(objs[o]["shape"], objs[o]["colour"])] == 1
            ]
            dist = {o: float(np.linalg.norm(centre[o] - centre[k])) for o in unique}
            assert anchor == min(unique, key=lambda o: dist[o])
            assert dist[anchor] <= ANCHOR_MAX_DIST
            for m in twins[k]:  # every look-alike in the scene stands clearly farther from the anchor
                assert ANCHOR_RATIO * float(np.linalg.norm(centre[m] - centre[anchor])) >= dist[anchor]
            for v in views:
                assert md["geometry"][anchor][v]["visible_px"] >= ANCHOR_MIN_PX
            checked += 1
    assert checked >= 5


# ------------------------------------------------------------------------------ plain questions stay plain


def _keys_of(d: Draft) -> list[str]:
    f = d.facts
    keys = {
        "Q1": lambda: [f["query"]],
        "Q2": lambda: [f["query"]],
        "Q3": lambda: [f["query"]],
        "Q4": lambda: f["first_image_objects"],
        "Q5": lambda: [f["first"]],
        "Q9": lambda: [f["query"]],
        "Q10": lambda: [f["object"]],
        "Q12": lambda: [f["object"]],
        "Q14": lambda: f["objects"],
        "Q16": lambda: f["objects"],
        "Q6": lambda: [f["object"]],
        "Q7": lambda: f["objects"],
        "Q8": lambda: [f["object"]],
        "Q13": lambda: [f["left_in_first"], f["right_in_first"]],
        "Q15": lambda: [f["nearer_in_first"], f["farther_in_first"]],
        "Q17": lambda: f["objects"],
    }
    return list(keys[d.task_type]())


def _visible_twin(facts: SceneFacts, oid: str, cams: tuple[int, int]) -> bool:
    me = facts.scene.obj(oid)
    return any(
        o.object_id != oid
        and appearance_key(o) == appearance_key(me)
        and any(facts.seen[c][o.object_id].visible_px > 0 for c in cams)
        for o in facts.scene.objects
    )


def test_the_lookalike_flag_matches_the_scene() -> None:
    slots = build_scenes(1, CVB_SEED + 3, 320, 240)
    n_true = 0
    for slot in slots:
        for _, d in slot.drafts:
            if d.task_type not in LOOKALIKE_TYPES + HALF_LOOKALIKE_TYPES + UNMISTAKABLE_TYPES:
                continue
            has = any(_visible_twin(slot.facts, k, d.cams) for k in _keys_of(d))
            assert has == d.lookalike, (d.task_type, d.facts)
            n_true += d.lookalike
            if d.task_type in UNMISTAKABLE_TYPES:
                assert not d.lookalike
    assert n_true >= 1


def test_q10_lookalikes_change_size_the_other_way(records: list[dict[str, Any]]) -> None:
    """Q10 (since cvb/6): every look-alike showing in the second image shows fewer visible pixels
    there than the object in the first image when the object grows, more when it shrinks, so
    reading the size of whichever look-alike matches best says nothing."""
    checked = 0
    for r in (r for r in records if r["question_type"] == "Q10"):
        md = r["metadata"]
        first, second = (v["view_id"] for v in r["views"])
        q = md["region_objects"][0]
        g = md["geometry"]
        grows = r["answer"] == "A"
        shown = [g[m][second]["visible_px"] for m in md["facts"]["lookalikes"][q]]
        shown = [px for px in shown if px >= CONTRARY_MIN_PX]
        assert shown, r["sample_id"]
        own = g[q][first]["visible_px"]
        assert all(px < own if grows else px > own for px in shown), r["sample_id"]
        checked += 1
    assert checked == CVB_PER_TYPE
