"""What a pixel shortcut answers: per task type, the option that a region-statistics reader
picks from the two images alone (colour histogram and mean colour, mask area, centroid, box,
convex fill, border contact), with no cross-view reasoning.

The planner draws, per question, whether this shortcut must pick the correct option (with
probability 1/options, so it scores chance) or must not; the generators only ask questions that
fit (`fits`). The answers still come from the scene geometry alone: the shortcut only decides
which of the exact questions a scene offers is asked. The reader mirrors the `mask-heuristic`
baseline's rules (docs/running.md) over the same region statistics (imaging/region_stats.py),
original pixels and visible masks that a run hands to a native-region model; the rules are
written here from the scene facts because the tasks layer may not import model adapters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from cvbench.imaging.region_stats import SAME_OBJECT_THRESHOLD as SAME_OBJECT
from cvbench.imaging.region_stats import RegionFeatures as Region
from cvbench.imaging.region_stats import appearance_similarity as similarity
from cvbench.imaging.region_stats import box_cover, boxes_in_contact, region_features
from cvbench.tasks.synthetic.facts import SceneFacts
from cvbench.tasks.synthetic.questions.common import Draft


class _Reader:
    """Regions of one draft's two views (cached on the scene facts)."""

    def __init__(self, f: SceneFacts, d: Draft) -> None:
        self.f, self.d = f, d
        self.cams = d.cams

    def region(self, cam: int, oid: str) -> Region:
        key = ("region", cam, oid)
        if key not in self.f.cache:
            view = self.f.views[cam]
            self.f.cache[key] = region_features(view.image, view.ids == self.f.index_of(oid))
        region = self.f.cache[key]
        assert isinstance(region, Region)
        return region

    def listed(self, cam: int) -> list[str]:
        return [o.object_id for o in self.f.scene.objects if self.f.seen[cam][o.object_id].visible_px > 0]

    def ref(self, k: int) -> Region:
        r = self.d.refs[k]
        return self.region(r.cam, r.object_id)

    def view_of(self, k: int) -> int:
        return self.cams.index(self.d.refs[k].cam)

    def best_match(self, feat: Region, view: int, exclude: Sequence[str] = ()) -> tuple[str | None, float]:
        cam = self.cams[view]
        best, best_sim = None, float("-inf")
        for oid in self.listed(cam):
            if oid in exclude:
                continue
            sim = similarity(feat, self.region(cam, oid))
            if sim > best_sim:
                best, best_sim = oid, sim
        return best, best_sim

    def counterpart(self, k: int) -> Region:
        """Ref k in the other view: the ref at the same place among the other view's refs, else the
        best appearance match there."""
        v = self.view_of(k)
        n = len(self.d.refs)
        mine = [j for j in range(n) if self.view_of(j) == v]
        theirs = [j for j in range(n) if self.view_of(j) != v]
        if theirs and len(theirs) == len(mine):
            return self.ref(theirs[mine.index(k)])
        oid, _ = self.best_match(self.ref(k), 1 - v)
        return self.region(self.cams[1 - v], oid) if oid is not None else self.ref(k)

    def split(self) -> tuple[int, list[int]]:
        """(query, candidates): the ref alone in its view, and the refs of the other view."""
        views = [self.view_of(k) for k in range(len(self.d.refs))]
        singles = [v for v in (0, 1) if views.count(v) == 1]
        query = views.index(singles[0]) if len(singles) == 1 and len(set(views)) > 1 else 0
        cands = [k for k in range(len(views)) if views[k] != views[query]]
        return query, cands or [k for k in range(len(views)) if k != query]


_PAIR = re.compile(r"object 1 is ([XYZ]) and object 2 is ([XYZ])")


def _by(scores: Sequence[float], descending: bool = True) -> list[int]:
    """Indices in preference order: best score first, ties to the earlier index (as argmax/argmin)."""
    return sorted(range(len(scores)), key=lambda k: -scores[k] if descending else scores[k])


def _binary(pick: int) -> list[int]:
    return [pick, 1 - pick]


def shortcut_ranking(f: SceneFacts, d: Draft) -> list[int]:
    """Every option index, in the order the pixel shortcut prefers them (first: its answer)."""
    r = _Reader(f, d)
    t = d.task_type
    if t in ("Q1", "Q2", "Q3"):
        q, cands = r.split()
        scores = [similarity(r.ref(q), r.ref(c)) for c in cands]
        if "none of them" in d.options:  # chosen when no candidate clears the same-object bar
            scores.insert(d.options.index("none of them"), SAME_OBJECT)
        return _by(scores)
    if t == "Q4":
        scores = []
        for text in d.options:
            m = _PAIR.search(text)
            assert m is not None, text
            x, y = (2 + "XYZ".index(g) for g in m.groups())
            scores.append(similarity(r.ref(0), r.ref(x)) + similarity(r.ref(1), r.ref(y)))
        return _by(scores)
    if t == "Q5":
        match, _ = r.best_match(r.ref(0), r.view_of(1))
        same = similarity(r.ref(0), r.ref(1)) >= SAME_OBJECT and match == d.refs[1].object_id
        return _binary(0 if same else 1)
    if t == "Q6":
        _, sim = r.best_match(r.ref(0), 1 - r.view_of(0))
        return _binary(0 if sim >= SAME_OBJECT else 1)
    if t == "Q7":  # the object whose best match in the other view is weakest
        return _by([r.best_match(r.ref(k), 1 - r.view_of(k))[1] for k in range(len(d.refs))], descending=False)
    if t in ("Q8", "Q9"):
        return _located(r, t)
    return _geometric(r, t)


