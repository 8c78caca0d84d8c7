"""What a pixel shortcut answers: per task type, the option that a region-statistics reader
picks from the two images alone (colour histogram and mean colour, mask area, centroid, box,
convex fill, border contact), with no cross-view reasoning.

The planner draws, per question, whether this shortcut must pick the correct option (with
probability 1/options, so it scores chance) or must not; the generators only ask questions that
fit (`fits`). The answers still come from the scene geometry alone: the shortcut only decides
which of the exact questions a scene offers is asked. The rules are the `mask-heuristic`
baseline's own (cvbench/tasks/pixel_shortcut.py, one copy for both, over the region statistics of
imaging/region_stats.py); here `_Reader` hands them the original pixels and visible masks that a
run hands to a native-region model, read from the scene facts, and a draft's options list the
alternatives in the order of the rule's `Ranking.entities`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from cvbench.imaging.region_stats import RegionFeatures as Region
from cvbench.imaging.region_stats import region_features
from cvbench.tasks import pixel_shortcut as ps
from cvbench.tasks.synthetic.facts import SceneFacts
from cvbench.tasks.synthetic.questions.common import Draft


class _Reader:
    """Regions of one draft's two views (cached on the scene facts): a `pixel_shortcut.RegionScene`
    whose views are the draft's cameras in order and whose keys are object ids."""

    def __init__(self, f: SceneFacts, d: Draft) -> None:
        self.f, self.d = f, d
        self.cams = d.cams

    @property
    def n_refs(self) -> int:
        return len(self.d.refs)

    def region(self, view: int, oid: str) -> Region:
        cam = self.cams[view]
        key = ("region", cam, oid)
        if key not in self.f.cache:
            image = self.f.views[cam]
            self.f.cache[key] = region_features(image.image, image.ids == self.f.index_of(oid))
        region = self.f.cache[key]
        assert isinstance(region, Region)
        return region

    def listed(self, view: int) -> list[str]:
        cam = self.cams[view]
        return [o.object_id for o in self.f.scene.objects if self.f.seen[cam][o.object_id].visible_px > 0]

    def ref(self, k: int) -> Region:
        return self.region(self.view_of(k), self.d.refs[k].object_id)

    def ref_key(self, k: int) -> str:
        return self.d.refs[k].object_id

    def view_of(self, k: int) -> int:
        return self.cams.index(self.d.refs[k].cam)

    def other_view(self, view: int) -> int:
        return 1 - view


_PAIR = re.compile(r"object 1 is ([XYZ]) and object 2 is ([XYZ])")


def _asked(d: Draft) -> ps.Asked:
    """What the draft's question and options add: where "none of them" stands, Q4's pairings
    (refs 0 and 1 are objects 1 and 2, refs 2-4 X, Y, Z), whether it asks for the least."""
    pairings: list[ps.Pairing] = []
    if d.task_type == "Q4":
        for text in d.options:
            m = _PAIR.search(text)
            assert m is not None, text
            x, y = (2 + "XYZ".index(g) for g in m.groups())
            pairings.append(((0, x), (1, y)))
    none_at = d.options.index(ps.NONE_OF_THEM) if ps.NONE_OF_THEM in d.options else None
    return ps.Asked(none_at, tuple(pairings), ps.asks_for_least(d.question))


def shortcut_ranking(f: SceneFacts, d: Draft) -> list[int]:
    """Every option index, in the order the pixel shortcut prefers them (first: its answer)."""
    return list(ps.rank(d.task_type, _Reader(f, d), _asked(d)).order)


def shortcut_pick(f: SceneFacts, d: Draft) -> int:
    """The option index the pixel shortcut picks for this draft."""
    return shortcut_ranking(f, d)[0]


def box_agrees(f: SceneFacts, d: Draft) -> bool:
    """Q16: the visible box's width and height each change the way the visible mask's area
    does (for every object asked about), so that steering by the mask area does not leave the box
    as the tell: any visible-extent statistic that grows with width and height (box area, diagonal)
    then says the same as the mask, and a planned miss shrinks the whole visible extent."""
    if d.task_type != "Q16":  # Q10 marks its object in one image only: no box to read there
        return True
    r = _Reader(f, d)
    pool = ps.first_view_refs(r)

    def growth(size: Callable[[Region], float]) -> list[float]:
        return [size(ps.counterpart(r, k)) / max(size(r.ref(k)), 1e-9) for k in pool]

    cues = [
        growth(lambda x: x.area),
        growth(lambda x: x.bbox[2] - x.bbox[0]),
        growth(lambda x: x.bbox[3] - x.bbox[1]),
    ]
    return len({ps.rank_by(g)[0] for g in cues}) == 1


def fits(f: SceneFacts, d: Draft, ranks: tuple[int, ...] | None, strict: bool = True) -> bool:
    """Whether the draft fits the plan: the correct option holds one of `ranks` in the shortcut's
    preference order (0: the shortcut picks it; None: any), and, if `strict`, the visible box
    tells the same as the mask (`box_agrees`)."""
    if ranks is None:
        return True
    return shortcut_ranking(f, d).index(d.answer_index) in ranks and (not strict or box_agrees(f, d))
