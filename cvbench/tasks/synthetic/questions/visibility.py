"""Q6-Q8: visibility and occlusion of an object in the other view."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from cvbench.tasks.synthetic.facts import SceneFacts
from cvbench.tasks.synthetic.questions.common import (
    MIN_REF_PX,
    YES_NO,
    Ask,
    Draft,
    Ref,
    _cam_pairs,
    _place,
    _refable,
    _seen,
    _shuffled,
    visible_twins,
)
from cvbench.tasks.synthetic.questions.wording import question_text


def q6(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Iterator[Draft]:
    target = ask.target
    for a, b in _cam_pairs(f, rng):
        for q in _shuffled(rng, _refable(f, a)):
            vis_b = _seen(f, b, q).visible_px
            if visible_twins(f, q, (a, b)):  # "is it visible there?" needs the object to be unmistakable
                continue
            if (target == 0 and vis_b >= MIN_REF_PX) or (target == 1 and vis_b == 0):
                text = question_text("Q6", ask.wording)
                yield Draft("Q6", (a, b), text, YES_NO, target, (Ref(a, q),), {"object": q, "visible_px_second": vis_b})


def q7(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Iterator[Draft]:
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
        yield Draft(
            "Q7",
            (a, b),
            text,
            tuple(f"object {k + 1}" for k in range(4)),
            target,
            tuple(Ref(a, c) for c in cands),
            {"absent": q, "objects": cands},
        )


def q8(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Iterator[Draft]:
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
            yield Draft(
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
