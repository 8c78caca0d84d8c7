"""The `mask-heuristic` baseline: a native-region "model" that looks only at the masks and pixels
in `prompt.native` (colour statistics, area, centroid, bbox, fill, border contact) and at
`prompt.task.task_type` and the option texts. It answers with a letter ("A") so the same strict
parser scores it. Its rule per task type is documented in docs/running.md; the rule bodies are
cvbench/tasks/pixel_shortcut.py, the one copy the synthetic generator steers by too. This module
reads the prompt into a `Scene` (a `pixel_shortcut.RegionScene`) and maps the rule's first
alternative to an option letter through its option-text readers (`RULES` below). Where no rule
applies it answers option A and says so in `finish_reason`. The synthetic benchmark is designed so
that these cues do not decide its answers (docs/synthetic.md).
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
from cvbench.imaging.region_stats import SAME_OBJECT_THRESHOLD, RegionFeatures, appearance_similarity, region_features
from cvbench.model_adapters.baselines import _Baseline
from cvbench.model_adapters.registry import ModelOptions
from cvbench.tasks import pixel_shortcut as ps

HEURISTIC_VERSION = "mask-heuristic/1"


def make_mask_heuristic(model_name: str, options: ModelOptions) -> MaskHeuristicBaseline:
    return MaskHeuristicBaseline()


# the region statistics it reads are cvbench/imaging/region_stats.py and its rules
# cvbench/tasks/pixel_shortcut.py (both shared with the synthetic generators, which place every
# answer where these statistics and rules do not give it away)


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
# mask-heuristic: the rules (bodies in cvbench/tasks/pixel_shortcut.py, shared with the generator)
# ======================================================================================

_NAME = r"(?:(?:object|candidate|region)\s+\d+|(?<![A-Za-z])[A-Z](?![A-Za-z]))"
_PAIRING = re.compile(rf"({_NAME})\s+is\s+({_NAME})", re.IGNORECASE)

_NAME_BEFORE_WORD = re.compile(r"\b((?:object|candidate|region)\s+\d+)\s+is\s*$", re.IGNORECASE)
_NAME_BEFORE_LETTER = re.compile(r"(?<![A-Za-z])([A-Z])\s+is\s*$")
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
    question text (with `<region>` kept) and options. A `pixel_shortcut.RegionScene` whose keys are
    mask indices."""

    views: tuple[tuple[RegionFeatures, ...], ...]
    refs: tuple[tuple[int, int], ...]  # (view, region) per <region> placeholder
    question: str
    options: tuple[Option, ...]

    @property
    def n_refs(self) -> int:
        return len(self.refs)

    def ref(self, k: int) -> RegionFeatures:
        v, r = self.refs[k]
        return self.views[v][r]

    def ref_key(self, k: int) -> int:
        return self.refs[k][1]

    def view_of(self, k: int) -> int:
        return self.refs[k][0]

    def other_view(self, view: int) -> int:
        return 1 if view == 0 and len(self.views) > 1 else 0

    def listed(self, view: int) -> range:
        return range(len(self.views[view]))

    def region(self, view: int, key: int) -> RegionFeatures:
        return self.views[view][key]

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


# Each rule asks pixel_shortcut for its ranking of the question's alternatives and answers with
# the option that names the first: a ref through `letter_for`, yes/no, a view, or a keyword.

Rule = Callable[[Scene], "str | None"]


def _ref_letter(scene: Scene, ranking: ps.Ranking[int]) -> str | None:
    return scene.letter_for(ranking.entities, ranking.ranked[0]) if ranking.order else None


def _yes_no_letter(scene: Scene, ranking: ps.Ranking[bool]) -> str | None:
    return yes_no_letter(scene.options, ranking.ranked[0]) if ranking.order else None


def rule_retrieval(scene: Scene) -> str | None:
    """Q1-Q3: the most similar candidate; "none of them" when none clears the threshold."""
    none = keyword_letter(scene.options, ["none"])
    _, cands = ps.query_and_candidates(scene)
    ranking = ps.rank_retrieval(scene, none_at=None if none is None else len(cands))
    if not ranking.order:
        return None
    first = ranking.ranked[0]
    return none if isinstance(first, str) else scene.letter_for(cands, first)


