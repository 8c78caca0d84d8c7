"""Q6-Q8: visibility and occlusion of an object in the other view.

Q7 and Q8 are asked half with a visible look-alike of their key object (Q7: the invisible
object, with a look-alike in plain view in the second image; Q8: the hidden object), told apart
by its anchor (since cvbench-synth-cvb/6): without one, "the object with no good colour match in
the other image" (Q7) and "the box over the target's colour match" (Q8) decided most questions."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations

import numpy as np

from cvbench.imaging.masks import bbox
from cvbench.tasks.synthetic.facts import SceneFacts
from cvbench.tasks.synthetic.questions.common import (
    MIN_REF_PX,
    YES_NO,
    Ask,
    Draft,
    Ref,
    _cam_pairs,
    _lookalike_ok,
    _place,
    _refable,
    _seen,
    _shuffled,
    _with_anchors,
    holds_place,
    twins,
    visible_twins,
)
from cvbench.tasks.synthetic.questions.wording import question_text


def _twin_in_plain_view(f: SceneFacts, oid: str, cam: int) -> bool:
    """A look-alike of `oid` shows at least MIN_REF_PX pixels in `cam` (a good colour match there)."""
    return any(_seen(f, cam, m).visible_px >= MIN_REF_PX for m in twins(f, oid))


def q6(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Iterator[Draft]:
    """With look-alikes (since cvbench-synth-cvb/7; before, never): exactly two of the object's
    group (the object and its look-alikes) show in the second image, each in plain view, whether
    the object is one of them (yes) or not (no). Before, "its colour shows in the second image"
    gave the answer (a held-out colour rule: 64%); now neither that nor the count of colour
    matches does, and the anchor tells whether a region there is the object."""
    target = ask.target
    for a, b in _cam_pairs(f, rng):
        for q in _shuffled(rng, _refable(f, a)):
            vis_b = _seen(f, b, q).visible_px
            if not ((target == 0 and vis_b >= MIN_REF_PX) or (target == 1 and vis_b == 0)):
                continue
            anchors = _lookalike_ok(f, (q,), (a, b), ask.lookalike)
            if anchors is None or (ask.lookalike and not _twin_in_plain_view(f, q, b)):
                continue
            shown = sorted(o for o in [q, *twins(f, q)] if _seen(f, b, o).visible_px > 0)
            if (
                ask.lookalike
                and ask.design
                and (len(shown) != 2 or any(_seen(f, b, o).visible_px < MIN_REF_PX for o in shown))
            ):
                continue
            text = question_text("Q6", ask.wording)
            facts = {"object": q, "visible_px_second": vis_b, "group_shown_second": shown}
            yield Draft("Q6", (a, b), text, YES_NO, target, (Ref(a, q),), _with_anchors(facts, anchors), ask.lookalike)


TRIPLES_PER_KEY = 6  # distractor triples offered per key object (Q7, Q8), most misleading first
Q8_POOL = 7  # Q8 draws its distractor triples from this many of the most occluder-like objects


def q7(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Iterator[Draft]:
    """Distractors seen least completely in the second image come first (cut by the frame or
    half hidden: their visible part there is a poorer match of their look in the first); with a
    look-alike, the invisible object's look-alike is in plain view in the second image. How many
    distractors show fewer pixels in the first image than the invisible object (`Ask.size_rank`),
    and how many stand lower there (`Ask.row_rank`), are planned evenly over 0-3, apart (since
    cvbench-synth-cvb/7: what vanishes in the other view tends to be small and far back in the
    first, and a probe fitted on region statistics read 58%)."""
    target = ask.target
    for a, b in _cam_pairs(f, rng):
        ref_a = _refable(f, a)
        present = [o for o in ref_a if not visible_twins(f, o, (a, b)) and _seen(f, b, o).visible_px >= MIN_REF_PX]
        if len(present) < 3:
            continue
        for q in _shuffled(rng, [o for o in ref_a if _seen(f, b, o).visible_px == 0]):
            lookalike_facts = _lookalike_ok(f, (q,), (a, b), ask.lookalike)
            if lookalike_facts is None or (ask.lookalike and not _twin_in_plain_view(f, q, b)):
                continue
            frac = {o: _seen(f, b, o).visible_fraction for o in present}
            px = {o: _seen(f, a, o).visible_px for o in [q, *present]}
            # minus the centre's row: "smaller" is lower in the image
            up = {o: -_seen(f, a, o).centre_px[1] for o in [q, *present]}
            triples = sorted(
                (
                    t
                    for t in combinations(_shuffled(rng, present), 3)
                    if holds_place(ask.size_rank, px, q, t) and holds_place(ask.row_rank, up, q, t)
                ),
                key=lambda t: sum(frac[o] for o in t),
            )
            for triple in triples[:TRIPLES_PER_KEY]:
                cands = _place(q, _shuffled(rng, list(triple)), target)
                yield Draft(
                    "Q7",
                    (a, b),
                    question_text("Q7", ask.wording),
                    tuple(f"object {k + 1}" for k in range(4)),
                    target,
                    tuple(Ref(a, c) for c in cands),
                    _with_anchors({"absent": q, "objects": cands}, lookalike_facts),
                    ask.lookalike,
                    ask.wording,
                )


def _visible_box(f: SceneFacts, cam: int, oid: str) -> tuple[int, int, int, int]:
    """x1, y1, x2, y2 of the object's visible pixels in `cam` (cached on the facts)."""
    key = ("visible-box", cam, oid)
    if key not in f.cache:
        f.cache[key] = bbox(f.views[cam].ids == f.index_of(oid))
    box = f.cache[key]
    assert isinstance(box, tuple), f"{oid} shows no pixel in camera {cam}"
    return box


