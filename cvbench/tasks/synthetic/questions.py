"""Question generators for the 17 CrossViewBench task types, over one measured scene.

Each generator takes the scene's facts, a seeded Generator and an `Ask` (the index of the option
that must be correct, so letters and yes/no stay balanced; whether the question must involve
look-alike objects; which wording to use), and returns a `Draft` or None when the scene has no
unambiguous question of that kind. Answers come only from the measured geometry (facts.py);
every comparison keeps a margin so no answer rests on a few pixels.

Look-alikes: objects of one shape, size and colour (layout.appearance_key). A question whose
key object (the one to be found again across the views) has a visible look-alike is only asked
when the layout tells them apart: the key object has an "anchor", the nearest object of a
shape-and-colour unique in the scene, visible in both views, clearly nearer to it than to any
of its look-alikes (`anchor_for`). Then a person with both views can always answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import permutations
from typing import Any, TypeVar

import numpy as np

from cvbench.core.types import REGION_PLACEHOLDER as R
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
# task types asked with and without look-alike distractors (about half each)
LOOKALIKE_TYPES: tuple[str, ...] = ("Q1", "Q2", "Q3", "Q4", "Q5", "Q9", "Q14")
# task types that mark an object in one image only and need it found again in the other: their
# objects never have a visible look-alike (that would make them ambiguous)
UNMISTAKABLE_TYPES: tuple[str, ...] = ("Q6", "Q7", "Q8", "Q13", "Q15", "Q17")

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
    lookalike: bool = False  # the key object must have a visible look-alike (LOOKALIKE_TYPES only)
    wording: int = 0  # index into TEMPLATES[task type]


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


Generator = Callable[[SceneFacts, np.random.Generator, Ask], "Draft | None"]


# ------------------------------------------------------------------------------ wording


def _numbered(word: str, n: int, style: str = "is") -> str:
    """style "is": 'candidate 1 is <region>, candidate 2 is <region> and candidate 3 is <region>';
    style "paren": '<region> (candidate 1), <region> (candidate 2) and <region> (candidate 3)'."""
    parts = [f"{word} {k + 1} is {R}" if style == "is" else f"{R} ({word} {k + 1})" for k in range(n)]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


# Two or three phrasings per task type with the same meaning, the same regions in the same order
# and the same options; fields: {r} a region, {cand4}/{obj3}/{obj4} numbered lists ("candidate 1
# is <region>, ..."), {cand4p}/{obj3p}/{obj4p} the same lists as "<region> (candidate 1), ...".
TEMPLATES: dict[str, tuple[str, ...]] = {
    "Q1": (
        (
            "The object {r} is marked in the first image. Four objects are marked in the second image: {cand4}. "
            "Which candidate is the same physical object as the one marked in the first image?"
        ),
        (
            "Look at {r} in the first image. In the second image four objects are marked: {cand4p}. Which "
            "candidate shows this same physical object?"
        ),
        (
            "In the first image, {r} is marked. Find the same physical object in the second image among the four "
            "marked candidates: {cand4}. Which candidate is it?"
        ),
    ),
    "Q2": (
        (
            "The object {r} is marked in the first image. Two objects are marked in the second image: the first "
            "is {r} and the second is {r}. Which of the two is the same physical object as the one marked in the "
            "first image?"
        ),
        (
            "Consider {r} in the first image. The second image marks two objects: the first is {r} and the second"
            " is {r}. Which of them is the same physical object as the one in the first image?"
        ),
        (
            "The first image marks {r}. Of the two objects marked in the second image, {r} (the first) and {r} "
            "(the second), which one is the same physical object?"
        ),
    ),
    "Q3": (
        (
            "Three objects are marked in the first image: {obj3}. Which of them is the same physical object as "
            "{r} in the second image?"
        ),
        (
            "The first image has three marked objects: {obj3p}. The second image marks {r}. Which of the three, "
            "if any, is the same physical object?"
        ),
        (
            "Three objects are marked in the first image ({obj3}) and one in the second image ({r}). Is the "
            "object marked in the second image one of the three, and if so, which?"
        ),
    ),
    "Q4": (
        (
            "Two objects are marked in the first image: object 1 is {r} and object 2 is {r}. Three objects are "
            "marked in the second image: X is {r}, Y is {r} and Z is {r}. Which matching of the first image's "
            "objects to the second image's objects is correct?"
        ),
        (
            "In the first image, object 1 is {r} and object 2 is {r}. In the second image, three objects are "
            "marked: X is {r}, Y is {r} and Z is {r}. Which option pairs each object of the first image with the "
            "same physical object in the second image?"
        ),
        (
            "The first image marks {r} (object 1) and {r} (object 2); the second image marks {r} (X), {r} (Y) and"
            " {r} (Z). Which correspondence between them is correct?"
        ),
    ),
    "Q5": (
        "Are {r} in the first image and {r} in the second image the same physical object?",
        ("The first image marks {r} and the second image marks {r}. Do both marks show the same physical object?"),
        "Do {r} (first image) and {r} (second image) show one and the same physical object?",
    ),
    "Q6": (
        "The object {r} is marked in the first image. Is any part of this object visible in the second image?",
        "Consider {r} in the first image. Can any part of this object be seen in the second image?",
        "Is the object {r} from the first image at least partly visible in the second image?",
    ),
    "Q7": (
        (
            "Four objects are marked in the first image: {obj4}. Which of them cannot be seen at all in the "
            "second image?"
        ),
        ("The first image marks four objects: {obj4p}. Which of them is completely invisible in the second image?"),
        (
            "Four objects are marked in the first image: {obj4}. One of them does not appear anywhere in the "
            "second image. Which one?"
        ),
    ),
    "Q8": (
        (
            "The object {r} is marked in the first image. In the second image this object is partly hidden behind"
            " another object. Which of the objects marked in the second image hides it? {Cand4}."
        ),
        (
            "The first image marks {r}. In the second image part of this object is hidden behind another object. "
            "Which marked object in the second image blocks the view of it? The candidates are {cand4p}."
        ),
        (
            "Find the object {r} from the first image in the second image, where something covers part of it. "
            "Which of the marked candidates in the second image is covering it? {Cand4}."
        ),
    ),
    "Q9": (
        (
            "The object {r} is marked in the first image. Which of the objects marked in the second image is "
            "closest to it in 3D space (centre to centre)? {Cand4}."
        ),
        (
            "Consider {r} in the first image. Among the objects marked in the second image, {cand4p}, which one "
            "has its centre nearest to this object's centre in 3D?"
        ),
        (
            "The first image marks {r}. Which object marked in the second image is the nearest to it in 3D space,"
            " measured between centres? {Cand4}."
        ),
    ),
    "Q10": (
        (
            "The same object is marked in both images: {r} in the first image and {r} in the second. Does it "
            "appear larger in the second image than in the first?"
        ),
        (
            "The same object appears as {r} in the first image and as {r} in the second image. Is it bigger in "
            "the second image than in the first?"
        ),
        (
            "Compare {r} in the first image with {r} in the second image (the same object). Does the object look "
            "larger in the second image?"
        ),
    ),
    "Q11": (
        (
            "Four objects are marked in the first image: {obj4}. In the first image, which of them is the least "
            "complete, with the largest share of the object hidden behind other objects or cut off by the image "
            "border?"
        ),
        (
            "The first image marks four objects: {obj4p}. Which of them is the least complete in the first image,"
            " that is, has the largest part hidden by other objects or cut off at the image border?"
        ),
        (
            "Four objects are marked in the first image: {obj4}. Which one is least complete there (most occluded"
            " or truncated by the frame)?"
        ),
    ),
    "Q12": (
        (
            "The same object is marked in both images: {r} in the first image and {r} in the second. In which "
            "image is a larger share of the object visible (less of it hidden or cut off)?"
        ),
        (
            "The same object is marked as {r} in the first image and as {r} in the second image. Which image "
            "shows a bigger share of this object (less occluded or cut off)?"
        ),
        (
            "Compare {r} in the first image with {r} in the second image (the same object). In which image is "
            "more of the object visible?"
        ),
    ),
    "Q13": (
        (
            "In the first image, {r} is to the left of {r}. In the second image, is their left-right order "
            "reversed, with the first of them now to the right of the second?"
        ),
        (
            "The first image shows {r} to the left of {r}. Does the second image show the first of them to the "
            "right of the second, that is, is their left-right order reversed?"
        ),
        (
            "In the first image, {r} is left of {r}. Seen from the second image's camera, has their left-right "
            "order swapped?"
        ),
    ),
    "Q14": (
        (
            "Two objects are marked in both images: {r} and {r} in the first image, and the same two objects, in "
            "the same order, as {r} and {r} in the second image. Which of the two objects shifts more in image "
            "position (pixels) between the first and the second image?"
        ),
        (
            "The same two objects are marked in both images, in the same order: {r} and {r} in the first image, "
            "{r} and {r} in the second image. Which of the two moves farther in pixel position from the first "
            "image to the second?"
        ),
        (
            "Two objects are marked in each image ({r} and {r} in the first, the same two in the same order as "
            "{r} and {r} in the second). Which object's image position changes more between the two images?"
        ),
    ),
    "Q15": (
        (
            "In the first image, {r} is closer to the camera than {r}. Is the first of them also closer to the "
            "camera than the second in the second image?"
        ),
        (
            "From the first camera, {r} is nearer than {r}. From the second camera, is the first of them still "
            "nearer than the second?"
        ),
        (
            "In the first image, {r} is in front of {r} (closer to the camera). Does the same depth order hold in"
            " the second image?"
        ),
    ),
    "Q16": (
        (
            "Two objects are marked in both images: {r} and {r} in the first image, and the same two objects, in "
            "the same order, as {r} and {r} in the second image. Which of the two objects grows more (or shrinks "
            "less) in apparent size from the first image to the second?"
        ),
        (
            "The same two objects are marked in both images, in the same order: {r} and {r} in the first image, "
            "{r} and {r} in the second image. Which of the two gains more in apparent size (or loses less) from "
            "the first image to the second?"
        ),
        (
            "Two objects are marked in each image ({r} and {r} in the first, the same two in the same order as "
            "{r} and {r} in the second). Relative to its size in the first image, which object looks larger by "
            "the bigger factor in the second image?"
        ),
    ),
    "Q17": (
        (
            "In the first image, {r} and {r} overlap in the picture. Are these two objects physically touching "
            "each other in 3D? The second image shows the same scene from another viewpoint."
        ),
        (
            "In the first image, {r} and {r} overlap. Do these two objects actually touch each other in 3D? The "
            "second image shows the scene from another viewpoint."
        ),
        (
            "In the first image the projections of {r} and {r} overlap. Using the second image (another "
            "viewpoint) as well: are the two objects in physical contact?"
        ),
    ),
}


def question_text(task_type: str, wording: int) -> str:
    """The question of `task_type` in phrasing `wording` (an index into TEMPLATES[task_type])."""
    templates = TEMPLATES[task_type]
    if not 0 <= wording < len(templates):
        raise ValueError(f"{task_type} has {len(templates)} wordings, got index {wording}")
    fields = {"r": R}
    for word, key, n in (("candidate", "cand", 4), ("object", "obj", 3), ("object", "obj", 4)):
        fields[f"{key}{n}"] = _numbered(word, n)
        fields[f"{key}{n}p"] = _numbered(word, n, "paren")
    fields["Cand4"] = _numbered("Candidate", 4)
    return templates[wording].format(**fields)


# ------------------------------------------------------------------------------ helpers


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


# ------------------------------------------------------------------------------ correspondence


def q1(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Draft | None:
    for a, b in _cam_pairs(f, rng):
        ref_b = _refable(f, b)
        for q in _shuffled(rng, sorted(set(_refable(f, a)) & set(ref_b))):
            pool = [o for o in ref_b if o != q]
            anchors = _lookalike_ok(f, (q,), (a, b), ask.lookalike)
            if len(pool) < 3 or anchors is None or (ask.lookalike and not set(twins(f, q)) & set(pool)):
                continue
            cands = _place(q, _similar_first(f, q, pool, rng)[:3], ask.target)
            return Draft(
                "Q1",
                (a, b),
                question_text("Q1", ask.wording),
                tuple(f"candidate {k + 1}" for k in range(4)),
                ask.target,
                (Ref(a, q),) + tuple(Ref(b, c) for c in cands),
                _with_anchors({"query": q, "candidates": cands}, anchors),
                ask.lookalike,
                ask.wording,
            )
    return None


def q2(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Draft | None:
    for a, b in _cam_pairs(f, rng):
        ref_b = _refable(f, b)
        for q in _shuffled(rng, sorted(set(_refable(f, a)) & set(ref_b))):
            pool = [o for o in ref_b if o != q]
            anchors = _lookalike_ok(f, (q,), (a, b), ask.lookalike)
            if not pool or anchors is None or (ask.lookalike and not set(twins(f, q)) & set(pool)):
                continue
            cands = _place(q, _similar_first(f, q, pool, rng)[:1], ask.target)
            return Draft(
                "Q2",
                (a, b),
                question_text("Q2", ask.wording),
                ("the first one", "the second one"),
                ask.target,
                (Ref(a, q), Ref(b, cands[0]), Ref(b, cands[1])),
                _with_anchors({"query": q, "candidates": cands}, anchors),
                ask.lookalike,
                ask.wording,
            )
    return None


def q3(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Draft | None:
    for a, b in _cam_pairs(f, rng):
        ref_a = _refable(f, a)
        for q in _shuffled(rng, _refable(f, b)):
            pool = [o for o in ref_a if o != q]
            anchors = _lookalike_ok(f, (q,), (a, b), ask.lookalike)
            if anchors is None or (ask.lookalike and not set(twins(f, q)) & set(pool)):
                continue
            if ask.target < 3:
                if q not in ref_a or len(pool) < 2:
                    continue
                cands = _place(q, _similar_first(f, q, pool, rng)[:2], ask.target)
            else:
                if len(pool) < 3:
                    continue
                cands = _similar_first(f, q, pool, rng)[:3]
            return Draft(
                "Q3",
                (a, b),
                question_text("Q3", ask.wording),
                ("object 1", "object 2", "object 3", "none of them"),
                ask.target,
                tuple(Ref(a, c) for c in cands) + (Ref(b, q),),
                _with_anchors({"query": q, "candidates": cands}, anchors),
                ask.lookalike,
                ask.wording,
            )
    return None


def q4(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Draft | None:
    labels = ("X", "Y", "Z")
    for a, b in _cam_pairs(f, rng):
        ref_b = _refable(f, b)
        both = sorted(set(_refable(f, a)) & set(ref_b))
        if len(both) < 2:
            continue
        if ask.lookalike:  # object 1 has a look-alike among the second image's objects; object 2 is one if possible
            firsts = [o for o in _shuffled(rng, both) if set(twins(f, o)) & set(ref_b)]
            if not firsts:
                continue
            p1 = firsts[0]
            mates_both = [o for o in both if o in twins(f, p1)]
            p2 = mates_both[0] if mates_both else next(o for o in _shuffled(rng, both) if o != p1)
        else:
            p1, p2 = _shuffled(rng, both)[:2]
        pool = [o for o in ref_b if o not in (p1, p2)]
        anchors = _lookalike_ok(f, (p1, p2), (a, b), ask.lookalike)
        if not pool or anchors is None:
            continue
        z = _similar_first(f, p1, pool, rng)[0]
        cands = _shuffled(rng, [p1, p2, z])
        correct = (labels[cands.index(p1)], labels[cands.index(p2)])
        wrong = [m for m in permutations(labels, 2) if m != correct]
        chosen = _place(correct, [wrong[int(i)] for i in rng.permutation(len(wrong))[:3]], ask.target)
        options = tuple(f"object 1 is {m[0]} and object 2 is {m[1]}" for m in chosen)
        refs = (Ref(a, p1), Ref(a, p2)) + tuple(Ref(b, c) for c in cands)
        return Draft(
            "Q4",
            (a, b),
            question_text("Q4", ask.wording),
            options,
            ask.target,
            refs,
            _with_anchors({"first_image_objects": [p1, p2], "second_image_objects": dict(zip(labels, cands))}, anchors),
            ask.lookalike,
            ask.wording,
        )
    return None


def q5(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Draft | None:
    for a, b in _cam_pairs(f, rng):
        ref_b = _refable(f, b)
        for q in _shuffled(rng, _refable(f, a)):
            anchors = _lookalike_ok(f, (q,), (a, b), ask.lookalike)
            if anchors is None:
                continue
            mates_b = [o for o in ref_b if o in twins(f, q)]
            if ask.lookalike and not mates_b:
                continue
            if ask.target == 0:
                if q not in ref_b:
                    continue
                other = q
            else:
                pool = [o for o in ref_b if o != q]
                if not pool:
                    continue
                other = _similar_first(f, q, pool, rng)[0]
            return Draft(
                "Q5",
                (a, b),
                question_text("Q5", ask.wording),
                YES_NO,
                ask.target,
                (Ref(a, q), Ref(b, other)),
                _with_anchors({"first": q, "second": other}, anchors),
                ask.lookalike,
                ask.wording,
            )
    return None


# ------------------------------------------------------------------------------ visibility & occlusion


def q6(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Draft | None:
    target = ask.target
    for a, b in _cam_pairs(f, rng):
        for q in _shuffled(rng, _refable(f, a)):
            vis_b = _seen(f, b, q).visible_px
            if visible_twins(f, q, (a, b)):  # "is it visible there?" needs the object to be unmistakable
                continue
            if (target == 0 and vis_b >= MIN_REF_PX) or (target == 1 and vis_b == 0):
                text = question_text("Q6", ask.wording)
                return Draft(
                    "Q6", (a, b), text, YES_NO, target, (Ref(a, q),), {"object": q, "visible_px_second": vis_b}
                )
    return None


def q7(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Draft | None:
    target = ask.target
    for a, b in _cam_pairs(f, rng):
        ref_a = [o for o in _refable(f, a) if not visible_twins(f, o, (a, b))]
        absent = [o for o in ref_a if _seen(f, b, o).visible_px == 0]
        present = [o for o in ref_a if _seen(f, b, o).visible_px >= MIN_REF_PX]
        if not absent or len(present) < 3:
            continue
        q = _shuffled(rng, absent)[0]
        cands = _place(q, _shuffled(rng, present)[:3], target)
        text = question_text("Q7", ask.wording)
        return Draft(
            "Q7",
            (a, b),
            text,
            tuple(f"object {k + 1}" for k in range(4)),
            target,
            tuple(Ref(a, c) for c in cands),
            {"absent": q, "objects": cands},
        )
    return None


def q8(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Draft | None:
    target = ask.target
    for a, b in _cam_pairs(f, rng):
        ref_b = _refable(f, b)
        for t in _shuffled(rng, _refable(f, a)):
            sb = _seen(f, b, t)
            if visible_twins(f, t, (a, b)):
                continue
            if sb.visible_px < 150 or sb.occluder is None or sb.occluder_share < 0.85:
                continue
            if sb.occluded_px < max(300, 0.2 * sb.in_frame_px) or sb.occluder not in ref_b:
                continue
            if _seen(f, a, t).visible_fraction < 0.5:
                continue
            occ = sb.occluder
            pool = [o for o in ref_b if o not in (t, occ)]
            if len(pool) < 3:
                continue
            tx, ty = sb.centre_px
            near = sorted(
                _shuffled(rng, pool),
                key=lambda o: np.hypot(_seen(f, b, o).centre_px[0] - tx, _seen(f, b, o).centre_px[1] - ty),
            )
            cands = _place(occ, near[:3], target)
            text = question_text("Q8", ask.wording)
            return Draft(
                "Q8",
                (a, b),
                text,
                tuple(f"candidate {k + 1}" for k in range(4)),
                target,
                (Ref(a, t),) + tuple(Ref(b, c) for c in cands),
                {
                    "object": t,
                    "occluder": occ,
                    "occluder_share": round(sb.occluder_share, 4),
                    "occluded_px_second": sb.occluded_px,
                    "candidates": cands,
                },
            )
    return None


# ------------------------------------------------------------------------------ geometric


def q9(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Draft | None:
    target = ask.target
    for a, b in _cam_pairs(f, rng):
        ref_b = _refable(f, b)
        for q in _shuffled(rng, _refable(f, a)):
            pool = sorted((o for o in ref_b if o != q), key=lambda o: f.centre_distance(q, o))
            if len(pool) < 4:
                continue
            d = [f.centre_distance(q, o) for o in pool]
            if d[0] > 0.75 * d[1]:
                continue
            # look-alike variant: the query has an unmarked look-alike in the second image, so
            # finding the query there (and what is near it) takes the layout, not colour
            anchors = _lookalike_ok(f, (q,), (a, b), ask.lookalike)
            mates = set(twins(f, q))
            if anchors is None:
                continue
            rest = [o for o in _shuffled(rng, pool[1:]) if not (ask.lookalike and o in mates)]
            if len(rest) < 3 or (ask.lookalike and not mates & set(ref_b)):
                continue
            cands = _place(pool[0], rest[:3], target)
            text = question_text("Q9", ask.wording)
            return Draft(
                "Q9",
                (a, b),
                text,
                tuple(f"candidate {k + 1}" for k in range(4)),
                target,
                (Ref(a, q),) + tuple(Ref(b, c) for c in cands),
                _with_anchors(
                    {
                        "query": q,
                        "candidates": cands,
                        "centre_distances": [round(f.centre_distance(q, c), 4) for c in cands],
                    },
                    anchors,
                ),
                ask.lookalike,
                ask.wording,
            )
    return None


def _measurable_both(f: SceneFacts, a: int, b: int) -> list[str]:
    return sorted(
        o for o in set(_refable(f, a)) & set(_refable(f, b)) if _seen(f, a, o).measurable and _seen(f, b, o).measurable
    )


def q10(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Draft | None:
    target = ask.target
    for a, b in _cam_pairs(f, rng):
        for q in _shuffled(rng, _measurable_both(f, a, b)):
            ratio = _seen(f, b, q).apparent_size / _seen(f, a, q).apparent_size
            if (target == 0 and ratio >= 1.25) or (target == 1 and ratio <= 0.8):
                text = question_text("Q10", ask.wording)
                return Draft(
                    "Q10",
                    (a, b),
                    text,
                    YES_NO,
                    target,
                    (Ref(a, q), Ref(b, q)),
                    {"object": q, "size_ratio_second_to_first": round(ratio, 4)},
                )
    return None


def q11(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Draft | None:
    target = ask.target
    for a, b in _cam_pairs(f, rng):
        objs = [o for o in _refable(f, a) if _seen(f, a, o).measurable]
        if len(objs) < 4:
            continue
        frac = {o: _seen(f, a, o).visible_fraction for o in objs}
        order = sorted(_shuffled(rng, objs), key=lambda o: frac[o])
        least = order[0]
        if frac[least] > 0.75:
            continue
        others = [o for o in order[1:] if frac[o] >= frac[least] + 0.2]
        if len(others) < 3:
            continue
        cands = _place(least, _shuffled(rng, others)[:3], target)
        text = question_text("Q11", ask.wording)
        return Draft(
            "Q11",
            (a, b),
            text,
            tuple(f"object {k + 1}" for k in range(4)),
            target,
            tuple(Ref(a, c) for c in cands),
            {"objects": cands, "visible_fractions": [round(frac[c], 4) for c in cands]},
        )
    return None


def q12(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Draft | None:
    target = ask.target
    for a, b in _cam_pairs(f, rng):
        for q in _shuffled(rng, _measurable_both(f, a, b)):
            fa, fb = _seen(f, a, q).visible_fraction, _seen(f, b, q).visible_fraction
            if abs(fa - fb) < 0.3 or (0 if fa > fb else 1) != target:
                continue
            text = question_text("Q12", ask.wording)
            return Draft(
                "Q12",
                (a, b),
                text,
                ("the first image", "the second image"),
                target,
                (Ref(a, q), Ref(b, q)),
                {"object": q, "visible_fraction_first": round(fa, 4), "visible_fraction_second": round(fb, 4)},
            )
    return None


def _pairs(rng: np.random.Generator, objs: list[str]) -> list[tuple[str, str]]:
    return _shuffled(rng, [(p, q) for i, p in enumerate(objs) for q in objs[i + 1 :]])


def q13(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Draft | None:
    target = ask.target
    for a, b in _cam_pairs(f, rng):
        for p, q in _pairs(rng, _both_refable(f, a, b)):
            if visible_twins(f, p, (a, b)) or visible_twins(f, q, (a, b)):
                continue
            dxa = _seen(f, a, q).centre_px[0] - _seen(f, a, p).centre_px[0]
            dxb = _seen(f, b, q).centre_px[0] - _seen(f, b, p).centre_px[0]
            if min(abs(dxa), abs(dxb)) < 30:
                continue
            left, right = (p, q) if dxa > 0 else (q, p)
            flipped = (dxa > 0) != (dxb > 0)
            if (0 if flipped else 1) != target:
                continue
            text = question_text("Q13", ask.wording)
            return Draft(
                "Q13",
                (a, b),
                text,
                YES_NO,
                target,
                (Ref(a, left), Ref(a, right)),
                {
                    "left_in_first": left,
                    "right_in_first": right,
                    "centre_x_first": [round(_seen(f, a, o).centre_px[0], 2) for o in (left, right)],
                    "centre_x_second": [round(_seen(f, b, o).centre_px[0], 2) for o in (left, right)],
                },
            )
    return None


def _both_refable(f: SceneFacts, a: int, b: int) -> list[str]:
    return sorted(set(_refable(f, a)) & set(_refable(f, b)))


def q14(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Draft | None:
    target = ask.target
    for a, b in _cam_pairs(f, rng):
        pairs = _pairs(rng, _both_refable(f, a, b))
        if ask.lookalike:  # pairs of look-alikes first: then only the question's order says which is which
            pairs = sorted(pairs, key=lambda pq: pq[1] not in twins(f, pq[0]))
        for p, q in pairs:
            lookalike_facts = _lookalike_ok(f, (p, q), (a, b), ask.lookalike, need_anchor=False)
            if lookalike_facts is None:
                continue
            disp = {
                o: float(
                    np.hypot(
                        _seen(f, b, o).centre_px[0] - _seen(f, a, o).centre_px[0],
                        _seen(f, b, o).centre_px[1] - _seen(f, a, o).centre_px[1],
                    )
                )
                for o in (p, q)
            }
            big, small = (p, q) if disp[p] > disp[q] else (q, p)
            if disp[big] < 1.5 * disp[small] or disp[big] < 60:
                continue
            first, second = (big, small) if target == 0 else (small, big)
            text = question_text("Q14", ask.wording)
            return Draft(
                "Q14",
                (a, b),
                text,
                ("the first object", "the second object"),
                target,
                (Ref(a, first), Ref(a, second), Ref(b, first), Ref(b, second)),
                _with_anchors(
                    {"objects": [first, second], "displacement_px": [round(disp[first], 2), round(disp[second], 2)]},
                    lookalike_facts,
                ),
                ask.lookalike,
                ask.wording,
            )
    return None


def q15(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Draft | None:
    target = ask.target
    for a, b in _cam_pairs(f, rng):
        for p, q in _pairs(rng, _both_refable(f, a, b)):
            if visible_twins(f, p, (a, b)) or visible_twins(f, q, (a, b)):
                continue
            za = _seen(f, a, q).depth - _seen(f, a, p).depth
            zb = _seen(f, b, q).depth - _seen(f, b, p).depth
            if min(abs(za), abs(zb)) < 0.4:
                continue
            near, far = (p, q) if za > 0 else (q, p)
            same = (za > 0) == (zb > 0)
            if (0 if same else 1) != target:
                continue
            text = question_text("Q15", ask.wording)
            return Draft(
                "Q15",
                (a, b),
                text,
                YES_NO,
                target,
                (Ref(a, near), Ref(a, far)),
                {
                    "nearer_in_first": near,
                    "farther_in_first": far,
                    "depth_first": [round(_seen(f, a, o).depth, 4) for o in (near, far)],
                    "depth_second": [round(_seen(f, b, o).depth, 4) for o in (near, far)],
                },
            )
    return None


def q16(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Draft | None:
    target = ask.target
    for a, b in _cam_pairs(f, rng):
        for p, q in _pairs(rng, _measurable_both(f, a, b)):
            growth = {o: _seen(f, b, o).apparent_size / _seen(f, a, o).apparent_size for o in (p, q)}
            big, small = (p, q) if growth[p] > growth[q] else (q, p)
            if growth[big] < 1.3 * growth[small]:
                continue
            first, second = (big, small) if target == 0 else (small, big)
            text = question_text("Q16", ask.wording)
            return Draft(
                "Q16",
                (a, b),
                text,
                ("the first object", "the second object"),
                target,
                (Ref(a, first), Ref(a, second), Ref(b, first), Ref(b, second)),
                {"objects": [first, second], "size_growth": [round(growth[first], 4), round(growth[second], 4)]},
            )
    return None


# ------------------------------------------------------------------------------ physical


def q17(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Draft | None:
    target = ask.target
    for a, b in _cam_pairs(f, rng):
        view = f.views[a]
        for p, q in _pairs(rng, _refable(f, a)):
            if visible_twins(f, p, (a, b)) or visible_twins(f, q, (a, b)):
                continue
            overlap = int((view.full_masks[f.index_of(p)] & view.full_masks[f.index_of(q)]).sum())
            if overlap < 40:
                continue
            gap = f.gap(p, q)
            touching = gap <= CONTACT_EPS
            if not touching and gap < APART_MIN:
                continue
            if (0 if touching else 1) != target:
                continue
            text = question_text("Q17", ask.wording)
            return Draft(
                "Q17",
                (a, b),
                text,
                YES_NO,
                target,
                (Ref(a, p), Ref(a, q)),
                {"objects": [p, q], "surface_gap": round(gap, 4) + 0.0, "projection_overlap_px": overlap},
            )
    return None


GENERATORS: dict[str, Generator] = {
    "Q1": q1,
    "Q2": q2,
    "Q3": q3,
    "Q4": q4,
    "Q5": q5,
    "Q6": q6,
    "Q7": q7,
    "Q8": q8,
    "Q9": q9,
    "Q10": q10,
    "Q11": q11,
    "Q12": q12,
    "Q13": q13,
    "Q14": q14,
    "Q15": q15,
    "Q16": q16,
    "Q17": q17,
}
