"""Shared pieces of the question generators: limits, the Ask/Draft/Ref types and scene helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from cvbench.tasks.synthetic.facts import ObjectInView, SceneFacts
from cvbench.tasks.synthetic.layout import appearance_key

T = TypeVar("T")

MIN_REF_PX = 350  # a referenced region shows at least this many pixels
CONTACT_EPS = 0.02  # surfaces this close (world units) are touching
APART_MIN = 0.15  # surfaces at least this far apart are clearly not touching
YES_NO = ("yes", "no")
ANCHOR_MAX_DIST = 1.0  # an anchor's centre lies at most this far from the key object's centre
ANCHOR_RATIO = 0.6  # ... and at most this share of its distance to any look-alike of the key object
ANCHOR_MIN_PX = 200  # ... and shows at least this many pixels in both views
# task types always asked with look-alike distractors (the key object has a visible look-alike
# and an anchor)
# (Q6 since cvbench-synth-cvb/7: "is it visible there?" with a look-alike in the second image
# either way, so that seeing its colour there answers nothing)
LOOKALIKE_TYPES: tuple[str, ...] = ("Q1", "Q2", "Q3", "Q4", "Q5", "Q6", "Q9", "Q10", "Q12", "Q14", "Q16")
# task types asked half with, half without a visible look-alike of their key object (planned,
# balanced): Q7's invisible object, Q8's hidden object (since cvbench-synth-cvb/6)
HALF_LOOKALIKE_TYPES: tuple[str, ...] = ("Q7", "Q8")
# task types that mark an object in one image only and need it found again in the other: their
# objects never have a visible look-alike (that would make them ambiguous)
UNMISTAKABLE_TYPES: tuple[str, ...] = ("Q13", "Q15", "Q17")

# how many options each task type has (yes/no questions: 2)
N_OPTIONS: dict[str, int] = {
    "Q1": 4,
    "Q2": 2,
    "Q3": 4,
    "Q4": 4,
    "Q5": 2,
    "Q6": 2,
    "Q7": 4,
    "Q8": 4,
    "Q9": 4,
    "Q10": 2,
    "Q11": 4,
    "Q12": 2,
    "Q13": 2,
    "Q14": 2,
    "Q15": 2,
    "Q16": 2,
    "Q17": 2,
}


@dataclass(frozen=True)
class Ref:
    """A region: object `object_id` as seen by camera `cam` (index into scene.cameras)."""

    cam: int
    object_id: str


@dataclass(frozen=True)
class Ask:
    """What the planner wants from one question."""

    target: int  # index of the option that must be correct
    # the key object must have a visible look-alike (LOOKALIKE_TYPES, half of HALF_LOOKALIKE_TYPES)
    lookalike: bool = False
    wording: int = 0  # index into TEMPLATES[task type]
    # the ranks the correct option may hold in the pixel shortcut's preference order (shortcut.py;
    # 0: the shortcut picks it); None: no constraint
    shortcut_ranks: tuple[int, ...] | None = None
    # ... and the related cues agree with it (shortcut.box_agrees)
    shortcut_strict: bool = True
    # Q7 (since cvb/7), Q11, Q16: how many other options' objects show fewer pixels (in the first
    # image) than the answer's; Q8 (since cvb/7): the same in the second image (planned evenly
    # over 0-3 / 0-1, so the visible size carries no information); None: any
    size_rank: int | None = None
    # the type's scene-design conditions (relaxed, like the shortcut ranks, when no scene offers
    # them): every candidate a look-alike of the key object (Q1, Q3, Q4, since cvb/7), the two
    # objects asked about look-alikes of each other (Q14, Q16, since cvb/7), exactly two of the
    # key object's group in plain view in the second image (Q6, since cvb/7), its
    # look-alikes in the second image telling the other answer (Q10: size, geometric.q10; Q12:
    # visible share, since cvb/7)
    design: bool = True
    # Q16: 1 when the answer's object is the nearer of the two to the first camera, 0 when the
    # farther (planned half each: the nearer one at first tends to grow less); None: any
    depth_rank: int | None = None
    # Q14: 1 when the answer's object (the one that shifts more) is the farther of the two from the
    # first image's centre, 0 when the nearer (planned half each, apart from depth_rank, which Q14
    # plans too since cvb/7: with cameras orbiting the scene's middle, what stands off-centre or
    # near the camera at first tends to shift more); None: any
    centre_rank: int | None = None
    # Q7: how many other options' objects have their visible centre lower in the first image than
    # the answer's (planned evenly over 0-3, apart from size_rank, since cvb/7: an object high up
    # in the first image, far back, vanished from the other view more often, and a probe read
    # the answer from that row alone in 46% of questions); None: any
    row_rank: int | None = None


@dataclass(frozen=True)
class Draft:
    task_type: str
    cams: tuple[int, int]  # cameras of the record's first and second image
    question: str  # with one <region> per ref, in order
    options: tuple[str, ...]  # option texts, without letters
    answer_index: int
    refs: tuple[Ref, ...]
    facts: dict[str, Any] = field(default_factory=dict)  # question-specific geometry behind the answer
    lookalike: bool = False  # an object to be found across the views has a visible look-alike
    wording: int = 0  # which template of the task type phrased the question
    # what of the plan the generator gave up to find a scene (crossviewbench.relaxations); empty
    # for most questions
    relaxed: tuple[str, ...] = ()


Generator = Callable[[SceneFacts, np.random.Generator, Ask], "Draft | None"]
# a type's question source: every exact question the scene offers for the ask, in seeded order
DraftSource = Callable[[SceneFacts, np.random.Generator, Ask], Iterator[Draft]]


def _seen(f: SceneFacts, cam: int, oid: str) -> ObjectInView:
    return f.seen[cam][oid]


def _refable(f: SceneFacts, cam: int) -> list[str]:
    return [oid for oid, s in f.seen[cam].items() if s.visible_px >= MIN_REF_PX]


def _shuffled(rng: np.random.Generator, items: list[Any]) -> list[Any]:
    return [items[i] for i in rng.permutation(len(items))]


def _cam_pairs(f: SceneFacts, rng: np.random.Generator) -> list[tuple[int, int]]:
    n = len(f.scene.cameras)
    return _shuffled(rng, [(a, b) for a in range(n) for b in range(n) if a != b])


def _similar_first(f: SceneFacts, target: str, pool: list[str], rng: np.random.Generator) -> list[str]:
    """Distractors most like the target first (look-alikes, then same colour / shape), ties in seeded order."""
    t = f.scene.obj(target)

    def score(oid: str) -> int:
        o = f.scene.obj(oid)
        return (
            3 * int(appearance_key(o) == appearance_key(t))
            + int(o.colour == t.colour)
            + int(o.shape.kind == t.shape.kind)
        )

    order = _shuffled(rng, pool)
    return sorted(order, key=lambda oid: -score(oid))


def _place(answer: T, others: list[T], index: int) -> list[T]:
    out = list(others)
    out.insert(index, answer)
    return out


def twins(f: SceneFacts, oid: str) -> list[str]:
    """The other objects of the scene that look exactly like `oid` (shape, size, colour)."""
    key = appearance_key(f.scene.obj(oid))
    return [o.object_id for o in f.scene.objects if o.object_id != oid and appearance_key(o) == key]


def holds_place(place: int | None, value: Mapping[str, float], answer: str, others: Iterable[str]) -> bool:
    """A planned place (`Ask.size_rank`, `Ask.row_rank`): exactly `place` of `others` have a smaller
    `value` than `answer` (None: any number)."""
    return place is None or sum(value[o] < value[answer] for o in others) == place


def all_lookalikes(f: SceneFacts, oid: str, others: list[str]) -> bool:
    """Every one of `others` is a look-alike of `oid` (nothing but the layout tells them apart)."""
    mates = set(twins(f, oid))
    return all(o in mates for o in others)


def visible_twins(f: SceneFacts, oid: str, cams: tuple[int, ...]) -> list[str]:
    """Look-alikes of `oid` with at least one visible pixel in one of `cams`."""
    return [t for t in twins(f, oid) if any(_seen(f, c, t).visible_px > 0 for c in cams)]


def anchor_for(f: SceneFacts, oid: str, cams: tuple[int, ...]) -> str | None:
    """The object that tells `oid` apart from its look-alikes in these views, or None.

    The anchor is the nearest object (centre to centre) whose shape-and-colour is unique in the
    scene; it must lie within ANCHOR_MAX_DIST of `oid`, be at least 1/ANCHOR_RATIO times as far
    from every look-alike, and show ANCHOR_MIN_PX pixels in every view."""
    mates = set(twins(f, oid))
    looks = [(o.shape.kind, o.colour) for o in f.scene.objects]
    pool = [
        o.object_id
        for o in f.scene.objects
        if o.object_id != oid and o.object_id not in mates and looks.count((o.shape.kind, o.colour)) == 1
    ]
    if not pool:
        return None
    anchor = min(pool, key=lambda o: f.centre_distance(oid, o))
    d = f.centre_distance(oid, anchor)
    if d > ANCHOR_MAX_DIST or any(ANCHOR_RATIO * f.centre_distance(m, anchor) < d for m in mates):
        return None
    if any(_seen(f, c, anchor).visible_px < ANCHOR_MIN_PX for c in cams):
        return None
    return anchor


def _lookalike_ok(
    f: SceneFacts, keys: tuple[str, ...], cams: tuple[int, int], lookalike: bool, need_anchor: bool = True
) -> dict[str, Any] | None:
    """For a look-alike question: some key object has a visible look-alike and every key object
    with one is told apart by an anchor (unless the question itself names the correspondence:
    `need_anchor` False); returns the facts that show it ({"lookalikes": {key: [visible
    look-alikes]}, "anchors": {key: anchor}}). For a plain question: no key object has a visible
    look-alike; returns {}. None when the scene does not fit."""
    seen_twins = {k: visible_twins(f, k, cams) for k in keys}
    seen_twins = {k: v for k, v in seen_twins.items() if v}
    if not lookalike:
        return None if seen_twins else {}
    if not seen_twins:
        return None
    if not need_anchor:
        return {"lookalikes": seen_twins}
    anchors = {k: anchor_for(f, k, cams) for k in seen_twins}
    if any(a is None for a in anchors.values()):
        return None
    return {"lookalikes": seen_twins, "anchors": anchors}


def _with_anchors(facts: dict[str, Any], lookalike_facts: dict[str, Any]) -> dict[str, Any]:
    return {**facts, **lookalike_facts}


def _pairs(rng: np.random.Generator, objs: list[str]) -> list[tuple[str, str]]:
    return _shuffled(rng, [(p, q) for i, p in enumerate(objs) for q in objs[i + 1 :]])
