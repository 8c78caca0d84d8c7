"""The synthetic MMVM set: N cases per cue in the upstream layout (TSV + match_bench/case_XXXX/).

Overlays and question text come from the MMVM protocol module, so the synthetic cases look
exactly like the ones cvbench renders for the official benchmark.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cvbench.core.seeding import rng_for
from cvbench.core.types import CUE_BY_CODE, CUE_CODES, Option
from cvbench.imaging.masks import mask_to_polygons
from cvbench.tasks.mmvm_marks import (
    MAX_ID_OPTIONS,
    NONE_OF_THE_ABOVE,
    mmvm_options,
    mmvm_question,
    question_body,
    render_candidate_view,
    render_query_view,
)
from cvbench.tasks.synthetic.facts import SceneFacts, scene_facts
from cvbench.tasks.synthetic.io import write_jpeg, write_json
from cvbench.tasks.synthetic.manifest import write_folder_manifest
from cvbench.tasks.synthetic.mmvm_cases import (
    CaseDesign,
    candidate_count,
    choose_cues,
    design_case,
)

TSV_NAME = "mllm_match_eval_full.tsv"
CASE_FACTS = "synth_case.json"  # extra file per case: the generator's facts (loaders ignore it)
GENERATOR_VERSION = "cvbench-synth-mmvm/2"
CASES_DIR = "match_bench"
TSV_COLUMNS = (
    "index",
    "question",
    "pure_question",
    "choices",
    "choices_head",
    "answer",
    "match_type",
    "image_path",
    "image_path_v3",
    "question_v3",
    "image",
    "image_v3",
)
MIN_CANDIDATE_PX = 150  # every marked candidate shows at least this many pixels in the candidate view
MIN_QUERY_PX = 400
MIN_QUERY_FRACTION = 0.6  # the query is at least this complete in both views
MAX_LAYOUT_ATTEMPTS = 25


class CaseLayoutError(RuntimeError):
    """No layout of a case kept every candidate and the query visible enough."""


@dataclass(frozen=True)
class BuiltCase:
    design: CaseDesign
    facts: SceneFacts
    query_cam: int
    cand_cam: int


def build_case(case_id: str, cues: tuple[str, ...], n: int, seed: int) -> BuiltCase:
    """Render a case, re-drawing the layout until the query is clearly visible in both views and
    every candidate in the candidate view."""
    for attempt in range(MAX_LAYOUT_ATTEMPTS):
        design = design_case(
            case_id, cues, n, rng_for(seed, "mmvm-looks", case_id), rng_for(seed, "mmvm-layout", case_id, attempt)
        )
        facts = scene_facts(design.scene, with_gaps=False)
        q_a, q_b = facts.seen[0][design.query], facts.seen[1][design.query]
        if min(q_a.visible_px, q_b.visible_px) < MIN_QUERY_PX:
            continue
        if min(q_a.visible_fraction, q_b.visible_fraction) < MIN_QUERY_FRACTION:
            continue
        if all(facts.seen[1][c].visible_px >= MIN_CANDIDATE_PX for c in design.candidates):
            return BuiltCase(design, facts, 0, 1)
    raise CaseLayoutError(
        f"{case_id}: no layout in {MAX_LAYOUT_ATTEMPTS} attempts kept the query and all {n} candidates visible"
    )


def draw_ids(seed: int, case_id: str, n: int) -> list[int]:
    """A seeded shuffle of 1..n for the candidates (upstream's shuffle is the same, unseeded).
    With more than 25 candidates the query's id can be one that is not listed as an option, and
    the answer is then "None of the above", as in the official set."""
    # the trailing 0 keeps the draws of version 1 (which re-drew with 1, 2, ... when the query's id
    # was above 25): every case that needed no re-draw keeps its ids
    return [int(v) + 1 for v in rng_for(seed, "mmvm-ids", case_id, 0).permutation(n)]


def answer_letter(options: Sequence[Option], query_id: int) -> str:
    """The letter of the option naming the query's id, or of "None of the above" when it is not listed."""
    listed = next((o.letter for o in options if o.text == str(query_id)), None)
    if listed is not None:
        return listed
    none = options[-1]
    if none.text != NONE_OF_THE_ABOVE or query_id <= MAX_ID_OPTIONS:
        raise ValueError(f"query id {query_id} is neither listed nor beyond the {MAX_ID_OPTIONS} listed ids")
    return none.letter


def _annotation(mask: np.ndarray, ident: int) -> dict[str, Any]:
    h, w = mask.shape
    return {"height": int(h), "width": int(w), "segmentation": mask_to_polygons(mask), "id": int(ident)}


def write_case(out_dir: Path, built: BuiltCase, seed: int) -> dict[str, Any]:
    """Write the case folder; returns the TSV row (without `index`)."""
    d, f = built.design, built.facts
    case_rel = f"{CASES_DIR}/{d.case_id}"
    folder = out_dir / case_rel
    query_view, cand_view = f.views[built.query_cam], f.views[built.cand_cam]
    query_mask = query_view.visible_mask(f.index_of(d.query))
    cand_masks = [cand_view.visible_mask(f.index_of(c)) for c in d.candidates]
    ids = draw_ids(seed, d.case_id, len(d.candidates))
    query_id = ids[d.candidates.index(d.query)]

    write_jpeg(folder / "FRAME00_ORI.jpg", query_view.image)
    write_jpeg(folder / "FRAME00.jpg", render_query_view(query_view.image, query_mask))
    write_json(folder / "FRAME00.json", [_annotation(query_mask, 0)])
    write_jpeg(folder / "FRAME01_ORI.jpg", cand_view.image)
    overlay = render_candidate_view(
        cand_view.image, cand_masks, [str(i) for i in ids], rng_for(seed, "mmvm-colours", d.case_id)
    )
    write_jpeg(folder / "FRAME01_CAND.jpg", overlay)
    by_id = sorted(zip(ids, cand_masks), key=lambda t: t[0])
    write_json(folder / "FRAME01_CAND.json", [_annotation(m, i) for i, m in by_id])

    write_json(folder / CASE_FACTS, _case_facts(d, f, built.cand_cam, ids, query_id))

    options = mmvm_options(ids)
    answer = answer_letter(options, query_id)
    question = mmvm_question(options)
    images = [f"{case_rel}/FRAME00.jpg", f"{case_rel}/FRAME01_CAND.jpg"]
    return {
        "question": question,
        "pure_question": question_body(),
        "choices": "\n".join(o.line for o in options),
        "choices_head": repr([o.letter for o in options]),
        "answer": answer,
        "match_type": repr([CUE_BY_CODE[c] for c in d.cues]),
        "image_path": repr(images),
        "image_path_v3": repr(images),
        "question_v3": question,
        "image": "",
        "image_v3": "",
    }


def _case_facts(d: CaseDesign, f: SceneFacts, cand_cam: int, ids: list[int], query_id: int) -> dict[str, Any]:
    """What each drawn id is (its look, 3D placement and visibility), which one is the query (the
    TSV cannot say when the answer is "None of the above") and the landmarks: the facts behind
    the case's cues, for audits."""
    candidates = []
    for oid, ident in sorted(zip(d.candidates, ids), key=lambda t: t[1]):
        look, obj = d.looks[oid], d.scene.obj(oid)
        on_top = [o for o in d.scene.objects if o.support == oid]
        candidates.append(
            {
                "id": ident,
                "variant": look.variant,
                "colour": look.colour,
                "scale": round(look.scale, 4),
                "yaw_deg": round(float(np.degrees(look.yaw)) % 180.0, 3),
                "decal": None if look.decal is None else {"kind": look.decal.kind, "value": look.decal.value},
                "attachment": None if not on_top else {"shape": on_top[0].shape.kind, "colour": on_top[0].colour},
                "centre": [round(v, 4) for v in obj.centre],
                "size": [round(2 * float(v), 4) for v in obj.shape.half_extents()],
                "visible_px_candidate_view": f.seen[cand_cam][oid].visible_px,
            }
        )
    landmarks = [
        {"shape": o.shape.kind, "colour": o.colour, "centre": [round(v, 4) for v in o.centre]}
        for o in d.scene.objects
        if o.object_id not in d.candidates and o.support is None
    ]
    return {
        "generator": GENERATOR_VERSION,
        "cues": list(d.cues),
        "query_id": query_id,
        "candidates": candidates,
        "landmarks": landmarks,
    }


def plan_cases(per_cue: int, seed: int) -> list[tuple[str, tuple[str, ...], int]]:
    """(case id, cues, candidate count) for every case, cue by cue in CUE_CODES order."""
    plan: list[tuple[str, tuple[str, ...], int]] = []
    for cue in CUE_CODES:
        for k in range(per_cue):
            case_id = f"case_{len(plan):04d}"
            rng = rng_for(seed, "mmvm-plan", cue, k)
            plan.append((case_id, choose_cues(cue, rng), candidate_count(cue, k, rng)))
    return plan


def generate_mmvm(out_dir: Path, per_cue: int, seed: int) -> Path:
    """Write `out_dir/mllm_match_eval_full.tsv` and `out_dir/match_bench/`; returns the TSV path."""
    if per_cue < 1:
        raise ValueError(f"per_cue must be at least 1, got {per_cue}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, (case_id, cues, n) in enumerate(plan_cases(per_cue, seed)):
        built = build_case(case_id, cues, n, seed)
        rows.append({"index": str(index), **write_case(out_dir, built, seed)})
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(TSV_COLUMNS)
    for row in rows:
        writer.writerow([row[c] for c in TSV_COLUMNS])
    path = out_dir / TSV_NAME
    path.write_text(buf.getvalue(), encoding="utf-8", newline="")
    write_folder_manifest(out_dir, {"set": "mmvm", "seed": seed, "per_cue": per_cue})
    return path
