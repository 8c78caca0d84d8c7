"""Q1-Q5: find the same physical object again across the two views.

Since cvbench-synth-cvb/7, every candidate of Q1 and Q3, and all three second-image objects of Q4,
are look-alikes of the key object (one shape, size and colour): with a single look-alike among
them, the nearest mean colour in the other image found the object in 86% of Q1 questions (the
candidates that look different drop out, and what is left is close to a coin toss that the
shading tilts). Only the layout (the anchors) tells them apart now."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import permutations

import numpy as np

from cvbench.tasks.synthetic.facts import SceneFacts
from cvbench.tasks.synthetic.questions.common import (
    YES_NO,
    Ask,
    Draft,
    Ref,
    _cam_pairs,
    _lookalike_ok,
    _place,
    _refable,
    _shuffled,
    _similar_first,
    _with_anchors,
    all_lookalikes,
    twins,
)
from cvbench.tasks.synthetic.questions.wording import question_text


def q1(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Iterator[Draft]:
    for a, b in _cam_pairs(f, rng):
        ref_b = _refable(f, b)
        for q in _shuffled(rng, sorted(set(_refable(f, a)) & set(ref_b))):
            pool = [o for o in ref_b if o != q]
            anchors = _lookalike_ok(f, (q,), (a, b), ask.lookalike)
            if len(pool) < 3 or anchors is None or (ask.lookalike and not set(twins(f, q)) & set(pool)):
                continue
            distractors = _similar_first(f, q, pool, rng)[:3]
            if ask.lookalike and ask.design and not all_lookalikes(f, q, distractors):
                continue
            cands = _place(q, distractors, ask.target)
            yield Draft(
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


def q2(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Iterator[Draft]:
    for a, b in _cam_pairs(f, rng):
        ref_b = _refable(f, b)
        for q in _shuffled(rng, sorted(set(_refable(f, a)) & set(ref_b))):
            pool = [o for o in ref_b if o != q]
            anchors = _lookalike_ok(f, (q,), (a, b), ask.lookalike)
            if not pool or anchors is None or (ask.lookalike and not set(twins(f, q)) & set(pool)):
                continue
            cands = _place(q, _similar_first(f, q, pool, rng)[:1], ask.target)
            yield Draft(
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


def q3(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Iterator[Draft]:
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
                distractors = _similar_first(f, q, pool, rng)[:2]
                cands = _place(q, distractors, ask.target)
            else:
                if len(pool) < 3:
                    continue
                cands = distractors = _similar_first(f, q, pool, rng)[:3]
            if ask.lookalike and ask.design and not all_lookalikes(f, q, distractors):
                continue
            yield Draft(
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


def q4(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Iterator[Draft]:
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
        if ask.lookalike and ask.design and not all_lookalikes(f, p1, [p2, z]):
            continue
        cands = _shuffled(rng, [p1, p2, z])
        correct = (labels[cands.index(p1)], labels[cands.index(p2)])
        wrong = [m for m in permutations(labels, 2) if m != correct]
        chosen = _place(correct, [wrong[int(i)] for i in rng.permutation(len(wrong))[:3]], ask.target)
        options = tuple(f"object 1 is {m[0]} and object 2 is {m[1]}" for m in chosen)
        refs = (Ref(a, p1), Ref(a, p2)) + tuple(Ref(b, c) for c in cands)
        yield Draft(
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


def q5(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Iterator[Draft]:
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
            yield Draft(
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
