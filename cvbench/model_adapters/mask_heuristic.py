"""The `mask-heuristic` baseline: a native-region "model" that looks only at the masks and pixels
in `prompt.native` (colour statistics, area, centroid, bbox, fill, border contact) and at
`prompt.task.task_type` and the option texts. It answers with a letter ("A") so the same strict
parser scores it. Its rule per task type is documented in docs/running.md and in `RULES` below;
where no rule applies it answers option A and says so in `finish_reason`. The synthetic benchmark
is designed so that these cues do not decide its answers (docs/synthetic.md).

Over 500 lines: the region features, the option-text readers and the 17 per-task-type rules are
read together (each rule names the cue it uses); split apart they would hide that.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from cvbench.core.types import Capabilities, ModelInfo, NativeRegions, Option, Prompt, Request, Response
from cvbench.imaging.region_stats import (
    SAME_OBJECT_THRESHOLD,
    RegionFeatures,
    appearance_similarity,
    box_cover,
    boxes_in_contact,
    region_features,
)
from cvbench.model_adapters.baselines import _Baseline
from cvbench.model_adapters.registry import ModelOptions

HEURISTIC_VERSION = "mask-heuristic/1"


def make_mask_heuristic(model_name: str, options: ModelOptions) -> MaskHeuristicBaseline:
    return MaskHeuristicBaseline()


# the region statistics it reads are cvbench/imaging/region_stats.py (shared with the synthetic
# generators, which place every answer where these statistics do not give it away)


# ======================================================================================
# mask-heuristic: reading the options
# ======================================================================================

_YES = re.compile(r"^\s*(yes|true|same|consistent|correct)\b", re.IGNORECASE)
_NO = re.compile(r"^\s*(no|false|different|inconsistent|not)\b", re.IGNORECASE)
_ORDINALS = {
    "first": 0,
    "second": 1,
    "third": 2,
    "fourth": 3,
    "fifth": 4,
    "sixth": 5,
    "1st": 0,
    "2nd": 1,
    "3rd": 2,
    "4th": 3,
    "5th": 4,
    "6th": 5,
    "one": 0,
    "two": 1,
    "three": 2,
    "four": 3,
    "five": 4,
    "six": 5,
}
_VIEW_WORDS = re.compile(r"\b(?:image|view|camera|frame|picture)\s*(\d+)\b", re.IGNORECASE)
# a small named-colour table (RGB), enough to read "the red one" in an option
_COLOUR_NAMES: dict[str, tuple[int, int, int]] = {
    "red": (205, 40, 40),
    "orange": (236, 130, 30),
    "yellow": (235, 205, 40),
    "green": (50, 160, 60),
    "teal": (30, 150, 150),
    "cyan": (0, 200, 220),
    "blue": (45, 80, 200),
    "purple": (125, 60, 170),
    "pink": (230, 120, 170),
    "brown": (130, 80, 45),
    "white": (232, 232, 228),
    "grey": (128, 128, 128),
    "gray": (128, 128, 128),
    "black": (40, 40, 44),
}


def yes_no_letter(options: Sequence[Option], value: bool) -> str | None:
    pattern = _YES if value else _NO
    hits = [o.letter for o in options if pattern.match(o.text)]
    return hits[0] if len(hits) == 1 else None


def keyword_letter(options: Sequence[Option], words: Sequence[str]) -> str | None:
    """The single option whose text holds one of `words` (whole words), else None."""
    hits = [o.letter for o in options if any(re.search(rf"\b{re.escape(w)}\b", o.text, re.IGNORECASE) for w in words)]
    return hits[0] if len(hits) == 1 else None


def view_letter(options: Sequence[Option], view_index: int) -> str | None:
    """The option naming view `view_index` ("Image 2", "the second view")."""
    hits = []
    for o in options:
        m = _VIEW_WORDS.search(o.text)
        if m and int(m.group(1)) - 1 == view_index:
            hits.append(o.letter)
        elif re.search(r"\b(view|image|camera)\b", o.text, re.IGNORECASE):
            for word, idx in _ORDINALS.items():
                if idx == view_index and re.search(rf"\b{word}\b", o.text, re.IGNORECASE):
                    hits.append(o.letter)
                    break
    return hits[0] if len(dict.fromkeys(hits)) == 1 else None


def entity_letter(
    options: Sequence[Option],
    entities: Sequence[RegionFeatures],
    best: int,
    image_colours: Sequence[np.ndarray] | None = None,
) -> str | None:
    """The option that names entity `best` of `entities` (candidate regions in question order).

    Read, in order: an ordinal or number naming the candidate ("the second object", "object 2",
    "region 2"); a colour word naming the candidate's colour; else, when there are exactly as
    many options as candidates, the option at the same position.
    """
    n = len(entities)
    by_ordinal: dict[str, int] = {}
    for o in options:
        text = o.text.lower()
        found = [idx for word, idx in _ORDINALS.items() if re.search(rf"\b{word}\b", text) and idx < n]
        numbers = [int(x) - 1 for x in re.findall(r"\b(?:object|region|candidate|item|#)\s*(\d+)\b", text)]
        found += [x for x in numbers if 0 <= x < n]
        if len(set(found)) == 1:
            by_ordinal[o.letter] = found[0]
    if len(by_ordinal) >= 2 and len(set(by_ordinal.values())) == len(by_ordinal):
        hits = [letter for letter, idx in by_ordinal.items() if idx == best]
        if len(hits) == 1:
            return hits[0]
    colour_of = {}
    for o in options:
        words = [c for c in _COLOUR_NAMES if re.search(rf"\b{c}\b", o.text, re.IGNORECASE)]
        if len(words) == 1:
            colour_of[o.letter] = words[0]
    if len(colour_of) >= 2 and len(set(colour_of.values())) == len(colour_of):
        target = nearest_colour_name(entities[best].lab)
        hits = [letter for letter, c in colour_of.items() if c == target or {c, target} == {"grey", "gray"}]
        if len(hits) == 1:
            return hits[0]
    if len(options) == n:
        return options[best].letter
    return None


def nearest_colour_name(mean_lab: np.ndarray) -> str:
    names = list(_COLOUR_NAMES)
    rgb = np.array([_COLOUR_NAMES[n] for n in names], dtype=np.uint8).reshape(-1, 1, 3)
    labs = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(float)
    return names[int(np.argmin(np.linalg.norm(labs - mean_lab, axis=1)))]


# ======================================================================================
# mask-heuristic: the rules
# ======================================================================================

_NAME_BEFORE_WORD = re.compile(r"\b((?:object|candidate|region)\s+\d+)\s+is\s*$", re.IGNORECASE)
_NAME_BEFORE_LETTER = re.compile(r"(?<![A-Za-z])([A-Z])\s+is\s*$")
_NAME = r"(?:(?:object|candidate|region)\s+\d+|(?<![A-Za-z])[A-Z](?![A-Za-z]))"
_PAIRING = re.compile(rf"({_NAME})\s+is\s+({_NAME})", re.IGNORECASE)


_NAME_AFTER_WORD = re.compile(r"^\s*\(\s*((?:object|candidate|region)\s+\d+)\s*\)", re.IGNORECASE)
_NAME_AFTER_LETTER = re.compile(r"^\s*\(\s*([A-Z])\s*\)")


def ref_names(question: str) -> list[str | None]:
    """The name the question gives each `<region>`: "candidate 2 is <region>" or
    "<region> (candidate 2)" -> "candidate 2"; "X is <region>" or "<region> (X)" -> "x"."""
    parts = question.split("<region>")
    names: list[str | None] = []
    for k, part in enumerate(parts[:-1]):
        m = (
            _NAME_BEFORE_WORD.search(part)
            or _NAME_BEFORE_LETTER.search(part)
            or _NAME_AFTER_WORD.match(parts[k + 1])
            or _NAME_AFTER_LETTER.match(parts[k + 1])
        )
        names.append(" ".join(m.group(1).lower().split()) if m else None)
    return names


@dataclass(frozen=True)
class Scene:
    """Features of every object of every view, the referenced regions in question order, and the
    question text (with `<region>` kept) and options."""

    views: tuple[tuple[RegionFeatures, ...], ...]
    refs: tuple[tuple[int, int], ...]  # (view, region) per <region> placeholder
    question: str
    options: tuple[Option, ...]

    def ref(self, k: int) -> RegionFeatures:
        v, r = self.refs[k]
        return self.views[v][r]

    def view_of(self, k: int) -> int:
        return self.refs[k][0]

    def other_view(self, view: int) -> int:
        return 1 if view == 0 and len(self.views) > 1 else 0

    def best_match(self, feat: RegionFeatures, view: int, exclude: Sequence[int] = ()) -> tuple[int, float]:
        """The object of `view` most similar to `feat`: (index, similarity); (-1, -inf) if none."""
        best, best_sim = -1, float("-inf")
        for i, other in enumerate(self.views[view]):
            if i in exclude:
                continue
            sim = appearance_similarity(feat, other)
            if sim > best_sim:
                best, best_sim = i, sim
        return best, best_sim

    def counterpart(self, k: int) -> RegionFeatures:
        """Ref k's object in the other view: the ref at the same position among the other view's refs
        ("the same two objects, in the same order"), else its best appearance match there."""
        v = self.view_of(k)
        mine = [j for j in range(len(self.refs)) if self.view_of(j) == v]
        theirs = [j for j in range(len(self.refs)) if self.view_of(j) == self.other_view(v)]
        if theirs and len(theirs) == len(mine):
            return self.ref(theirs[mine.index(k)])
        idx, _ = self.best_match(self.ref(k), self.other_view(v))
        return self.views[self.other_view(v)][idx] if idx >= 0 else self.ref(k)

    def letter_for(self, pool: Sequence[int], k: int) -> str | None:
        """The option that names ref k (one of `pool`): by the name the question gives it
        ("candidate 2"), else by ordinal/colour/position within the pool."""
        names = ref_names(self.question)
        named: dict[str, int] = {}
        for o in self.options:
            found = [j for j in pool if j < len(names) and (name := names[j]) and _mentions(o.text, name)]
            if len(found) == 1:
                named[o.letter] = found[0]
        hits = [letter for letter, j in named.items() if j == k]
        if len(named) >= 2 and len(hits) == 1:
            return hits[0]
        return entity_letter(self.options, [self.ref(j) for j in pool], list(pool).index(k))


def _mentions(text: str, name: str) -> bool:
    if len(name) == 1:
        return re.search(rf"(?<![A-Za-z]){re.escape(name.upper())}(?![A-Za-z])", text) is not None
    return re.search(rf"\b{re.escape(name)}\b", " ".join(text.lower().split())) is not None


def build_scene(native: NativeRegions, question: str, options: Sequence[Option]) -> Scene:
    views = tuple(tuple(region_features(v.image, m) for m in v.masks) for v in native.views)
    return Scene(views, tuple((r.view_index, r.region_index) for r in native.refs), question, tuple(options))


def _query_and_candidates(scene: Scene) -> tuple[int, list[int]]:
    """The query is the ref alone in its view (else the first ref); the candidates are the refs
    in the other view(s)."""
    by_view: dict[int, list[int]] = {}
    for k in range(len(scene.refs)):
        by_view.setdefault(scene.view_of(k), []).append(k)
    singles = [refs[0] for refs in by_view.values() if len(refs) == 1]
    query = singles[0] if len(singles) == 1 and len(by_view) > 1 else 0
    cands = [k for k in range(len(scene.refs)) if scene.view_of(k) != scene.view_of(query)]
    if not cands:
        cands = [k for k in range(len(scene.refs)) if k != query]
    return query, cands


def _first_view_refs(scene: Scene) -> list[int]:
    return [k for k in range(len(scene.refs)) if scene.view_of(k) == scene.view_of(0)]


def _least_or_most(question: str) -> str:
    return "least" if re.search(r"\b(least|fewest|smallest share|less complete)\b", question, re.IGNORECASE) else "most"


Rule = Callable[[Scene], "str | None"]


def rule_retrieval(scene: Scene) -> str | None:
    """Q1-Q3: the candidate most similar to the query in colour histogram, mean colour and shape;
    "none of them" when no candidate clears the same-object threshold and such an option exists."""
    q, cands = _query_and_candidates(scene)
    if not cands:
        return None
    sims = [appearance_similarity(scene.ref(q), scene.ref(c)) for c in cands]
    best = int(np.argmax(sims))
    if sims[best] < SAME_OBJECT_THRESHOLD:
        none = keyword_letter(scene.options, ["none"])
        if none is not None:
            return none
    return scene.letter_for(cands, cands[best])


def rule_group_matching(scene: Scene) -> str | None:
    """Q4: the option whose stated pairing ("object 1 is X and object 2 is Y") has the highest
    total appearance similarity."""
    names = ref_names(scene.question)
    index = {n: k for k, n in enumerate(names) if n}
    best_letter, best_score = None, float("-inf")
    for o in scene.options:
        pairs = _PAIRING.findall(o.text)
        total, ok = 0.0, bool(pairs)
        for a, b in pairs:
            ka, kb = index.get(" ".join(a.lower().split())), index.get(" ".join(b.lower().split()))
            if ka is None or kb is None:
                ok = False
                break
            total += appearance_similarity(scene.ref(ka), scene.ref(kb))
        if ok and total > best_score:
            best_letter, best_score = o.letter, total
    return best_letter


def rule_verification(scene: Scene) -> str | None:
    """Q5: the same object when the two regions' similarity clears the threshold and each is the
    other's best match in its view."""
    if len(scene.refs) < 2:
        return None
    a, b = scene.ref(0), scene.ref(1)
    best, _ = scene.best_match(a, scene.view_of(1))
    same = appearance_similarity(a, b) >= SAME_OBJECT_THRESHOLD and best == scene.refs[1][1]
    return yes_no_letter(scene.options, same)