def _hiders(f: SceneFacts, cam: int, oid: str) -> set[str]:
    """Every object that covers some in-frame pixel of `oid`'s projection in `cam`."""
    view = f.views[cam]
    idx = f.index_of(oid)
    covering = view.ids[view.full_masks[idx] & (view.ids != idx)]
    return {f.scene.objects[k].object_id for k in np.unique(covering) if k >= 0}


def _looks_like_occluder(f: SceneFacts, cam: int, oid: str, target: str) -> int:
    """2 when the visible box of `oid` overlaps the target's, plus 1 when it reaches lower (the
    cues of an occluder in the picture: in front of it on the ground)."""
    o, t = _visible_box(f, cam, oid), _visible_box(f, cam, target)
    overlap = o[0] <= t[2] and t[0] <= o[2] and o[1] <= t[3] and t[1] <= o[3]
    return 2 * int(overlap) + int(o[3] > t[3])


def q8(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Iterator[Draft]:
    """Distractors that look like occluders in the second image without hiding any of the target
    come first (their box overlaps the target's and reaches lower), the largest first (an
    occluder is mostly large there); with a look-alike, the hidden object has a look-alike in
    plain view in the second image. How many distractors show fewer pixels in the second image
    than the occluder (`Ask.size_rank`) is planned evenly over 0-3 (since cvbench-synth-cvb/7:
    the occluder was still mostly the largest, and a probe read 40% from the area alone)."""
    target = ask.target
    for a, b in _cam_pairs(f, rng):
        ref_b = _refable(f, b)
        for t in _shuffled(rng, _refable(f, a)):
            sb = _seen(f, b, t)
            lookalike_facts = _lookalike_ok(f, (t,), (a, b), ask.lookalike)
            if lookalike_facts is None or (ask.lookalike and not _twin_in_plain_view(f, t, b)):
                continue
            if sb.visible_px < 150 or sb.occluder is None or sb.occluder_share < 0.85:
                continue
            if sb.occluded_px < max(300, 0.2 * sb.in_frame_px) or sb.occluder not in ref_b:
                continue
            if _seen(f, a, t).visible_fraction < 0.5:
                continue
            occ = sb.occluder
            hiders = _hiders(f, b, t)
            pool = [o for o in ref_b if o not in (t, occ) and o not in hiders]
            if len(pool) < 3:
                continue
            near = sorted(
                _shuffled(rng, pool),
                key=lambda o: (-_looks_like_occluder(f, b, o, t), -_seen(f, b, o).visible_px),
            )
            px = {o: _seen(f, b, o).visible_px for o in [occ, *near]}
            triples = [t3 for t3 in combinations(near[:Q8_POOL], 3) if holds_place(ask.size_rank, px, occ, t3)]
            for triple in triples[:TRIPLES_PER_KEY]:
                cands = _place(occ, _shuffled(rng, list(triple)), target)
                yield Draft(
                    "Q8",
                    (a, b),
                    question_text("Q8", ask.wording),
                    tuple(f"candidate {k + 1}" for k in range(4)),
                    target,
                    (Ref(a, t),) + tuple(Ref(b, c) for c in cands),
                    _with_anchors(
                        {
                            "object": t,
                            "occluder": occ,
                            "occluder_share": round(sb.occluder_share, 4),
                            "occluded_px_second": sb.occluded_px,
                            "candidates": cands,
                        },
                        lookalike_facts,
                    ),
                    ask.lookalike,
                    ask.wording,
                )
