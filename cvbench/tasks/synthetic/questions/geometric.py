"""Q9-Q16: sizes, sides, left-right order and depth across the views."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations

import numpy as np

from cvbench.tasks.synthetic.facts import SceneFacts
from cvbench.tasks.synthetic.questions.common import (
    YES_NO,
    Ask,
    Draft,
    Ref,
    _cam_pairs,
    _lookalike_ok,
    _pairs,
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


def q9(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Iterator[Draft]:
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
            yield Draft(
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


def _measurable_both(f: SceneFacts, a: int, b: int) -> list[str]:
    return sorted(
        o for o in set(_refable(f, a)) & set(_refable(f, b)) if _seen(f, a, o).measurable and _seen(f, b, o).measurable
    )


CONTRARY_MIN_PX = 100  # look-alikes showing fewer pixels in the second image do not count


def contrary_twins(f: SceneFacts, q: str, a: int, b: int, grows: bool) -> bool:
    """Every look-alike of `q` that shows in the second image (at least CONTRARY_MIN_PX) shows
    fewer visible pixels there than `q` in the first if `q` grows (more if it shrinks), and there
    is at least one: whichever of them a reader takes for the object, the visible size alone says
    nothing about the answer. Without this the look-alikes mostly changed size the same way as
    the object (the second camera nearer the whole scene or farther from it)."""
    first = _seen(f, a, q).visible_px
    shown = [_seen(f, b, m).visible_px for m in twins(f, q) if _seen(f, b, m).visible_px >= CONTRARY_MIN_PX]
    return bool(shown) and all((px < first) if grows else (px > first) for px in shown)


def q10(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Iterator[Draft]:
    """Marked in the first image only, with a visible look-alike (and an anchor): marked in both
    images, the visible extent all but gives the answer away. The look-alikes in the second
    image change size the other way (`contrary_twins`, since cvbench-synth-cvb/6): a reader
    that takes the best-matching region there for the object is right only when it finds the
    object itself, which takes the anchor."""
    target = ask.target
    for a, b in _cam_pairs(f, rng):
        for q in _shuffled(rng, _measurable_both(f, a, b)):
            anchors = _lookalike_ok(f, (q,), (a, b), ask.lookalike)
            if anchors is None:
                continue
            ratio = _seen(f, b, q).apparent_size / _seen(f, a, q).apparent_size
            if not ((target == 0 and ratio >= 1.25) or (target == 1 and ratio <= 0.8)):
                continue
            if ask.lookalike and ask.design and not contrary_twins(f, q, a, b, target == 0):
                continue
            text = question_text("Q10", ask.wording)
            yield Draft(
                "Q10",
                (a, b),
                text,
                YES_NO,
                target,
                (Ref(a, q),),
                _with_anchors({"object": q, "size_ratio_second_to_first": round(ratio, 4)}, anchors),
                ask.lookalike,
                ask.wording,
            )


def silhouette_fill(f: SceneFacts, cam: int, oid: str) -> float:
    """The object's own unoccluded silhouette (in frame) over its box: low for cones, balls, lying
    cylinders and boxes seen corner-on, whole or not; occlusion plays no part in it."""
    full = f.views[cam].full_masks[f.index_of(oid)]
    ys, xs = np.nonzero(full)
    if xs.size == 0:
        return 0.0
    return float(xs.size / ((xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1)))


Q11_TRIPLES_PER_ANSWER = 8  # distractor triples offered per candidate answer, least filled first


def q11(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Iterator[Draft]:
    """Any object at most 75% visible can be the answer when three others are each at least 0.2
    more complete. How many of the distractors show fewer pixels than the answer is planned
    (`Ask.size_rank`, evenly 0-3: small whole objects beside a large half-hidden one, so the
    visible size says nothing), and distractors whose own silhouette fills its box least come first (whole cones,
    balls, lying cylinders: a hollow-looking region is no sign of missing parts, and an object cut
    straight by an occluder or the frame can look the most solid of the four)."""
    target = ask.target
    for a, b in _cam_pairs(f, rng):
        objs = [o for o in _refable(f, a) if _seen(f, a, o).measurable]
        if len(objs) < 4:
            continue
        frac = {o: _seen(f, a, o).visible_fraction for o in objs}
        fill = {o: silhouette_fill(f, a, o) for o in objs}
        for least in _shuffled(rng, [o for o in objs if frac[o] <= 0.75]):
            others = [o for o in _shuffled(rng, objs) if frac[o] >= frac[least] + 0.2]
            if len(others) < 3:
                continue
            px = {o: _seen(f, a, o).visible_px for o in objs}
            triples = [t for t in combinations(others, 3) if holds_place(ask.size_rank, px, least, t)]
            triples.sort(key=lambda t: sum(fill[o] for o in t))
            for triple in triples[:Q11_TRIPLES_PER_ANSWER]:
                cands = _place(least, _shuffled(rng, list(triple)), target)
                text = question_text("Q11", ask.wording)
                yield Draft(
                    "Q11",
                    (a, b),
                    text,
                    tuple(f"object {k + 1}" for k in range(4)),
                    target,
                    tuple(Ref(a, c) for c in cands),
                    {
                        "objects": cands,
                        "visible_fractions": [round(frac[c], 4) for c in cands],
                        "silhouette_fills": [round(fill[c], 4) for c in cands],
                    },
                )


def contrary_share(f: SceneFacts, q: str, a: int, b: int, more_second: bool) -> bool:
    """Q12's `contrary_twins`, weaker: some look-alike of `q` that shows in the second image (at
    least CONTRARY_MIN_PX) shows a smaller share of itself there than `q` in the first image when
    the answer is the second image (a larger share when it is the first). Asking it of every
    look-alike, as Q10 does, left too few scenes: a look-alike more hidden than a half-hidden
    object is rare."""
    first = _seen(f, a, q).visible_fraction
    shown = [_seen(f, b, m) for m in twins(f, q)]
    shares = [s.visible_fraction for s in shown if s.visible_px >= CONTRARY_MIN_PX]
    return any((x < first) if more_second else (x > first) for x in shares)


def q12(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Iterator[Draft]:
    """Marked in the first image only, with a visible look-alike (and an anchor), like Q10; since
    cvbench-synth-cvb/7 the look-alikes in the second image show a share of themselves that tells
    the other answer (`contrary_share`): the held-out rule, comparing with whichever region there
    matches the colour best, was right on 68%."""
    target = ask.target
    for a, b in _cam_pairs(f, rng):
        for q in _shuffled(rng, _measurable_both(f, a, b)):
            anchors = _lookalike_ok(f, (q,), (a, b), ask.lookalike)
            if anchors is None:
                continue
            fa, fb = _seen(f, a, q).visible_fraction, _seen(f, b, q).visible_fraction
            if abs(fa - fb) < 0.3 or (0 if fa > fb else 1) != target:
                continue
            if ask.lookalike and ask.design and not contrary_share(f, q, a, b, fb > fa):
                continue
            text = question_text("Q12", ask.wording)
            yield Draft(
                "Q12",
                (a, b),
                text,
                ("the first image", "the second image"),
                target,
                (Ref(a, q),),
                _with_anchors(
                    {"object": q, "visible_fraction_first": round(fa, 4), "visible_fraction_second": round(fb, 4)},
                    anchors,
                ),
                ask.lookalike,
                ask.wording,
            )


def q13(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Iterator[Draft]:
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
            yield Draft(
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


def _both_refable(f: SceneFacts, a: int, b: int) -> list[str]:
    return sorted(set(_refable(f, a)) & set(_refable(f, b)))


def _off_centre(f: SceneFacts, cam: int, oid: str) -> float:
    """How far the object's visible centre lies from the image centre (pixels)."""
    c = f.scene.cameras[cam]
    x, y = _seen(f, cam, oid).centre_px
    return float(np.hypot(x - c.width / 2, y - c.height / 2))