def shortcut_pick(f: SceneFacts, d: Draft) -> int:
    """The option index the pixel shortcut picks for this draft."""
    return shortcut_ranking(f, d)[0]


def _located(r: _Reader, t: str) -> list[int]:
    """Q8 / Q9: find the query among the candidates' view (best match outside them), then the
    candidate whose box overlaps it most (Q8, a lower bottom edge counts extra) or whose centroid
    is nearest (Q9)."""
    q, cands = r.split()
    view = r.view_of(cands[0])
    oid, _ = r.best_match(r.ref(q), view, exclude=[r.d.refs[c].object_id for c in cands])
    target = r.region(r.cams[view], oid) if oid is not None else r.ref(q)
    if t == "Q8":
        scores = [box_cover(r.ref(c), target) + (0.1 if r.ref(c).bottom > target.bottom else 0.0) for c in cands]
        return _by(scores)
    dist = [float(np.hypot(*(np.array(r.ref(c).centroid) - np.array(target.centroid)))) for c in cands]
    return _by(dist, descending=False)


def _geometric(r: _Reader, t: str) -> list[int]:
    d = r.d
    if t in ("Q10", "Q12"):
        a, b = r.ref(0), r.counterpart(0)
        if t == "Q10":
            return _binary(0 if b.area / max(a.area, 1e-9) > 1.0 else 1)
        return _binary(0 if a.completeness >= b.completeness else 1)  # the question asks for the larger share
    if t == "Q11":
        return _by([r.ref(k).completeness for k in range(len(d.refs))], descending=False)
    if t in ("Q14", "Q16"):
        pool = [k for k in range(len(d.refs)) if r.view_of(k) == r.view_of(0)]
        if t == "Q14":
            moves = [
                float(np.hypot(*(np.array(r.ref(k).centroid) - np.array(r.counterpart(k).centroid)))) for k in pool
            ]
            return _by(moves)
        return _by([r.counterpart(k).area / max(r.ref(k).area, 1e-9) for k in pool])
    a1, b1, a2, b2 = r.ref(0), r.ref(1), r.counterpart(0), r.counterpart(1)
    if t == "Q13":
        flipped = np.sign(a1.centroid[0] - b1.centroid[0]) != np.sign(a2.centroid[0] - b2.centroid[0])
        return _binary(0 if flipped else 1)
    if t == "Q15":
        same = np.sign(a1.bottom - b1.bottom) == np.sign(a2.bottom - b2.bottom)
        return _binary(0 if same else 1)
    if t == "Q17":
        return _binary(0 if boxes_in_contact(a1, b1) and boxes_in_contact(a2, b2) else 1)
    raise ValueError(f"no shortcut reader for task type {t!r}")


def box_agrees(f: SceneFacts, d: Draft) -> bool:
    """Q16: the visible box's width and height each change the way the visible mask's area
    does (for every object asked about), so that steering by the mask area does not leave the box
    as the tell: any visible-extent statistic that grows with width and height (box area, diagonal)
    then says the same as the mask, and a planned miss shrinks the whole visible extent."""
    if d.task_type != "Q16":  # Q10 marks its object in one image only: no box to read there
        return True
    r = _Reader(f, d)
    pool = [k for k in range(len(d.refs)) if r.view_of(k) == r.view_of(0)]

    def growth(size: Callable[[Region], float]) -> list[float]:
        return [size(r.counterpart(k)) / max(size(r.ref(k)), 1e-9) for k in pool]

    cues = [
        growth(lambda x: x.area),
        growth(lambda x: x.bbox[2] - x.bbox[0]),
        growth(lambda x: x.bbox[3] - x.bbox[1]),
    ]
    return len({_by(g)[0] for g in cues}) == 1


def fits(f: SceneFacts, d: Draft, ranks: tuple[int, ...] | None, strict: bool = True) -> bool:
    """Whether the draft fits the plan: the correct option holds one of `ranks` in the shortcut's
    preference order (0: the shortcut picks it; None: any), and, if `strict`, the visible box
    tells the same as the mask (`box_agrees`)."""
    if ranks is None:
        return True
    return shortcut_ranking(f, d).index(d.answer_index) in ranks and (not strict or box_agrees(f, d))
