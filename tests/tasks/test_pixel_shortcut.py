"""The pixel shortcut's rules (cvbench/tasks/pixel_shortcut.py) have two readers that must agree
at the rule level: the `mask-heuristic` baseline (its answer letter, read from a prompt's masks and
pixels) and the synthetic generator (its ranking of the option indices, read from scene facts).
Here both read the same hand-drawn images and masks, question by question for every task type
and wording, and must pick the same option."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest

from cvbench.core.types import REGION_PLACEHOLDER, TASK_TYPES, NativeRegions, NativeView, Option, RegionRef
from cvbench.imaging.region_stats import SAME_OBJECT_THRESHOLD, RegionFeatures
from cvbench.model_adapters.mask_heuristic import RULES, build_scene
from cvbench.tasks import pixel_shortcut as ps
from cvbench.tasks.synthetic.facts import ObjectInView, SceneFacts
from cvbench.tasks.synthetic.questions.common import YES_NO, Draft, Ref
from cvbench.tasks.synthetic.questions.shortcut import shortcut_ranking
from cvbench.tasks.synthetic.questions.wording import TEMPLATES, question_text
from cvbench.tasks.synthetic.render import RenderedView
from cvbench.tasks.synthetic.scene import Camera, Scene, SceneObject
from cvbench.tasks.synthetic.shapes import Shape

H, W = 96, 128
N_OBJECTS = 8
PALETTE = [(205, 40, 40), (45, 80, 200), (50, 160, 60), (235, 205, 40), (200, 60, 50)]  # two near-reds
SCENES = 12


def _draw(rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two views of N_OBJECTS blobs (rectangles and ellipses, some cut by the frame or each other),
    each object one palette colour in both views; ids -1 where no object is. In every other scene
    objects 0 and 1 stand side by side on one ground line in both views (touching, for Q17)."""
    colours = [PALETTE[int(i)] for i in rng.integers(0, len(PALETTE), N_OBJECTS)]
    glued = rng.random() < 0.5
    images, ids = [], []
    yy, xx = np.mgrid[0:H, 0:W]
    for _ in range(2):
        image = np.full((H, W, 3), 150, dtype=np.uint8)
        view_ids = np.full((H, W), -1, dtype=np.int32)
        boxes = [
            (rng.uniform(-0.05, 1.05) * W, rng.uniform(0.1, 1.05) * H, rng.uniform(6, 26), rng.uniform(6, 26))
            for _ in range(N_OBJECTS)
        ]
        if glued:
            cx, cy, rx, ry = boxes[0]
            rx1, ry1 = boxes[1][2:]
            boxes[1] = (cx + rx + rx1 + 1, cy + ry - ry1, rx1, ry1)
        for index in rng.permutation(N_OBJECTS):  # later objects occlude earlier ones
            if rng.random() < 0.12 and not (glued and index < 2):
                continue  # not seen in this view
            cx, cy, rx, ry = boxes[index]
            if rng.random() < 0.5 or (glued and index < 2):
                shape = (np.abs(xx - cx) <= rx) & (np.abs(yy - cy) <= ry)
            else:
                shape = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
            shade = np.clip(np.array(colours[index]) + rng.integers(-12, 13, 3), 0, 255)
            image[shape] = shade
            view_ids[shape] = index
        images.append(image)
        ids.append(view_ids)
    return images, ids


def _facts(images: list[np.ndarray], ids: list[np.ndarray]) -> SceneFacts:
    """Scene facts around the drawn views: what the generator's reader reads (the objects in
    order, each view's pixels and object ids, and which objects each view shows)."""
    oids = [f"o{i}" for i in range(N_OBJECTS)]
    objects = tuple(
        SceneObject(o, Shape("sphere", (0.3,)), (0.0, 0.0, 0.3), ((1, 0, 0), (0, 1, 0), (0, 0, 1)), "red") for o in oids
    )
    cams = tuple(Camera(f"cam{c}", (0.0, -3.0, 1.5), (0.0, 0.0, 0.0), W, H, 100.0) for c in range(2))
    views = tuple(
        RenderedView(cam, image, np.zeros((H, W)), view_ids, (), (), (), ())
        for cam, image, view_ids in zip(cams, images, ids)
    )
    seen = tuple(
        {
            o: ObjectInView(o, int((view_ids == i).sum()), 0, 0, True, 1.0, (0.0, 0.0), None, 0.0)
            for i, o in enumerate(oids)
        }
        for view_ids in ids
    )
    return SceneFacts(Scene("hand-drawn", objects, cams, (0.0, 0.0, 1.0), ((0, 0, 0), (9, 9, 9))), views, seen, {})