def q14(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Iterator[Draft]:
    """Since cvbench-synth-cvb/7 the two objects are look-alikes of each other (before: when the
    scene had such a pair, else any pair with a look-alike): a reader that finds each by its
    colour in the second image took mostly the right regions (a held-out rule: 72%). Whether the
    object that shifts more is the nearer one to the first camera (`Ask.depth_rank`) and the one
    farther from the first image's centre (`Ask.centre_rank`) is planned, half each, apart."""
    target = ask.target
    for a, b in _cam_pairs(f, rng):
        pairs = _pairs(rng, _both_refable(f, a, b))
        if ask.lookalike:  # pairs of look-alikes first: only the layout (anchors) tells them apart
            pairs = sorted(pairs, key=lambda pq: pq[1] not in twins(f, pq[0]))
        for p, q in pairs:
            if ask.lookalike and ask.design and q not in twins(f, p):
                break
            # marked in the first image only: each must be found again in the second, so every
            # one with a visible look-alike needs an anchor
            lookalike_facts = _lookalike_ok(f, (p, q), (a, b), ask.lookalike)
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
            nearer = _seen(f, a, big).depth < _seen(f, a, small).depth
            if ask.depth_rank is not None and int(nearer) != ask.depth_rank:
                continue
            off = _off_centre(f, a, big) > _off_centre(f, a, small)
            if ask.centre_rank is not None and int(off) != ask.centre_rank:
                continue
            first, second = (big, small) if target == 0 else (small, big)
            text = question_text("Q14", ask.wording)
            yield Draft(
                "Q14",
                (a, b),
                text,
                ("the first object", "the second object"),
                target,
                (Ref(a, first), Ref(a, second)),
                _with_anchors(
                    {"objects": [first, second], "displacement_px": [round(disp[first], 2), round(disp[second], 2)]},
                    lookalike_facts,
                ),
                ask.lookalike,
                ask.wording,
            )


def q15(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Iterator[Draft]:
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
            yield Draft(
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


def q16(f: SceneFacts, rng: np.random.Generator, ask: Ask) -> Iterator[Draft]:
    """Marked in the first image only (since cvbench-synth-cvb/6), with a visible look-alike and
    an anchor, like Q14: marked in both images, the marked regions' own size change was the
    answer (a probe over region statistics read 96%). The two are look-alikes of each other
    (since cvb/7; before, such pairs came first). Whether
    the object that grows more is the larger one in the first image (`Ask.size_rank`) and whether
    it is the nearer one to the first camera (`Ask.depth_rank`) are planned, half each, apart."""
    target = ask.target
    for a, b in _cam_pairs(f, rng):
        pairs = _pairs(rng, _measurable_both(f, a, b))
        if ask.lookalike:
            pairs = sorted(pairs, key=lambda pq: pq[1] not in twins(f, pq[0]))
        for p, q in pairs:
            if ask.lookalike and ask.design and q not in twins(f, p):
                break
            lookalike_facts = _lookalike_ok(f, (p, q), (a, b), ask.lookalike)
            if lookalike_facts is None:
                continue
            growth = {o: _seen(f, b, o).apparent_size / _seen(f, a, o).apparent_size for o in (p, q)}
            big, small = (p, q) if growth[p] > growth[q] else (q, p)
            if growth[big] < 1.3 * growth[small]:
                continue
            # the object that grows more is the smaller one in the first image in half the
            # questions, and the farther one from the first camera in half (planned apart): the
            # one that looks small or far at first tends to grow more
            bigger_at_first = _seen(f, a, small).visible_px < _seen(f, a, big).visible_px
            if ask.size_rank is not None and int(bigger_at_first) != ask.size_rank:
                continue
            nearer_at_first = _seen(f, a, big).depth < _seen(f, a, small).depth
            if ask.depth_rank is not None and int(nearer_at_first) != ask.depth_rank:
                continue
            first, second = (big, small) if target == 0 else (small, big)
            text = question_text("Q16", ask.wording)
            yield Draft(
                "Q16",
                (a, b),
                text,
                ("the first object", "the second object"),
                target,
                (Ref(a, first), Ref(a, second)),
                _with_anchors(
                    {"objects": [first, second], "size_growth": [round(growth[first], 4), round(growth[second], 4)]},
                    lookalike_facts,
                ),
                ask.lookalike,
                ask.wording,
            )