def rule_group_matching(scene: Scene) -> str | None:
    """Q4: the option whose stated pairing ("object 1 is X and object 2 is Y") matches best."""
    index = {n: k for k, n in enumerate(ref_names(scene.question)) if n}
    letters: list[str] = []
    pairings: list[ps.Pairing] = []
    for o in scene.options:
        pairs = [
            (index.get(" ".join(a.lower().split())), index.get(" ".join(b.lower().split())))
            for a, b in _PAIRING.findall(o.text)
        ]
        if pairs and all(ka is not None and kb is not None for ka, kb in pairs):
            letters.append(o.letter)
            pairings.append(tuple((ka, kb) for ka, kb in pairs if ka is not None and kb is not None))
    ranking = ps.rank_group_matching(scene, pairings)
    return letters[ranking.order[0]] if ranking.order else None


def rule_verification(scene: Scene) -> str | None:
    """Q5: yes/no, the same object."""
    return _yes_no_letter(scene, ps.rank_verification(scene))


def rule_visibility(scene: Scene) -> str | None:
    """Q6: yes/no, visible in the other view."""
    return _yes_no_letter(scene, ps.rank_visibility(scene))


def rule_exclusive(scene: Scene) -> str | None:
    """Q7: the referenced object whose best match in the other view is weakest."""
    return _ref_letter(scene, ps.rank_exclusive(scene))


def rule_occluder(scene: Scene) -> str | None:
    """Q8: the candidate whose box covers the target most."""
    return _ref_letter(scene, ps.rank_occluder(scene))


def rule_nearest(scene: Scene) -> str | None:
    """Q9: the candidate nearest to the target."""
    return _ref_letter(scene, ps.rank_nearest(scene))


_SCALE_WORDS = {
    "larger": ["larger", "bigger", "increased", "grew", "closer"],
    "smaller": ["smaller", "decreased", "shrank", "farther", "further"],
    "same": ["same", "similar", "unchanged", "no change"],
}


def rule_scale_change(scene: Scene) -> str | None:
    """Q10: yes/no "larger in the second image?", else the larger / smaller / same option."""
    yes_no = _yes_no_letter(scene, ps.rank_scale_change(scene))
    if yes_no is not None:
        return yes_no
    return keyword_letter(scene.options, _SCALE_WORDS[ps.scale_change_word(scene)])


def rule_single_view_completeness(scene: Scene) -> str | None:
    """Q11: the least (or most, as asked) complete referenced region."""
    return _ref_letter(scene, ps.rank_single_view_completeness(scene, ps.asks_for_least(scene.question)))


def rule_cross_view_completeness(scene: Scene) -> str | None:
    """Q12: the view where the object is more (or less, as asked) complete."""
    ranking = ps.rank_cross_view_completeness(scene, ps.asks_for_least(scene.question))
    return view_letter(scene.options, ranking.ranked[0])


def rule_flip(scene: Scene) -> str | None:
    """Q13: yes/no, the left-right order reversed."""
    return _yes_no_letter(scene, ps.rank_flip(scene))


def rule_displacement(scene: Scene) -> str | None:
    """Q14: the object that moves more between the views."""
    return _ref_letter(scene, ps.rank_displacement(scene))


def rule_depth_consistency(scene: Scene) -> str | None:
    """Q15: yes/no, the same depth order in both views."""
    return _yes_no_letter(scene, ps.rank_depth_consistency(scene))


def rule_scale_growth(scene: Scene) -> str | None:
    """Q16: the object whose area grows by the larger factor."""
    return _ref_letter(scene, ps.rank_scale_growth(scene))


def rule_contact(scene: Scene) -> str | None:
    """Q17: yes/no, touching."""
    return _yes_no_letter(scene, ps.rank_contact(scene))


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