def _draft(t: str, wording: int, shown: list[list[str]], rng: np.random.Generator) -> Draft | None:
    """A question of type `t` laid out as the generator lays it out (refs, option texts, option
    order), over objects each view shows; None when the views show too few."""
    a, b = shown
    both = [o for o in a if o in b]

    def pick(pool: list[str], n: int) -> list[str] | None:
        return [pool[int(i)] for i in rng.permutation(len(pool))[:n]] if len(pool) >= n else None

    cands = tuple(f"candidate {k + 1}" for k in range(4))
    layouts: dict[str, tuple[int, int, int, tuple[str, ...]]] = {  # refs in view 0, then in view 1
        "Q1": (1, 4, 0, cands),
        "Q2": (1, 2, 0, ("the first one", "the second one")),
        "Q3": (3, 1, 0, ("object 1", "object 2", "object 3", "none of them")),
        "Q5": (1, 1, 0, YES_NO),
        "Q6": (1, 0, 0, YES_NO),
        "Q7": (4, 0, 0, tuple(f"object {k + 1}" for k in range(4))),
        "Q8": (1, 4, 0, cands),
        "Q9": (1, 4, 0, cands),
        "Q10": (1, 0, 0, YES_NO),
        "Q11": (4, 0, 0, tuple(f"object {k + 1}" for k in range(4))),
        "Q12": (1, 0, 0, ("the first image", "the second image")),
        "Q13": (2, 0, 0, YES_NO),
        "Q14": (2, 0, 0, ("the first object", "the second object")),
        "Q15": (2, 0, 0, YES_NO),
        "Q16": (2, 0, 2, ("the first object", "the second object")),  # the same two, in both views
        "Q17": (2, 0, 0, YES_NO),
    }
    if t == "Q17" and {"o0", "o1"} <= set(a) and rng.random() < 0.5:  # the glued pair, when drawn
        return Draft(t, (0, 1), question_text(t, wording), YES_NO, 0, (Ref(0, "o0"), Ref(0, "o1")))
    if t == "Q4":
        firsts, seconds = pick(both, 2), pick(b, 3)
        if firsts is None or seconds is None:
            return None
        refs = tuple(Ref(0, o) for o in firsts) + tuple(Ref(1, o) for o in seconds)
        pairs = [(x, y) for x in "XYZ" for y in "XYZ" if x != y]
        options = tuple(
            f"object 1 is {x} and object 2 is {y}" for x, y in (pairs[int(i)] for i in rng.permutation(6)[:4])
        )
    else:
        n_a, n_b, n_same, options = layouts[t]
        in_a, in_b = pick(both if n_same else a, n_a), pick(b, n_b)
        if in_a is None or in_b is None:
            return None
        refs = tuple(Ref(0, o) for o in in_a) + tuple(Ref(1, o) for o in in_b) + tuple(Ref(1, o) for o in in_a[:n_same])
    return Draft(t, (0, 1), question_text(t, wording), options, 0, refs)


def _adapter_pick(facts: SceneFacts, d: Draft) -> int | None:
    """The option index the mask-heuristic answers, from the same pixels and each view's masks
    (the objects it shows, in scene order, as a run hands them to a native-region model)."""
    shown = [[o.object_id for o in facts.scene.objects if facts.seen[c][o.object_id].visible_px > 0] for c in d.cams]
    views = tuple(
        NativeView(
            f"v{c}",
            facts.views[cam].image,
            tuple(facts.views[cam].ids == facts.index_of(o) for o in shown[c]),
            tuple(shown[c]),
        )
        for c, cam in enumerate(d.cams)
    )
    refs = tuple(RegionRef(d.cams.index(r.cam), shown[d.cams.index(r.cam)].index(r.object_id)) for r in d.refs)
    options = tuple(Option("ABCD"[i], text) for i, text in enumerate(d.options))
    letter = RULES[d.task_type](build_scene(NativeRegions(views, refs), d.question, options))
    return None if letter is None else "ABCD".index(letter)


