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

Modules: common (limits, Ask/Draft/Ref, scene helpers), wording (templates) and one module per
category: correspondence (Q1-Q5), visibility (Q6-Q8), geometric (Q9-Q16), physical (Q17).
"""

from __future__ import annotations

import numpy as np

from cvbench.tasks.synthetic.facts import SceneFacts
from cvbench.tasks.synthetic.questions.common import (
    ANCHOR_MAX_DIST,
    ANCHOR_MIN_PX,
    ANCHOR_RATIO,
    APART_MIN,
    CONTACT_EPS,
    HALF_LOOKALIKE_TYPES,
    LOOKALIKE_TYPES,
    MIN_REF_PX,
    N_OPTIONS,
    UNMISTAKABLE_TYPES,
    YES_NO,
    Ask,
    Draft,
    DraftSource,
    Generator,
    Ref,
    anchor_for,
    twins,
    visible_twins,
)
from cvbench.tasks.synthetic.questions.correspondence import q1, q2, q3, q4, q5
from cvbench.tasks.synthetic.questions.geometric import q9, q10, q11, q12, q13, q14, q15, q16
from cvbench.tasks.synthetic.questions.physical import q17
from cvbench.tasks.synthetic.questions.shortcut import fits, shortcut_pick, shortcut_ranking
from cvbench.tasks.synthetic.questions.visibility import q6, q7, q8
from cvbench.tasks.synthetic.questions.wording import TEMPLATES, question_text

MAX_DRAFTS_PER_SCENE = 400  # questions of one type tried on one scene before it is given up


def _first_fitting(source: DraftSource) -> Generator:
    """The first question of `source` that fits the ask's shortcut constraint (shortcut.py)."""

    def generate(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Draft | None:
        for n, draft in enumerate(source(f, rng, ask)):
            if n >= MAX_DRAFTS_PER_SCENE:
                break
            if fits(f, draft, ask.shortcut_ranks, ask.shortcut_strict):
                return draft
        return None

    generate.__name__ = source.__name__
    return generate


SOURCES: dict[str, DraftSource] = {
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
GENERATORS: dict[str, Generator] = {qtype: _first_fitting(source) for qtype, source in SOURCES.items()}

__all__ = [
    "ANCHOR_MAX_DIST",
    "ANCHOR_MIN_PX",
    "ANCHOR_RATIO",
    "APART_MIN",
    "CONTACT_EPS",
    "GENERATORS",
    "HALF_LOOKALIKE_TYPES",
    "LOOKALIKE_TYPES",
    "MIN_REF_PX",
    "N_OPTIONS",
    "SOURCES",
    "TEMPLATES",
    "UNMISTAKABLE_TYPES",
    "YES_NO",
    "Ask",
    "Draft",
    "DraftSource",
    "Generator",
    "Ref",
    "anchor_for",
    "fits",
    "question_text",
    "shortcut_pick",
    "shortcut_ranking",
    "twins",
    "visible_twins",
]