def rule_visibility(scene: Scene) -> str | None:
    """Q6: visible in the other view when some object there clears the same-object threshold."""
    _, sim = scene.best_match(scene.ref(0), scene.other_view(scene.view_of(0)))
    return yes_no_letter(scene.options, sim >= SAME_OBJECT_THRESHOLD)


def rule_exclusive(scene: Scene) -> str | None:
    """Q7: among the referenced regions, the one whose best match in the other view is weakest."""
    pool = _first_view_refs(scene)
    scores = [scene.best_match(scene.ref(k), scene.other_view(scene.view_of(k)))[1] for k in pool]
    return scene.letter_for(pool, pool[int(np.argmin(scores))])


def rule_occluder(scene: Scene) -> str | None:
    """Q8: find the target in the candidates' view (best match outside the candidates); the
    occluder is the candidate whose box overlaps the target's box most, with a bonus for a lower
    bottom edge (nearer the camera on a ground plane)."""
    q, cands = _query_and_candidates(scene)
    if not cands:
        return None
    cview = scene.view_of(cands[0])
    taken = [scene.refs[c][1] for c in cands]
    idx, _ = scene.best_match(scene.ref(q), cview, exclude=taken)
    target = scene.views[cview][idx] if idx >= 0 else scene.ref(q)

    def score(k: int) -> float:
        c = scene.ref(k)
        return box_cover(c, target) + (0.1 if c.bottom > target.bottom else 0.0)

    return scene.letter_for(cands, max(cands, key=score))


