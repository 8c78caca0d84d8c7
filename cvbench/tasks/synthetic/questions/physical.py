"""Q17: physical contact between two objects whose projections overlap in both images.

Overlap in both images, touching or not: a pair that overlaps in one image only is seldom
touching, so the other image's overlap would tell contact without any depth reasoning. The
pairs that are not touching then stand one behind the other along both lines of sight, at
another depth."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from cvbench.tasks.synthetic.facts import SceneFacts
from cvbench.tasks.synthetic.questions.common import (
    APART_MIN,
    CONTACT_EPS,
    YES_NO,
    Ask,
    Draft,
    Ref,
    _cam_pairs,
    _pairs,
    _refable,
    visible_twins,
)
from cvbench.tasks.synthetic.questions.wording import question_text


def q17(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Iterator[Draft]:
    target = ask.target
    for a, b in _cam_pairs(f, rng):
        view = f.views[a]
        for p, q in _pairs(rng, _refable(f, a)):
            if visible_twins(f, p, (a, b)) or visible_twins(f, q, (a, b)):
                continue
            overlap = int((view.full_masks[f.index_of(p)] & view.full_masks[f.index_of(q)]).sum())
            other = f.views[b]
            overlap_b = int((other.full_masks[f.index_of(p)] & other.full_masks[f.index_of(q)]).sum())
            if min(overlap, overlap_b) < 40:
                continue
            gap = f.gap(p, q)
            touching = gap <= CONTACT_EPS
            if not touching and gap < APART_MIN:
                continue
            if (0 if touching else 1) != target:
                continue
            text = question_text("Q17", ask.wording)
            yield Draft(
                "Q17",
                (a, b),
                text,
                YES_NO,
                target,
                (Ref(a, p), Ref(a, q)),
                {
                    "objects": [p, q],
                    "surface_gap": round(gap, 4) + 0.0,
                    "projection_overlap_px": overlap,
                    "projection_overlap_px_second": overlap_b,
                },
            )
