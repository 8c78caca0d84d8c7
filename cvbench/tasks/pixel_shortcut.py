"""The pixel shortcut's rules, one copy: per CrossViewBench task type, how a reader of region
statistics alone (imaging/region_stats.py: colour histogram and mean colour, mask area, centroid,
box, convex fill, border contact; no cross-view reasoning) ranks the alternatives of a question.

Two readers use these rules and must agree exactly: the `mask-heuristic` baseline
(model_adapters/mask_heuristic.py) over the masks and pixels of a prompt, answering through the
option that names the first alternative, and the synthetic generator (tasks/synthetic/questions/
shortcut.py) over the scene facts, steering by the whole ranking, whose options list the
alternatives in the same order as `Ranking.entities`. Each reads its regions through
`RegionScene`; the rules here are pure functions of it. The rules in words: docs/running.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

import numpy as np

from cvbench.imaging.region_stats import (
    SAME_OBJECT_THRESHOLD,
    RegionFeatures,
    appearance_similarity,
    box_cover,
    boxes_in_contact,
)

K = TypeVar("K", bound=Hashable)
E = TypeVar("E")

NONE_OF_THEM: Literal["none of them"] = "none of them"  # Q1-Q3's alternative to every candidate
Pairing = tuple[tuple[int, int], ...]  # Q4: an option's stated (ref, ref) pairs


class RegionScene(Protocol[K]):
    """The regions a question is asked about: the referenced ones (`<region>` k, in question
    order) and every region listed in each view, named by a key of the reader's choice (a mask
    index, an object id)."""

    @property
    def n_refs(self) -> int: ...

    def ref(self, k: int) -> RegionFeatures: ...

    def ref_key(self, k: int) -> K:
        """The key of ref k among the regions of its own view."""
        ...

    def view_of(self, k: int) -> int: ...

    def other_view(self, view: int) -> int: ...

    def listed(self, view: int) -> Sequence[K]:
        """The keys of every region of `view`, in listing order (ties in a match go to the earlier)."""
        ...

    def region(self, view: int, key: K) -> RegionFeatures: ...


@dataclass(frozen=True)
class Ranking(Generic[E]):
    """The alternatives of one decision in their natural order (candidates in question order,
    yes before no, the ref's own view first) and the shortcut's preference over them."""

    entities: tuple[E, ...]
    order: tuple[int, ...]  # indices into `entities`, preferred first; empty: no decision

    @property
    def ranked(self) -> list[E]:
        return [self.entities[i] for i in self.order]


def rank_by(scores: Sequence[float], descending: bool = True) -> tuple[int, ...]:
    """Indices in preference order: best score first, ties to the earlier index (as argmax/argmin)."""
    return tuple(sorted(range(len(scores)), key=lambda k: -scores[k] if descending else scores[k]))


def _yes_no(value: bool) -> Ranking[bool]:
    return Ranking((True, False), (0, 1) if value else (1, 0))


def _ranked(entities: Sequence[E], scores: Sequence[float], descending: bool = True) -> Ranking[E]:
    return Ranking(tuple(entities), rank_by(scores, descending))


# --- reading the scene -----------------------------------------------------------------------


def best_match(
    s: RegionScene[K], feat: RegionFeatures, view: int, exclude: Collection[K] = ()
) -> tuple[K | None, float]:
    """The region of `view` most similar to `feat`: (key, similarity); (None, -inf) if none."""
    best, best_sim = None, float("-inf")
    for key in s.listed(view):
        if key in exclude:
            continue
        sim = appearance_similarity(feat, s.region(view, key))
        if sim > best_sim:
            best, best_sim = key, sim
    return best, best_sim


def counterpart(s: RegionScene[K], k: int) -> RegionFeatures:
    """Ref k's object in the other view: the ref at the same position among the other view's refs
    ("the same two objects, in the same order"), else its best appearance match there."""
    v = s.view_of(k)
    other = s.other_view(v)
    mine = [j for j in range(s.n_refs) if s.view_of(j) == v]
    theirs = [j for j in range(s.n_refs) if s.view_of(j) == other]
    if theirs and len(theirs) == len(mine):
        return s.ref(theirs[mine.index(k)])
    key = best_match(s, s.ref(k), other)[0]
    return s.region(other, key) if key is not None else s.ref(k)


def query_and_candidates(s: RegionScene[K]) -> tuple[int, list[int]]:
    """The query is the ref alone in its view (else the first ref); the candidates are the refs
    in the other view(s) (else every other ref)."""
    by_view: dict[int, list[int]] = {}
    for k in range(s.n_refs):
        by_view.setdefault(s.view_of(k), []).append(k)
    singles = [refs[0] for refs in by_view.values() if len(refs) == 1]
    query = singles[0] if len(singles) == 1 and len(by_view) > 1 else 0
    cands = [k for k in range(s.n_refs) if s.view_of(k) != s.view_of(query)]
    return query, cands or [k for k in range(s.n_refs) if k != query]


def first_view_refs(s: RegionScene[K]) -> list[int]:
    return [k for k in range(s.n_refs) if s.view_of(k) == s.view_of(0)]


def asks_for_least(question: str) -> bool:
    """Q11 / Q12: the question asks for the least complete (else the most)."""
    return re.search(r"\b(least|fewest|smallest share|less complete)\b", question, re.IGNORECASE) is not None


def _centre_distance(a: RegionFeatures, b: RegionFeatures) -> float:
    return float(np.hypot(a.centroid[0] - b.centroid[0], a.centroid[1] - b.centroid[1]))


# --- the rules ---------------------------------------------------------------------------------


def rank_retrieval(s: RegionScene[K], none_at: int | None) -> Ranking[int | Literal["none of them"]]:
    """Q1-Q3: the candidates by appearance similarity to the query (colour histogram, mean colour,
    shape); "none of them", offered at position `none_at` among the alternatives, scores the
    same-object threshold (chosen when no candidate clears it; a tie goes to the earlier)."""
    q, cands = query_and_candidates(s)
    if not cands:
        return Ranking((), ())
    scores = [appearance_similarity(s.ref(q), s.ref(c)) for c in cands]
    entities: list[int | Literal["none of them"]] = list(cands)
    if none_at is not None:
        scores.insert(none_at, SAME_OBJECT_THRESHOLD)
        entities.insert(none_at, NONE_OF_THEM)
    return _ranked(entities, scores)


def rank_group_matching(s: RegionScene[K], pairings: Sequence[Pairing]) -> Ranking[int]:
    """Q4: the pairings (indices into `pairings`) by the total appearance similarity of their pairs."""
    totals = [sum(appearance_similarity(s.ref(a), s.ref(b)) for a, b in pairs) for pairs in pairings]
    return _ranked(range(len(pairings)), totals)


def rank_verification(s: RegionScene[K]) -> Ranking[bool]:
    """Q5: the same object when the two regions' similarity clears the threshold and the second is
    the first one's best match in its view."""
    if s.n_refs < 2:
        return Ranking((), ())
    a, b = s.ref(0), s.ref(1)
    match = best_match(s, a, s.view_of(1))[0]
    return _yes_no(appearance_similarity(a, b) >= SAME_OBJECT_THRESHOLD and match == s.ref_key(1))


def rank_visibility(s: RegionScene[K]) -> Ranking[bool]:
    """Q6: visible in the other view when some region there clears the same-object threshold."""
    _, sim = best_match(s, s.ref(0), s.other_view(s.view_of(0)))
    return _yes_no(sim >= SAME_OBJECT_THRESHOLD)


def rank_exclusive(s: RegionScene[K]) -> Ranking[int]:
    """Q7: the first view's refs, the one whose best match in the other view is weakest first."""
    pool = first_view_refs(s)
    return _ranked(pool, [best_match(s, s.ref(k), s.other_view(s.view_of(k)))[1] for k in pool], descending=False)


def _located(s: RegionScene[K]) -> tuple[list[int], RegionFeatures]:
    """(candidates, the query found in the candidates' view: its best match outside them)."""
    q, cands = query_and_candidates(s)
    if not cands:
        return [], s.ref(q)
    view = s.view_of(cands[0])
    key = best_match(s, s.ref(q), view, exclude=[s.ref_key(c) for c in cands])[0]
    return cands, s.region(view, key) if key is not None else s.ref(q)


def rank_occluder(s: RegionScene[K]) -> Ranking[int]:
    """Q8: the candidates by how much of the target's box their box covers, with a bonus for a
    lower bottom edge (nearer the camera on a ground plane)."""
    cands, target = _located(s)
    scores = [box_cover(s.ref(c), target) + (0.1 if s.ref(c).bottom > target.bottom else 0.0) for c in cands]
    return _ranked(cands, scores)


def rank_nearest(s: RegionScene[K]) -> Ranking[int]:
    """Q9: the candidates by centroid distance to the target (image distance stands in for 3D)."""
    cands, target = _located(s)
    return _ranked(cands, [_centre_distance(s.ref(c), target) for c in cands], descending=False)


def scale_ratio(s: RegionScene[K]) -> float:
    """Q10: the object's mask area in the other view over its area in its own."""
    return counterpart(s, 0).area / max(s.ref(0).area, 1e-9)


def rank_scale_change(s: RegionScene[K]) -> Ranking[bool]:
    """Q10: "larger in the second image?": yes when the mask area grows."""
    return _yes_no(scale_ratio(s) > 1.0)


def scale_change_word(s: RegionScene[K]) -> Literal["larger", "smaller", "same"]:
    """Q10 with larger / smaller / same options: area ratio above 1.25, below 0.8, or in between."""
    ratio = scale_ratio(s)
    return "larger" if ratio > 1.25 else "smaller" if ratio < 0.8 else "same"


def rank_single_view_completeness(s: RegionScene[K], least: bool) -> Ranking[int]:
    """Q11: the first view's refs by completeness (convex fill minus a penalty for touching the
    image border), the least complete first when the question asks for it (else the most)."""
    pool = first_view_refs(s)
    return _ranked(pool, [s.ref(k).completeness for k in pool], descending=not least)


def rank_cross_view_completeness(s: RegionScene[K], least: bool) -> Ranking[int]:
    """Q12: the ref's view and the other: the one where the object's completeness is higher (lower,
    when the question asks for the least) first; a tie goes to the ref's own view (the other, for least)."""
    view = s.view_of(0)
    own_higher = s.ref(0).completeness >= counterpart(s, 0).completeness
    return Ranking((view, s.other_view(view)), (0, 1) if own_higher != least else (1, 0))


def rank_flip(s: RegionScene[K]) -> Ranking[bool]:
    """Q13: reversed when the two objects' x order differs between the views."""
    if s.n_refs < 2:
        return Ranking((), ())
    a1, b1, a2, b2 = s.ref(0), s.ref(1), counterpart(s, 0), counterpart(s, 1)
    return _yes_no(bool(np.sign(a1.centroid[0] - b1.centroid[0]) != np.sign(a2.centroid[0] - b2.centroid[0])))


def rank_displacement(s: RegionScene[K]) -> Ranking[int]:
    """Q14: the first view's refs, the one whose centroid moves more (as a fraction of the image) first."""
    pool = first_view_refs(s)
    return _ranked(pool, [_centre_distance(s.ref(k), counterpart(s, k)) for k in pool])


def rank_depth_consistency(s: RegionScene[K]) -> Ranking[bool]:
    """Q15: nearer = lower bottom edge (objects stand on a ground plane); consistent when the order
    is the same in both views."""
    if s.n_refs < 2:
        return Ranking((), ())
    a1, b1, a2, b2 = s.ref(0), s.ref(1), counterpart(s, 0), counterpart(s, 1)
    return _yes_no(bool(np.sign(a1.bottom - b1.bottom) == np.sign(a2.bottom - b2.bottom)))


def rank_scale_growth(s: RegionScene[K]) -> Ranking[int]:
    """Q16: the first view's refs, the one whose mask area grows by the larger factor first."""
    pool = first_view_refs(s)
    return _ranked(pool, [counterpart(s, k).area / max(s.ref(k).area, 1e-9) for k in pool])


def rank_contact(s: RegionScene[K]) -> Ranking[bool]:
    """Q17: touching when, in both views, the two objects' boxes meet and their bottom edges are
    level (both on the ground) or one's bottom sits on the other's top."""
    if s.n_refs < 2:
        return Ranking((), ())
    pair_here = boxes_in_contact(s.ref(0), s.ref(1))
    return _yes_no(pair_here and boxes_in_contact(counterpart(s, 0), counterpart(s, 1)))


@dataclass(frozen=True)
class Asked:
    """What a question's text and options add to its regions, for the types that read them."""

    none_at: int | None = None  # Q1-Q3: the position of "none of them" among the alternatives
    pairings: tuple[Pairing, ...] = ()  # Q4: each option's stated pairs
    least: bool = False  # Q11 / Q12: the question asks for the least complete (asks_for_least)


def rank(task_type: str, s: RegionScene[K], asked: Asked = Asked()) -> Ranking[Any]:
    """The shortcut's ranking of the alternatives of a question of `task_type`."""
    if task_type in ("Q1", "Q2", "Q3"):
        return rank_retrieval(s, asked.none_at)
    if task_type == "Q4":
        return rank_group_matching(s, asked.pairings)
    if task_type == "Q11":
        return rank_single_view_completeness(s, asked.least)
    if task_type == "Q12":
        return rank_cross_view_completeness(s, asked.least)
    ranker = _RANKERS.get(task_type)
    if ranker is None:
        raise ValueError(f"no pixel-shortcut rule for task type {task_type!r}")
    return ranker(s)


_RANKERS: dict[str, Callable[[RegionScene[Any]], Ranking[Any]]] = {
    "Q5": rank_verification,
    "Q6": rank_visibility,
    "Q7": rank_exclusive,
    "Q8": rank_occluder,
    "Q9": rank_nearest,
    "Q10": rank_scale_change,
    "Q13": rank_flip,
    "Q14": rank_displacement,
    "Q15": rank_depth_consistency,
    "Q16": rank_scale_growth,
    "Q17": rank_contact,
}