def rule_nearest(scene: Scene) -> str | None:
    """Q9: find the query in the candidates' view; the candidate whose centroid is nearest to it
    there (image distance stands in for 3D distance)."""
    q, cands = _query_and_candidates(scene)
    if not cands:
        return None
    cview = scene.view_of(cands[0])
    taken = [scene.refs[c][1] for c in cands]
    idx, _ = scene.best_match(scene.ref(q), cview, exclude=taken)
    anchor = scene.views[cview][idx] if idx >= 0 else scene.ref(q)
    dist = {
        c: float(np.hypot(scene.ref(c).centroid[0] - anchor.centroid[0], scene.ref(c).centroid[1] - anchor.centroid[1]))
        for c in cands
    }
    return scene.letter_for(cands, min(cands, key=lambda c: dist[c]))


def rule_scale_change(scene: Scene) -> str | None:
    """Q10: "larger in the second image?" -> yes when the mask area grows; with larger / smaller /
    same options: ratio above 1.25, below 0.8, or in between."""
    a, b = scene.ref(0), scene.counterpart(0)
    ratio = b.area / max(a.area, 1e-9)
    yes_no = yes_no_letter(scene.options, ratio > 1.0)
    if yes_no is not None:
        return yes_no
    if ratio > 1.25:
        return keyword_letter(scene.options, ["larger", "bigger", "increased", "grew", "closer"])
    if ratio < 0.8:
        return keyword_letter(scene.options, ["smaller", "decreased", "shrank", "farther", "further"])
    return keyword_letter(scene.options, ["same", "similar", "unchanged", "no change"])


