"""The synthetic CrossViewBench: N questions per task type over procedurally rendered scenes,
written as `crossviewbench.jsonl` + `images/<scene>/<camera>.png` in the upstream record format."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cvbench.core.seeding import rng_for
from cvbench.core.types import OPTION_LETTERS, TASK_TYPES
from cvbench.imaging.masks import bbox, encode_rle
from cvbench.tasks.synthetic.builtin import CVB_GENERATOR_VERSION
from cvbench.tasks.synthetic.facts import GAP_EXACT_BELOW, SceneFacts, scene_facts
from cvbench.tasks.synthetic.io import write_png
from cvbench.tasks.synthetic.layout import crossview_scene
from cvbench.tasks.synthetic.manifest import write_folder_manifest
from cvbench.tasks.synthetic.questions import (
    GENERATORS,
    HALF_LOOKALIKE_TYPES,
    LOOKALIKE_TYPES,
    N_OPTIONS,
    TEMPLATES,
    UNMISTAKABLE_TYPES,
    Ask,
    Draft,
    visible_twins,
)
from cvbench.tasks.synthetic.scene import Camera, SceneObject

log = logging.getLogger(__name__)

DATASET = "cvbench-synth"
JSONL_NAME = "crossviewbench.jsonl"
GENERATOR_VERSION = CVB_GENERATOR_VERSION
MAX_PER_SCENE = 6
MAX_SAME_TYPE_PER_SCENE = 1
MAX_NEW_SCENES_PER_QUESTION = 80
# after these many new scenes without a fitting question, the shortcut constraint is relaxed for
# that question (logged): first the related cues need not agree (shortcut.box_agrees), then any
# rank but the shortcut's pick (a planned miss stays a miss), then none; a rare combination (e.g.
# the true object as the least alike of four) must not stall generation
RELAX_SHORTCUT_AFTER = (10, 20, 40)
# ... and after these many, the scene-design conditions go too (logged): those of DESIGNED_TYPES
# (`Ask.design`), and the planned look-alike of a HALF_LOOKALIKE_TYPES question
RELAX_DESIGN_AFTER = 60
DESIGNED_TYPES = ("Q1", "Q3", "Q4", "Q6", "Q10", "Q12", "Q14", "Q16")
SIZE_RANKED = ("Q7", "Q8", "Q11", "Q16")  # types whose answer's visible-size rank among the options is planned
DEPTH_RANKED = ("Q14", "Q16")  # ... whose answer's depth rank (first camera) is planned (Q14 since cvb/7)
# the planned places of the answer among the options (Ask fields), freed together with the
# shortcut rank, and how metadata "relaxed" names each
PLANNED_PLACES = (
    ("size_rank", "size rank"),
    ("depth_rank", "depth rank"),
    ("centre_rank", "centre rank"),
    ("row_rank", "row rank"),
)
# what else a record's metadata "relaxed" lists (besides "look-alike")
RELAXED_BOX_CUES = "box cues"  # shortcut.box_agrees no longer asked
RELAXED_RANK_MISS = "shortcut rank: any miss"  # any rank but the shortcut's pick
RELAXED_RANK_ANY = "shortcut rank: any"  # the shortcut's rank not constrained at all
RELAXED_DESIGN = "design"  # the type's scene-design conditions (Ask.design)


class SynthesisError(RuntimeError):
    """The generator could not find a scene for a question (a bug, or impossible settings)."""


@dataclass
class _SceneSlot:
    facts: SceneFacts
    drafts: list[tuple[str, Draft]]  # (sample_id, draft)


def balanced_targets(n: int, n_options: int, rng: np.random.Generator) -> list[int]:
    """n answer indices, each option as often as possible (counts differ by at most one), seeded order."""
    base = [i % n_options for i in range(n)]
    start = int(rng.integers(0, n_options))  # which options get the extra questions when n is not a multiple
    base = [(i + start) % n_options for i in base]
    return [base[i] for i in rng.permutation(n)]


def _balanced_ranks(targets: list[int], n: int, rng: np.random.Generator) -> list[int]:
    """A rank per question, each rank as often as possible overall and within each answer index
    (counts differ by at most one): consecutive ranks along the questions grouped by answer."""
    start = int(rng.integers(0, n))
    ranks = [0] * len(targets)
    for pos, i in enumerate(sorted(range(len(targets)), key=lambda k: targets[k])):
        ranks[i] = (start + pos) % n
    return ranks


def plan_questions(per_type: int, seed: int, types: Sequence[str] | None = None) -> list[tuple[str, int, Ask]]:
    """(task type, index within type, what to ask), interleaved in a seeded order. Answer indices
    and wordings are balanced per type; LOOKALIKE_TYPES always have look-alike distractors; the
    correct option's rank in the pixel shortcut's preference order (questions/shortcut.py; rank 0:
    the shortcut picks it) is balanced too, independently of the answer index, so the shortcut,
    and any rule that takes its second or last choice, scores chance."""
    items: list[tuple[str, int, Ask]] = []
    for qtype in TASK_TYPES if types is None else types:
        n = N_OPTIONS[qtype]
        targets = balanced_targets(per_type, n, rng_for(seed, "cvb-targets", qtype))
        ranks = _balanced_ranks(targets, n, rng_for(seed, "cvb-shortcut-rank", qtype))
        wordings = balanced_targets(per_type, len(TEMPLATES[qtype]), rng_for(seed, "cvb-wording", qtype))
        # Q11, Q16: how many distractors show fewer pixels (in the first image) than the answer,
        # evenly over 0..n-1, drawn apart from the rest
        sizes = balanced_targets(per_type, n, rng_for(seed, "cvb-size-rank", qtype)) if qtype in SIZE_RANKED else None
        # every correspondence question has look-alike distractors: without them the colour
        # histogram alone finds the object (the mask-heuristic solved 87% of the plain ones);
        # HALF_LOOKALIKE_TYPES have them in half the questions, drawn apart from the rest
        flags = [qtype in LOOKALIKE_TYPES] * per_type
        if qtype in HALF_LOOKALIKE_TYPES:
            flags = [k == 0 for k in balanced_targets(per_type, 2, rng_for(seed, "cvb-lookalike", qtype))]
        depths = centres = None
        if qtype in DEPTH_RANKED:
            depths = balanced_targets(per_type, 2, rng_for(seed, "cvb-depth-rank", qtype))
        if qtype == "Q14":
            centres = balanced_targets(per_type, 2, rng_for(seed, "cvb-centre-rank", qtype))
        rows = balanced_targets(per_type, n, rng_for(seed, "cvb-row-rank", qtype)) if qtype == "Q7" else None
        items.extend(
            (
                qtype,
                i,
                Ask(
                    t,
                    flag,
                    w,
                    shortcut_ranks=(r,),
                    size_rank=None if sizes is None else sizes[i],
                    depth_rank=None if depths is None else depths[i],
                    centre_rank=None if centres is None else centres[i],
                    row_rank=None if rows is None else rows[i],
                ),
            )
            for i, (t, r, w, flag) in enumerate(zip(targets, ranks, wordings, flags))
        )
    order = rng_for(seed, "cvb-order").permutation(len(items))
    return [items[i] for i in order]


def relaxations(planned: Ask, asked: Ask) -> tuple[str, ...]:
    """What the generator gave up of the plan to find a scene (`Draft.relaxed`)."""
    out = []
    if planned.shortcut_strict and not asked.shortcut_strict:
        out.append(RELAXED_BOX_CUES)
    if planned.shortcut_ranks is not None and asked.shortcut_ranks != planned.shortcut_ranks:
        out.append(RELAXED_RANK_ANY if asked.shortcut_ranks is None else RELAXED_RANK_MISS)
    out.extend(
        label
        for field_name, label in PLANNED_PLACES
        if getattr(planned, field_name) is not None and getattr(asked, field_name) is None
    )
    if planned.design and not asked.design:
        out.append(RELAXED_DESIGN)
    if planned.lookalike and not asked.lookalike:
        out.append("look-alike")
    return tuple(out)


def _finish(draft: Draft, f: SceneFacts, ask: Ask, planned: Ask) -> Draft:
    """Record the wording, what of the plan was relaxed, and whether the question involves
    look-alikes: LOOKALIKE_TYPES as planned, UNMISTAKABLE_TYPES never, the others (which mark
    their objects in every image they ask about) when a referenced object has a visible look-alike."""
    kinds = LOOKALIKE_TYPES + HALF_LOOKALIKE_TYPES
    if draft.task_type in kinds and draft.lookalike != ask.lookalike:
        raise SynthesisError(f"{draft.task_type} generator ignored its request {ask}")
    done = replace(draft, wording=ask.wording, relaxed=relaxations(planned, ask))
    if draft.task_type in kinds or draft.task_type in UNMISTAKABLE_TYPES:
        return done
    return replace(done, lookalike=any(visible_twins(f, r.object_id, draft.cams) for r in draft.refs))


def _relaxed(ask: Ask, n_options: int) -> Ask:
    if ask.shortcut_strict:
        return replace(ask, shortcut_strict=False)
    ranks = ask.shortcut_ranks
    misses = tuple(range(1, n_options))
    wider = misses if ranks is not None and 0 not in ranks and ranks != misses else None
    if wider is not None:
        return replace(ask, shortcut_ranks=wider)
    # the rank freed entirely: the planned places go with it
    freed: dict[str, Any] = {name: None for name, _ in PLANNED_PLACES}
    return replace(ask, shortcut_ranks=None, **freed)


def build_scenes(
    per_type: int, seed: int, width: int = 640, height: int = 480, types: Sequence[str] | None = None
) -> list[_SceneSlot]:
    """Scenes with their questions. Each question goes to the first scene (in creation order) that
    has room and can ask it with the planned answer; new scenes are made only when none can."""
    slots: list[_SceneSlot] = []
    n_made = 0
    for qtype, i, planned in plan_questions(per_type, seed, types):
        sample_id = f"synth-{qtype.lower()}-{i:04d}"
        ask = planned
        draft = None
        for slot in slots:
            if len(slot.drafts) >= MAX_PER_SCENE:
                continue
            if sum(1 for _, d in slot.drafts if d.task_type == qtype) >= MAX_SAME_TYPE_PER_SCENE:
                continue
            draft = GENERATORS[qtype](
                slot.facts, rng_for(seed, "cvb-question", sample_id, slot.facts.scene.scene_id), ask
            )
            if draft is not None:
                slot.drafts.append((sample_id, _finish(draft, slot.facts, ask, planned)))
                break
        tries = 0
        while draft is None:
            if tries in RELAX_SHORTCUT_AFTER and ask.shortcut_ranks is not None:
                ask = _relaxed(ask, N_OPTIONS[qtype])
                log.info(
                    "%s: no fitting question in %d new scenes; now ranks %s%s",
                    sample_id,
                    tries,
                    ask.shortcut_ranks,
                    "" if ask.shortcut_strict else " (box cues free)",
                )
            if tries == RELAX_DESIGN_AFTER and (
                (qtype in DESIGNED_TYPES and ask.design) or (ask.lookalike and qtype in HALF_LOOKALIKE_TYPES)
            ):
                ask = replace(ask, design=False, lookalike=ask.lookalike and qtype not in HALF_LOOKALIKE_TYPES)
                log.info(
                    "%s: no fitting question in %d new scenes; now without the scene-design conditions",
                    sample_id,
                    tries,
                )
            if tries >= MAX_NEW_SCENES_PER_QUESTION:
                raise SynthesisError(
                    f"no scene among {tries} new ones could ask {qtype} with answer index {ask.target}"
                    f"{' and look-alike distractors' if ask.lookalike else ''}"
                )
            tries += 1
            scene_id = f"scene-{n_made:04d}"
            n_made += 1
            slot = _SceneSlot(
                scene_facts(crossview_scene(scene_id, rng_for(seed, "cvb-scene", scene_id), width, height)), []
            )
            slots.append(slot)
            draft = GENERATORS[qtype](slot.facts, rng_for(seed, "cvb-question", sample_id, scene_id), ask)
            if draft is not None:
                slot.drafts.append((sample_id, _finish(draft, slot.facts, ask, planned)))
    return [s for s in slots if s.drafts]


def generate_crossviewbench(out_dir: Path, per_type: int, seed: int, types: Sequence[str] | None = None) -> Path:
    """Write `out_dir/crossviewbench.jsonl` and `out_dir/images/`; returns the jsonl path. `types`
    (default: all 17) limits the set to some task types, for quick validity checks."""
    if per_type < 1:
        raise ValueError(f"per_type must be at least 1, got {per_type}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    slots = build_scenes(per_type, seed, types=types)
    records: list[dict[str, Any]] = []
    for slot in slots:
        listing = _object_listing(slot.facts, seed)
        used_cams = sorted({c for _, d in slot.drafts for c in d.cams})
        for cam in used_cams:
            write_png(out_dir / _image_path(slot.facts, cam), slot.facts.views[cam].image)
        for sample_id, draft in slot.drafts:
            records.append(_record(sample_id, draft, slot.facts, listing))
    order = {qtype: k for k, qtype in enumerate(TASK_TYPES)}
    records.sort(key=lambda r: (order[r["question_type"]], r["sample_id"]))
    path = out_dir / JSONL_NAME
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(json.dumps(rec, ensure_ascii=False, sort_keys=False) + "\n" for rec in records)
    params: dict[str, Any] = {"set": "crossviewbench", "seed": seed, "per_type": per_type, "version": GENERATOR_VERSION}
    if types is not None:
        params["types"] = list(types)
    write_folder_manifest(out_dir, params)
    return path


# ------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class _ViewListing:
    order: tuple[str, ...]  # object ids in the view's (shuffled) object list
    objects: tuple[dict[str, Any], ...]  # the upstream `objects` entries, same order


def _object_listing(f: SceneFacts, seed: int) -> list[_ViewListing]:
    """Per camera: every object with at least one visible pixel, in a seeded random order, with a
    per-view random track id (so neither list order nor ids tell which objects correspond)."""
    out = []
    for cam, view in enumerate(f.views):
        present = [o.object_id for o in f.scene.objects if f.seen[cam][o.object_id].visible_px > 0]
        rng = rng_for(seed, "cvb-listing", f.scene.scene_id, cam)
        order = tuple(present[i] for i in rng.permutation(len(present)))
        tracks = rng.choice(np.arange(100, 1000), size=len(order), replace=False)
        entries = []
        for oid, track in zip(order, tracks):
            mask = view.ids == f.index_of(oid)
            x1, y1, x2, y2 = bbox(mask)  # type: ignore[misc]
            entries.append({"mask_rle": encode_rle(mask), "bbox_xyxy": [x1, y1, x2, y2], "track_id": int(track)})
        out.append(_ViewListing(order, tuple(entries)))
    return out


def _image_path(f: SceneFacts, cam: int) -> str:
    return f"images/{f.scene.scene_id}/{f.scene.cameras[cam].name}.png"


def _record(sample_id: str, d: Draft, f: SceneFacts, listing: list[_ViewListing]) -> dict[str, Any]:
    refs = []
    for r in d.refs:
        pos = d.cams.index(r.cam)
        refs.append([pos, listing[r.cam].order.index(r.object_id)])
    region_objects = [r.object_id for r in d.refs]
    involved = sorted(set(region_objects) | _ids_in(d.facts), key=_id_key)
    geometry = {oid: {f.scene.cameras[c].name: f.seen[c][oid].as_dict() for c in d.cams} for oid in involved}
    views = [
        {"view_id": f.scene.cameras[c].name, "image_path": _image_path(f, c), "objects": list(listing[c].objects)}
        for c in d.cams
    ]
    scene_objects = sorted(f.scene.objects, key=lambda o: _id_key(o.object_id))
    metadata = {
        "generator": GENERATOR_VERSION,
        "task_name": TASK_TYPES[d.task_type][0],
        "lookalike": d.lookalike,
        "wording": d.wording,
        "relaxed": list(d.relaxed),
        "region_objects": region_objects,
        "facts": d.facts,
        "geometry": geometry,
        "objects": {
            o.object_id: {
                "name": o.name,
                "shape": o.shape.kind,
                "dims": [round(v, 6) for v in o.shape.dims],
                "colour": o.colour,
                "decal": _decal_dict(o),
                "centre": [round(v, 6) for v in o.centre],
                "rotation": [[round(v, 6) for v in row] for row in o.rotation],
                "resting_on": o.support,
            }
            for o in scene_objects
        },
        "cameras": {f.scene.cameras[c].name: _camera_dict(f.scene.cameras[c]) for c in d.cams},
        "surface_gap_exact_below": GAP_EXACT_BELOW,
    }
    return {
        "sample_id": sample_id,
        "question_type": d.task_type,
        "question": d.question,
        "options": [f"{OPTION_LETTERS[k]}. {text}" for k, text in enumerate(d.options)],
        "answer": OPTION_LETTERS[d.answer_index],
        "region_refs": refs,
        "views": views,
        "selected_object_names": [o.name for o in scene_objects],
        "object_ids": [o.object_id for o in scene_objects],
        "dataset": DATASET,
        "scene": f.scene.scene_id,
        "metadata": metadata,
    }


def _decal_dict(obj: SceneObject) -> dict[str, str] | None:
    return None if obj.decal is None else {"kind": obj.decal.kind, "value": obj.decal.value}


def _camera_dict(cam: Camera) -> dict[str, Any]:
    return {
        "position": [round(v, 6) for v in cam.position],
        "target": [round(v, 6) for v in cam.target],
        "focal_px": round(cam.focal, 6),
        "width": cam.width,
        "height": cam.height,
    }


def _id_key(oid: str) -> int:
    return int(oid[1:])


def _ids_in(value: Any) -> set[str]:
    """Object ids mentioned anywhere in a facts value (so their geometry is stored too)."""
    if isinstance(value, str):
        return {value} if value.startswith("o") and value[1:].isdigit() else set()
    if isinstance(value, dict):
        return set().union(*(_ids_in(v) for v in value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(_ids_in(v) for v in value)) if value else set()
    return set()