def test_the_baseline_and_the_generator_pick_the_same_option_on_hand_drawn_regions() -> None:
    assert REGION_PLACEHOLDER == "<region>"
    picks: dict[str, Counter[int]] = {t: Counter() for t in TASK_TYPES}
    for seed in range(SCENES):
        rng = np.random.default_rng(seed)
        facts = _facts(*_draw(rng))
        shown = [
            [o.object_id for o in facts.scene.objects if facts.seen[c][o.object_id].visible_px > 0] for c in (0, 1)
        ]
        for t in TASK_TYPES:
            for wording in range(len(TEMPLATES[t])):
                d = _draft(t, wording, shown, rng)
                if d is None:
                    continue
                ranking = shortcut_ranking(facts, d)
                assert sorted(ranking) == list(range(len(d.options))), (seed, t)
                assert _adapter_pick(facts, d) == ranking[0], (seed, t, wording, d.refs, ranking)
                picks[t][ranking[0]] += 1
    for t, counts in picks.items():  # every type was asked, and its pick was not always the same option
        assert len(counts) >= 2, (t, counts)


# --- the rules on a tiny hand-built RegionScene -------------------------------------------------


def _region(colour: int, x: float, area: float = 0.01, fill: float = 1.0) -> RegionFeatures:
    hist = np.zeros(192)
    hist[colour] = 1.0
    return RegionFeatures(
        hist, np.array([50.0, 0.0, 0.0]), 1.0, area, (x, 0.5), (x - 0.05, 0.45, x + 0.05, 0.55), fill, False
    )


@dataclass(frozen=True)
class _Regions:
    views: tuple[tuple[RegionFeatures, ...], ...]
    refs: tuple[tuple[int, int], ...]

    @property
    def n_refs(self) -> int:
        return len(self.refs)

    def ref(self, k: int) -> RegionFeatures:
        return self.views[self.refs[k][0]][self.refs[k][1]]

    def ref_key(self, k: int) -> int:
        return self.refs[k][1]

    def view_of(self, k: int) -> int:
        return self.refs[k][0]

    def other_view(self, view: int) -> int:
        return 1 - view

    def listed(self, view: int) -> range:
        return range(len(self.views[view]))

    def region(self, view: int, key: int) -> RegionFeatures:
        return self.views[view][key]


def test_none_of_them_wins_only_below_the_same_object_threshold_and_ties_go_to_the_earlier() -> None:
    query, twin, other = _region(3, 0.2), _region(3, 0.6), _region(90, 0.8)
    s = _Regions(((query,), (other, twin)), ((0, 0), (1, 0), (1, 1)))
    assert ps.rank_retrieval(s, none_at=2).ranked == [2, ps.NONE_OF_THEM, 1]
    assert ps.rank_retrieval(s, none_at=None).ranked == [2, 1]
    lonely = _Regions(((query,), (other, other)), ((0, 0), (1, 0), (1, 1)))
    assert ps.rank_retrieval(lonely, none_at=0).ranked[0] == ps.NONE_OF_THEM
    assert ps.rank_retrieval(lonely, none_at=2).ranked == [ps.NONE_OF_THEM, 1, 2]
    # two equal candidates: the earlier first, as argmax
    assert ps.rank_retrieval(_Regions(((query,), (twin, twin)), ((0, 0), (1, 0), (1, 1))), None).ranked == [1, 2]
    assert SAME_OBJECT_THRESHOLD < 1.0  # an exact colour match clears it


@pytest.mark.parametrize(("least", "first"), [(False, 1), (True, 0)])
def test_cross_view_completeness_follows_the_question(least: bool, first: int) -> None:
    occluded, whole = _region(3, 0.3, fill=0.5), _region(3, 0.3, fill=0.95)
    s = _Regions(((occluded,), (whole,)), ((0, 0),))
    assert ps.rank_cross_view_completeness(s, least).ranked == [first, 1 - first]
    assert ps.asks_for_least("Which one is least complete there?") and not ps.asks_for_least("Which shows more of it?")


def test_an_unknown_task_type_is_refused_by_name() -> None:
    s = _Regions(((_region(3, 0.3),), ()), ((0, 0),))
    with pytest.raises(ValueError, match="'Q99'"):
        ps.rank("Q99", s)