def rule_single_view_completeness(scene: Scene) -> str | None:
    """Q11: completeness = convex fill minus a penalty for touching the image border; the least
    (or most, as the question asks) complete referenced region."""
    pool = _first_view_refs(scene)
    scores = [scene.ref(k).completeness for k in pool]
    pick = int(np.argmin(scores)) if _least_or_most(scene.question) == "least" else int(np.argmax(scores))
    return scene.letter_for(pool, pool[pick])


def rule_cross_view_completeness(scene: Scene) -> str | None:
    """Q12: the view where the object's completeness (fill, border contact) is higher."""
    a, b = scene.ref(0), scene.counterpart(0)
    va = scene.view_of(0)
    better = va if a.completeness >= b.completeness else scene.other_view(va)
    if _least_or_most(scene.question) == "least":
        better = scene.other_view(better) if better == va else va
    return view_letter(scene.options, better)


def rule_flip(scene: Scene) -> str | None:
    """Q13: reversed when the two objects' x order differs between the views."""
    if len(scene.refs) < 2:
        return None
    a1, b1 = scene.ref(0), scene.ref(1)
    a2, b2 = scene.counterpart(0), scene.counterpart(1)
    flipped = np.sign(a1.centroid[0] - b1.centroid[0]) != np.sign(a2.centroid[0] - b2.centroid[0])
    return yes_no_letter(scene.options, bool(flipped))


