"""Question generators for the 17 CrossViewBench task types, over one measured scene.

Each generator takes the scene's facts, a seeded Generator and the index of the option that
must be correct (so letters and yes/no stay balanced), and returns a `Draft` or None when the
scene has no unambiguous question of that kind with that answer. Answers come only from the
measured geometry (facts.py); every comparison keeps a margin so no answer rests on a few pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import permutations
from typing import Any, TypeVar

import numpy as np

from cvbench.harness.types import REGION_PLACEHOLDER as R
from cvbench.tasks.synthetic.facts import ObjectInView, SceneFacts

T = TypeVar("T")

MIN_REF_PX = 350  # a referenced region shows at least this many pixels
CONTACT_EPS = 0.02  # surfaces this close (world units) are touching
APART_MIN = 0.15  # surfaces at least this far apart are clearly not touching
YES_NO = ("yes", "no")

# how many options each task type has (yes/no questions: 2)
N_OPTIONS: dict[str, int] = {
    "Q1": 4, "Q2": 2, "Q3": 4, "Q4": 4, "Q5": 2, "Q6": 2, "Q7": 4, "Q8": 4, "Q9": 4,
    "Q10": 2, "Q11": 4, "Q12": 2, "Q13": 2, "Q14": 2, "Q15": 2, "Q16": 2, "Q17": 2,
}


@dataclass(frozen=True)
class Ref:
    """A region: object `object_id` as seen by camera `cam` (index into scene.cameras)."""

    cam: int
    object_id: str


@dataclass(frozen=True)
class Draft:
    task_type: str
    cams: tuple[int, int]  # cameras of the record's first and second image
    question: str  # with one <region> per ref, in order
    options: tuple[str, ...]  # option texts, without letters
    answer_index: int
    refs: tuple[Ref, ...]
    facts: dict[str, Any] = field(default_factory=dict)  # question-specific geometry behind the answer


Generator = Callable[[SceneFacts, np.random.Generator, int], "Draft | None"]


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
    """Distractors most like the target first (same colour / shape), ties in seeded order."""
    t = f.scene.obj(target)

    def score(oid: str) -> int:
        o = f.scene.obj(oid)
        return int(o.colour == t.colour) + int(o.shape.kind == t.shape.kind)

    order = _shuffled(rng, pool)
    return sorted(order, key=lambda oid: -score(oid))


def _place(answer: T, others: list[T], index: int) -> list[T]:
    out = list(others)
    out.insert(index, answer)
    return out


def _numbered(word: str, n: int) -> str:
    """'candidate 1 is <region>, candidate 2 is <region> and candidate 3 is <region>'."""
    parts = [f"{word} {k + 1} is {R}" for k in range(n)]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


# ------------------------------------------------------------------------------ correspondence


def q1(f: SceneFacts, rng: np.random.Generator, target: int) -> Draft | None:
    for a, b in _cam_pairs(f, rng):
        ref_b = _refable(f, b)
        for q in _shuffled(rng, sorted(set(_refable(f, a)) & set(ref_b))):
            pool = [o for o in ref_b if o != q]
            if len(pool) < 3:
                continue
            cands = _place(q, _similar_first(f, q, pool, rng)[:3], target)
            text = (f"The object {R} is marked in the first image. Four objects are marked in the second image: "
                    f"{_numbered('candidate', 4)}. Which candidate is the same physical object as the one marked in "
                    f"the first image?")
            return Draft("Q1", (a, b), text, tuple(f"candidate {k + 1}" for k in range(4)), target,
                         (Ref(a, q),) + tuple(Ref(b, c) for c in cands), {"query": q, "candidates": cands})
    return None


def q2(f: SceneFacts, rng: np.random.Generator, target: int) -> Draft | None:
    for a, b in _cam_pairs(f, rng):
        ref_b = _refable(f, b)
        for q in _shuffled(rng, sorted(set(_refable(f, a)) & set(ref_b))):
            pool = [o for o in ref_b if o != q]
            if not pool:
                continue
            cands = _place(q, _similar_first(f, q, pool, rng)[:1], target)
            text = (f"The object {R} is marked in the first image. Two objects are marked in the second image: the "
                    f"first is {R} and the second is {R}. Which of the two is the same physical object as the one "
                    f"marked in the first image?")
            return Draft("Q2", (a, b), text, ("the first one", "the second one"), target,
                         (Ref(a, q), Ref(b, cands[0]), Ref(b, cands[1])), {"query": q, "candidates": cands})
    return None


def q3(f: SceneFacts, rng: np.random.Generator, target: int) -> Draft | None:
    for a, b in _cam_pairs(f, rng):
        ref_a = _refable(f, a)
        for q in _shuffled(rng, _refable(f, b)):
            pool = [o for o in ref_a if o != q]
            if target < 3:
                if q not in ref_a or len(pool) < 2:
                    continue
                cands = _place(q, _similar_first(f, q, pool, rng)[:2], target)
            else:
                if len(pool) < 3:
                    continue
                cands = _similar_first(f, q, pool, rng)[:3]
            text = (f"Three objects are marked in the first image: {_numbered('object', 3)}. Which of them is the "
                    f"same physical object as {R} in the second image?")
            return Draft("Q3", (a, b), text, ("object 1", "object 2", "object 3", "none of them"), target,
                         tuple(Ref(a, c) for c in cands) + (Ref(b, q),), {"query": q, "candidates": cands})
    return None


def q4(f: SceneFacts, rng: np.random.Generator, target: int) -> Draft | None:
    labels = ("X", "Y", "Z")
    for a, b in _cam_pairs(f, rng):
        ref_b = _refable(f, b)
        both = sorted(set(_refable(f, a)) & set(ref_b))
        if len(both) < 2:
            continue
        p1, p2 = _shuffled(rng, both)[:2]
        pool = [o for o in ref_b if o not in (p1, p2)]
        if not pool:
            continue
        z = _similar_first(f, p1, pool, rng)[0]
        cands = _shuffled(rng, [p1, p2, z])
        correct = (labels[cands.index(p1)], labels[cands.index(p2)])
        wrong = [m for m in permutations(labels, 2) if m != correct]
        chosen = _place(correct, [wrong[int(i)] for i in rng.permutation(len(wrong))[:3]], target)
        text = (f"Two objects are marked in the first image: object 1 is {R} and object 2 is {R}. Three objects are "
                f"marked in the second image: X is {R}, Y is {R} and Z is {R}. Which matching of the first image's "
                f"objects to the second image's objects is correct?")
        options = tuple(f"object 1 is {m[0]} and object 2 is {m[1]}" for m in chosen)
        refs = (Ref(a, p1), Ref(a, p2)) + tuple(Ref(b, c) for c in cands)
        return Draft("Q4", (a, b), text, options, target, refs,
                     {"first_image_objects": [p1, p2], "second_image_objects": dict(zip(labels, cands))})
    return None


def q5(f: SceneFacts, rng: np.random.Generator, target: int) -> Draft | None:
    for a, b in _cam_pairs(f, rng):
        ref_b = _refable(f, b)
        for q in _shuffled(rng, _refable(f, a)):
            if target == 0:
                if q not in ref_b:
                    continue
                other = q
            else:
                pool = [o for o in ref_b if o != q]
                if not pool:
                    continue
                other = _similar_first(f, q, pool, rng)[0]
            text = f"Are {R} in the first image and {R} in the second image the same physical object?"
            return Draft("Q5", (a, b), text, YES_NO, target, (Ref(a, q), Ref(b, other)),
                         {"first": q, "second": other})
    return None


# ------------------------------------------------------------------------------ visibility & occlusion


def q6(f: SceneFacts, rng: np.random.Generator, target: int) -> Draft | None:
    for a, b in _cam_pairs(f, rng):
        for q in _shuffled(rng, _refable(f, a)):
            vis_b = _seen(f, b, q).visible_px
            if (target == 0 and vis_b >= MIN_REF_PX) or (target == 1 and vis_b == 0):
                text = (f"The object {R} is marked in the first image. Is any part of this object visible in the "
                        f"second image?")
                return Draft("Q6", (a, b), text, YES_NO, target, (Ref(a, q),),
                             {"object": q, "visible_px_second": vis_b})
    return None


def q7(f: SceneFacts, rng: np.random.Generator, target: int) -> Draft | None:
    for a, b in _cam_pairs(f, rng):
        ref_a = _refable(f, a)
        absent = [o for o in ref_a if _seen(f, b, o).visible_px == 0]
        present = [o for o in ref_a if _seen(f, b, o).visible_px >= MIN_REF_PX]
        if not absent or len(present) < 3:
            continue
        q = _shuffled(rng, absent)[0]
        cands = _place(q, _shuffled(rng, present)[:3], target)
        text = (f"Four objects are marked in the first image: {_numbered('object', 4)}. Which of them cannot be seen "
                f"at all in the second image?")
        return Draft("Q7", (a, b), text, tuple(f"object {k + 1}" for k in range(4)), target,
                     tuple(Ref(a, c) for c in cands), {"absent": q, "objects": cands})
    return None


def q8(f: SceneFacts, rng: np.random.Generator, target: int) -> Draft | None:
    for a, b in _cam_pairs(f, rng):
        ref_b = _refable(f, b)
        for t in _shuffled(rng, _refable(f, a)):
            sb = _seen(f, b, t)
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
            near = sorted(_shuffled(rng, pool), key=lambda o: np.hypot(_seen(f, b, o).centre_px[0] - tx,
                                                                        _seen(f, b, o).centre_px[1] - ty))
            cands = _place(occ, near[:3], target)
            text = (f"The object {R} is marked in the first image. In the second image this object is partly hidden "
                    f"behind another object. Which of the objects marked in the second image hides it? "
                    f"{_numbered('Candidate', 4)}.")
            return Draft("Q8", (a, b), text, tuple(f"candidate {k + 1}" for k in range(4)), target,
                         (Ref(a, t),) + tuple(Ref(b, c) for c in cands),
                         {"object": t, "occluder": occ, "occluder_share": round(sb.occluder_share, 4),
                          "occluded_px_second": sb.occluded_px, "candidates": cands})
    return None


# ------------------------------------------------------------------------------ geometric


def q9(f: SceneFacts, rng: np.random.Generator, target: int) -> Draft | None:
    for a, b in _cam_pairs(f, rng):
        ref_b = _refable(f, b)
        for q in _shuffled(rng, _refable(f, a)):
            pool = sorted((o for o in ref_b if o != q), key=lambda o: f.centre_distance(q, o))
            if len(pool) < 4:
                continue
            d = [f.centre_distance(q, o) for o in pool]
            if d[0] > 0.75 * d[1]:
                continue
            cands = _place(pool[0], _shuffled(rng, pool[1:])[:3], target)
            text = (f"The object {R} is marked in the first image. Which of the objects marked in the second image "
                    f"is closest to it in 3D space (centre to centre)? {_numbered('Candidate', 4)}.")
            return Draft("Q9", (a, b), text, tuple(f"candidate {k + 1}" for k in range(4)), target,
                         (Ref(a, q),) + tuple(Ref(b, c) for c in cands),
                         {"query": q, "candidates": cands,
                          "centre_distances": [round(f.centre_distance(q, c), 4) for c in cands]})
    return None


def _measurable_both(f: SceneFacts, a: int, b: int) -> list[str]:
    return sorted(o for o in set(_refable(f, a)) & set(_refable(f, b))
                  if _seen(f, a, o).measurable and _seen(f, b, o).measurable)


def q10(f: SceneFacts, rng: np.random.Generator, target: int) -> Draft | None:
    for a, b in _cam_pairs(f, rng):
        for q in _shuffled(rng, _measurable_both(f, a, b)):
            ratio = _seen(f, b, q).apparent_size / _seen(f, a, q).apparent_size
            if (target == 0 and ratio >= 1.25) or (target == 1 and ratio <= 0.8):
                text = (f"The same object is marked in both images: {R} in the first image and {R} in the second. "
                        f"Does it appear larger in the second image than in the first?")
                return Draft("Q10", (a, b), text, YES_NO, target, (Ref(a, q), Ref(b, q)),
                             {"object": q, "size_ratio_second_to_first": round(ratio, 4)})
    return None


def q11(f: SceneFacts, rng: np.random.Generator, target: int) -> Draft | None:
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
        text = (f"Four objects are marked in the first image: {_numbered('object', 4)}. In the first image, which of "
                f"them is the least complete, with the largest share of the object hidden behind other objects or cut "
                f"off by the image border?")
        return Draft("Q11", (a, b), text, tuple(f"object {k + 1}" for k in range(4)), target,
                     tuple(Ref(a, c) for c in cands),
                     {"objects": cands, "visible_fractions": [round(frac[c], 4) for c in cands]})
    return None


def q12(f: SceneFacts, rng: np.random.Generator, target: int) -> Draft | None:
    for a, b in _cam_pairs(f, rng):
        for q in _shuffled(rng, _measurable_both(f, a, b)):
            fa, fb = _seen(f, a, q).visible_fraction, _seen(f, b, q).visible_fraction
            if abs(fa - fb) < 0.3 or (0 if fa > fb else 1) != target:
                continue
            text = (f"The same object is marked in both images: {R} in the first image and {R} in the second. In which "
                    f"image is a larger share of the object visible (less of it hidden or cut off)?")
            return Draft("Q12", (a, b), text, ("the first image", "the second image"), target, (Ref(a, q), Ref(b, q)),
                         {"object": q, "visible_fraction_first": round(fa, 4), "visible_fraction_second": round(fb, 4)})
    return None


def _pairs(rng: np.random.Generator, objs: list[str]) -> list[tuple[str, str]]:
    return _shuffled(rng, [(p, q) for i, p in enumerate(objs) for q in objs[i + 1:]])


def q13(f: SceneFacts, rng: np.random.Generator, target: int) -> Draft | None:
    for a, b in _cam_pairs(f, rng):
        for p, q in _pairs(rng, _both_refable(f, a, b)):
            dxa = _seen(f, a, q).centre_px[0] - _seen(f, a, p).centre_px[0]
            dxb = _seen(f, b, q).centre_px[0] - _seen(f, b, p).centre_px[0]
            if min(abs(dxa), abs(dxb)) < 30:
                continue
            left, right = (p, q) if dxa > 0 else (q, p)
            flipped = (dxa > 0) != (dxb > 0)
            if (0 if flipped else 1) != target:
                continue
            text = (f"In the first image, {R} is to the left of {R}. In the second image, is their left-right order "
                    f"reversed, with the first of them now to the right of the second?")
            return Draft("Q13", (a, b), text, YES_NO, target, (Ref(a, left), Ref(a, right)),
                         {"left_in_first": left, "right_in_first": right,
                          "centre_x_first": [round(_seen(f, a, o).centre_px[0], 2) for o in (left, right)],
                          "centre_x_second": [round(_seen(f, b, o).centre_px[0], 2) for o in (left, right)]})
    return None


def _both_refable(f: SceneFacts, a: int, b: int) -> list[str]:
    return sorted(set(_refable(f, a)) & set(_refable(f, b)))


def q14(f: SceneFacts, rng: np.random.Generator, target: int) -> Draft | None:
    for a, b in _cam_pairs(f, rng):
        for p, q in _pairs(rng, _both_refable(f, a, b)):
            disp = {o: float(np.hypot(_seen(f, b, o).centre_px[0] - _seen(f, a, o).centre_px[0],
                                      _seen(f, b, o).centre_px[1] - _seen(f, a, o).centre_px[1])) for o in (p, q)}
            big, small = (p, q) if disp[p] > disp[q] else (q, p)
            if disp[big] < 1.5 * disp[small] or disp[big] < 60:
                continue
            first, second = (big, small) if target == 0 else (small, big)
            text = (f"Two objects are marked in both images: {R} and {R} in the first image, and the same two objects, "
                    f"in the same order, as {R} and {R} in the second image. Which of the two objects shifts more in "
                    f"image position (pixels) between the first and the second image?")
            return Draft("Q14", (a, b), text, ("the first object", "the second object"), target,
                         (Ref(a, first), Ref(a, second), Ref(b, first), Ref(b, second)),
                         {"objects": [first, second], "displacement_px": [round(disp[first], 2), round(disp[second], 2)]})
    return None


def q15(f: SceneFacts, rng: np.random.Generator, target: int) -> Draft | None:
    for a, b in _cam_pairs(f, rng):
        for p, q in _pairs(rng, _both_refable(f, a, b)):
            za = _seen(f, a, q).depth - _seen(f, a, p).depth
            zb = _seen(f, b, q).depth - _seen(f, b, p).depth
            if min(abs(za), abs(zb)) < 0.4:
                continue
            near, far = (p, q) if za > 0 else (q, p)
            same = (za > 0) == (zb > 0)
            if (0 if same else 1) != target:
                continue
            text = (f"In the first image, {R} is closer to the camera than {R}. Is the first of them also closer to the "
                    f"camera than the second in the second image?")
            return Draft("Q15", (a, b), text, YES_NO, target, (Ref(a, near), Ref(a, far)),
                         {"nearer_in_first": near, "farther_in_first": far,
                          "depth_first": [round(_seen(f, a, o).depth, 4) for o in (near, far)],
                          "depth_second": [round(_seen(f, b, o).depth, 4) for o in (near, far)]})
    return None


def q16(f: SceneFacts, rng: np.random.Generator, target: int) -> Draft | None:
    for a, b in _cam_pairs(f, rng):
        for p, q in _pairs(rng, _measurable_both(f, a, b)):
            growth = {o: _seen(f, b, o).apparent_size / _seen(f, a, o).apparent_size for o in (p, q)}
            big, small = (p, q) if growth[p] > growth[q] else (q, p)
            if growth[big] < 1.3 * growth[small]:
                continue
            first, second = (big, small) if target == 0 else (small, big)
            text = (f"Two objects are marked in both images: {R} and {R} in the first image, and the same two objects, "
                    f"in the same order, as {R} and {R} in the second image. Which of the two objects grows more (or "
                    f"shrinks less) in apparent size from the first image to the second?")
            return Draft("Q16", (a, b), text, ("the first object", "the second object"), target,
                         (Ref(a, first), Ref(a, second), Ref(b, first), Ref(b, second)),
                         {"objects": [first, second], "size_growth": [round(growth[first], 4), round(growth[second], 4)]})
    return None


# ------------------------------------------------------------------------------ physical


def q17(f: SceneFacts, rng: np.random.Generator, target: int) -> Draft | None:
    for a, b in _cam_pairs(f, rng):
        view = f.views[a]
        for p, q in _pairs(rng, _refable(f, a)):
            overlap = int((view.full_masks[f.index_of(p)] & view.full_masks[f.index_of(q)]).sum())
            if overlap < 40:
                continue
            gap = f.gap(p, q)
            touching = gap <= CONTACT_EPS
            if not touching and gap < APART_MIN:
                continue
            if (0 if touching else 1) != target:
                continue
            text = (f"In the first image, {R} and {R} overlap in the picture. Are these two objects physically "
                    f"touching each other in 3D? The second image shows the same scene from another viewpoint.")
            return Draft("Q17", (a, b), text, YES_NO, target, (Ref(a, p), Ref(a, q)),
                         {"objects": [p, q], "surface_gap": round(gap, 4) + 0.0, "projection_overlap_px": overlap})
    return None


GENERATORS: dict[str, Generator] = {
    "Q1": q1, "Q2": q2, "Q3": q3, "Q4": q4, "Q5": q5, "Q6": q6, "Q7": q7, "Q8": q8, "Q9": q9,
    "Q10": q10, "Q11": q11, "Q12": q12, "Q13": q13, "Q14": q14, "Q15": q15, "Q16": q16, "Q17": q17,
}