def rule_displacement(scene: Scene) -> str | None:
    """Q14: the object whose centroid moves more (as a fraction of the image) between the views."""
    pool = _first_view_refs(scene)
    moves = [
        float(
            np.hypot(
                scene.ref(k).centroid[0] - scene.counterpart(k).centroid[0],
                scene.ref(k).centroid[1] - scene.counterpart(k).centroid[1],
            )
        )
        for k in pool
    ]
    return scene.letter_for(pool, pool[int(np.argmax(moves))]) if pool else None


def rule_depth_consistency(scene: Scene) -> str | None:
    """Q15: nearer = lower bottom edge (objects stand on a ground plane); consistent when the
    order is the same in both views."""
    if len(scene.refs) < 2:
        return None
    a1, b1 = scene.ref(0), scene.ref(1)
    a2, b2 = scene.counterpart(0), scene.counterpart(1)
    same = np.sign(a1.bottom - b1.bottom) == np.sign(a2.bottom - b2.bottom)
    return yes_no_letter(scene.options, bool(same))


def rule_scale_growth(scene: Scene) -> str | None:
    """Q16: the object whose mask area grows by the larger factor between the views."""
    pool = _first_view_refs(scene)
    growth = [scene.counterpart(k).area / max(scene.ref(k).area, 1e-9) for k in pool]
    return scene.letter_for(pool, pool[int(np.argmax(growth))]) if pool else None


def rule_contact(scene: Scene) -> str | None:
    """Q17: touching when, in the other view too, the two objects' boxes meet and their bottom
    edges are level (both on the ground) or one's bottom sits on the other's top."""
    if len(scene.refs) < 2:
        return None

    touching = boxes_in_contact(scene.ref(0), scene.ref(1)) and boxes_in_contact(
        scene.counterpart(0), scene.counterpart(1)
    )
    return yes_no_letter(scene.options, touching)


RULES: dict[str, Rule] = {
    "Q1": rule_retrieval,
    "Q2": rule_retrieval,
    "Q3": rule_retrieval,
    "Q4": rule_group_matching,
    "Q5": rule_verification,
    "Q6": rule_visibility,
    "Q7": rule_exclusive,
    "Q8": rule_occluder,
    "Q9": rule_nearest,
    "Q10": rule_scale_change,
    "Q11": rule_single_view_completeness,
    "Q12": rule_cross_view_completeness,
    "Q13": rule_flip,
    "Q14": rule_displacement,
    "Q15": rule_depth_consistency,
    "Q16": rule_scale_growth,
    "Q17": rule_contact,
}


def mmvm_answer(native: NativeRegions, options: Sequence[Option]) -> str | None:
    """MMVM: the candidate most similar to the query (colour histogram + mean colour + shape),
    answered through the option whose text is that candidate's id."""
    if native.query is None or len(native.views) < 2:
        return None
    qv = native.views[native.query.view_index]
    query = region_features(qv.image, qv.masks[native.query.region_index])
    cand_view = native.views[-1]
    feats = [region_features(cand_view.image, m) for m in cand_view.masks]
    if not feats:
        return None
    sims = [appearance_similarity(query, f) for f in feats]
    best_id = cand_view.region_ids[int(np.argmax(sims))]
    hits = [o.letter for o in options if o.text.strip() == str(best_id).strip()]
    return hits[0] if len(hits) == 1 else None


def question_of(prompt: Prompt) -> str:
    """The question part of the prompt text (before the option lines)."""
    return prompt.text.rsplit("\n\n", 1)[0] if prompt.options else prompt.text


def heuristic_answer(prompt: Prompt) -> tuple[str | None, str]:
    """(letter, how) for one prompt; letter None when no rule applies."""
    if prompt.native is None:
        return None, "no native regions in the prompt"
    facts = prompt.task
    benchmark = facts.benchmark if facts is not None else None
    if benchmark == "mmvm":
        return mmvm_answer(prompt.native, prompt.options), "mmvm appearance match"
    task_type = facts.task_type if facts is not None else None
    rule = RULES.get(str(task_type))
    if rule is None or not prompt.native.refs:
        return None, f"no rule for task type {task_type!r}"
    letter = rule(build_scene(prompt.native, question_of(prompt), prompt.options))
    return letter, f"{task_type} {rule.__name__}"


class MaskHeuristicBaseline(_Baseline):
    def __init__(self) -> None:
        self.info = ModelInfo("baseline:mask-heuristic", "Mask heuristic", "baseline", None, "baseline")
        self.capabilities = Capabilities(native_regions=True)

    def settings(self) -> Mapping[str, Any]:
        return {"rules": HEURISTIC_VERSION, "same_object_threshold": SAME_OBJECT_THRESHOLD}

    async def generate(self, request: Request) -> Response:
        started = time.perf_counter()
        prompt = request.prompt
        letter, how = await asyncio.to_thread(heuristic_answer, prompt)  # pixel work stays off the event loop
        if letter is None and prompt.options:
            return self._answer(prompt.options[0].letter, started, f"fallback to the first option ({how})")
        return self._answer(letter, started, how)
