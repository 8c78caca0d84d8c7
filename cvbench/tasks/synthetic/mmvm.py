"""The synthetic MMVM set: N cases per cue in the upstream layout (TSV + match_bench/case_XXXX/).

Overlays and question text come from the MMVM protocol module, so the synthetic cases look
exactly like the ones cvbench renders for the official benchmark.

Shortcut resistance (issue 23): the candidates are look-alikes (mmvm_cases.py), the candidate view
has its own light and white balance, and per case the generator keeps the layout and white
balance under which an appearance-statistics reader (mmvm_shortcut.py: colour histogram, mean
colour, box aspect) ranks the true match at a rank planned uniformly over 0..n-1, so that reader
finds the match with chance probability at every candidate setting. The query's id, and so the
answer letter, is spread evenly over the positions. The answer itself is always the query object.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cvbench.core.seeding import rng_for
from cvbench.core.types import CUE_BY_CODE, CUE_CODES, Option
from cvbench.imaging.masks import mask_to_polygons, polygons_to_mask
from cvbench.imaging.region_stats import appearance_at
from cvbench.tasks.mmvm_marks import (
    MAX_ID_OPTIONS,
    NONE_OF_THE_ABOVE,
    mmvm_options,
    mmvm_question,
    question_body,
    render_candidate_view,
    render_query_view,
)
from cvbench.tasks.synthetic.builtin import MMVM_GENERATOR_VERSION
from cvbench.tasks.synthetic.facts import SceneFacts, scene_facts
from cvbench.tasks.synthetic.io import write_jpeg, write_json
from cvbench.tasks.synthetic.manifest import write_folder_manifest
from cvbench.tasks.synthetic.mmvm_cases import (
    CaseDesign,
    candidate_count,
    choose_cues,
    design_case,
)
from cvbench.tasks.synthetic.mmvm_shortcut import appearance, jpeg_round_trip, match_rank

TSV_NAME = "mllm_match_eval_full.tsv"
CASE_FACTS = "synth_case.json"  # extra file per case: the generator's facts (loaders ignore it)
GENERATOR_VERSION = MMVM_GENERATOR_VERSION
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
MIN_CANDIDATE_PX = 150  # every look-alike shows at least this many pixels in each view it is in
MIN_CANDIDATE_FRACTION = 0.5  # ... and at least this share of itself: the query is held to no more
RANK_SEARCH_ATTEMPTS = 25  # layout draws the rank search looks through
MAX_LAYOUT_ATTEMPTS = 150  # ... and how many it draws to find a first clear one (crowded SZ cases need more
# since every look-alike meets the bar in both views)
RANK_LAYOUTS = 6  # layouts (that keep everything visible) tried to put the match at its planned rank
WHITE_BALANCES = 12  # candidate-view white balances tried per layout (the first is neutral)
RANK_SLACK_DIVISOR = 12  # a reached rank within n // 12 of the planned one is kept (rank_miss)


class CaseLayoutError(RuntimeError):
    """No layout of a case kept every candidate and the query visible enough."""


@dataclass(frozen=True)
class BuiltCase:
    design: CaseDesign
    facts: SceneFacts  # views[1].image already carries the white balance
    query_cam: int
    cand_cam: int
    planned_rank: int  # where the appearance shortcut was to rank the match (0: first)
    shortcut_rank: int  # where it does rank it
    white_balance: tuple[float, float, float]  # RGB gains of the candidate view
    ranked: str  # the candidate whose rank was planned: the query, or its stand-in when absent


def render_case(design: CaseDesign) -> SceneFacts:
    """Both views, the candidate view under its own light."""
    scene = design.scene
    first = scene_facts(replace(scene, cameras=scene.cameras[:1]), with_gaps=False)
    second = scene_facts(
        replace(design.cand_scene(), cameras=scene.cameras[1:2], light=design.cand_light), with_gaps=False
    )
    return SceneFacts(scene, first.views + second.views, first.seen + second.seen, {})


def cand_index(design: CaseDesign, object_id: str) -> int:
    """The object's index in the candidate view's id buffer (its scene lacks an absent query)."""
    return next(i for i, o in enumerate(design.cand_scene().objects) if o.object_id == object_id)


def white_balances(seed: int, case_id: str, attempt: int) -> list[tuple[float, float, float]]:
    """Camera white balances and exposures for the candidate view: neutral first, then seeded
    draws (each channel within about +-25%, as between two cameras or times of day)."""
    rng = rng_for(seed, "mmvm-white-balance", case_id, attempt)
    out = [(1.0, 1.0, 1.0)]
    for _ in range(WHITE_BALANCES - 1):
        gains = np.exp(rng.normal(0.0, 0.1, 3) + rng.uniform(-0.15, 0.15))
        out.append((float(gains[0]), float(gains[1]), float(gains[2])))
    return out


def apply_white_balance(image: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    if gains == (1.0, 1.0, 1.0):
        return image
    out: np.ndarray = np.clip(image.astype(np.float64) * np.array(gains) + 0.5, 0, 255).astype(np.uint8)
    return out


def _visible(facts: SceneFacts, design: CaseDesign) -> bool:
    """Every look-alike, the query among them, meets the same bar in both views (in the candidate
    view those there: an absent query is not). Up to `mmvm/4` only the query was held to a bar in
    the query view (400 px, 60%), so it stood nearer the middle of the grid than the others (they
    could be cut off by that frame), and so nearer the middle of the candidate view too."""

    def clear(view: int, c: str) -> bool:
        seen = facts.seen[view][c]
        return seen.visible_px >= MIN_CANDIDATE_PX and seen.visible_fraction >= MIN_CANDIDATE_FRACTION

    return all(clear(0, c) for c in design.candidates) and all(clear(1, c) for c in design.marked)


def _as_written(mask: np.ndarray) -> np.ndarray:
    """The mask a reader of the case files gets back from its polygons."""
    return polygons_to_mask(mask_to_polygons(mask), *mask.shape)


def _ranks(
    facts: SceneFacts, design: CaseDesign, balances: list[tuple[float, float, float]], match_id: str
) -> Iterator[tuple[tuple[float, float, float], int]]:
    """Per white balance (lazily): the rank of candidate `match_id` under the appearance shortcut."""
    query_view, cand_view = facts.views[0], facts.views[1]
    query = appearance(
        jpeg_round_trip(query_view.image), _as_written(query_view.visible_mask(facts.index_of(design.query)))
    )
    regions = [np.nonzero(_as_written(cand_view.visible_mask(cand_index(design, c)))) for c in design.marked]
    match = design.marked.index(match_id)
    for gains in balances:
        image = jpeg_round_trip(apply_white_balance(cand_view.image, gains))
        yield gains, match_rank(query, [appearance_at(image, ys, xs) for ys, xs in regions], match)


def rank_miss(rank: int, planned: int, n: int) -> int:
    """How far a reached rank is from the planned one; 0 within n // RANK_SLACK_DIVISOR, but a
    hit (rank 0) and a miss never count as the same."""
    if (rank == 0) != (planned == 0):
        return n
    return max(0, abs(rank - planned) - n // RANK_SLACK_DIVISOR)


def build_case(
    case_id: str, cues: tuple[str, ...], n: int, seed: int, rank_u: float = 0.0, absent: bool = False
) -> BuiltCase:
    """Render a case, re-drawing the layout until every look-alike is clearly visible in both views
    (an absent query in the query view only). Among the clear layouts of the first
    RANK_SEARCH_ATTEMPTS draws (or the first clear one after them, up to MAX_LAYOUT_ATTEMPTS), up to
    RANK_LAYOUTS, and their white balances, keep the first whose match the appearance shortcut
    ranks at the planned rank (floor(rank_u * n), within rank_miss's slack), else the closest. An
    absent query's case goes through the same search with a seeded stand-in candidate in the
    match's place, so that its layout and white balance are drawn the same way."""
    planned = min(n - 1, int(rank_u * n))
    stand_in_u = float(rng_for(seed, "mmvm-stand-in", case_id).uniform(0, 1))
    best: tuple[int, CaseDesign, SceneFacts, tuple[float, float, float], int, str] | None = None
    layouts = 0
    for attempt in range(MAX_LAYOUT_ATTEMPTS):
        if attempt >= RANK_SEARCH_ATTEMPTS and best is not None:
            break
        design = design_case(
            case_id,
            cues,
            n,
            rng_for(seed, "mmvm-looks", case_id),
            rng_for(seed, "mmvm-layout", case_id, attempt),
            absent,
        )
        facts = render_case(design)
        if not _visible(facts, design):
            continue
        layouts += 1
        match_id = design.marked[int(stand_in_u * n)] if absent else design.query
        for gains, rank in _ranks(facts, design, white_balances(seed, case_id, attempt), match_id):
            miss = rank_miss(rank, planned, n)
            if best is None or miss < best[0]:
                best = (miss, design, facts, gains, rank, match_id)
            if miss == 0:
                break
        if best is not None and (best[0] == 0 or layouts >= RANK_LAYOUTS):
            break
    if best is None:
        raise CaseLayoutError(
            f"{case_id}: no layout in {MAX_LAYOUT_ATTEMPTS} attempts kept all {n} look-alikes visible in both views"
        )
    _, design, facts, gains, rank, ranked = best
    views = (facts.views[0], replace(facts.views[1], image=apply_white_balance(facts.views[1].image, gains)))
    return BuiltCase(design, replace(facts, views=views), 0, 1, planned, rank, gains, ranked)


def draw_ids(
    seed: int, case_id: str, n: int, query_index: int | None = None, answer_u: float | None = None
) -> list[int]:
    """A seeded shuffle of 1..n for the candidates (upstream's shuffle is the same, unseeded).
    With `query_index` and `answer_u` the query's id is planned_id(n, answer_u) (the plan spreads
    answer_u evenly over a cue's cases, so the answer positions are balanced), swapped in from
    wherever the shuffle put it. With more than 25 candidates the query's id can be one that is
    not listed as an option, and the answer is then "None of the above", as in the official set."""
    ids = [int(v) + 1 for v in rng_for(seed, "mmvm-ids", case_id, 0).permutation(n)]
    if query_index is not None and answer_u is not None:
        j = ids.index(planned_id(n, answer_u))
        ids[j], ids[query_index] = ids[query_index], ids[j]
    return ids


def answer_letter(options: Sequence[Option], query_id: int | None) -> str:
    """The letter of the option naming the query's id, or of "None of the above" when it is not
    listed (or the query is not among the candidates: `query_id` None)."""
    none = options[-1]
    if query_id is None:
        if none.text != NONE_OF_THE_ABOVE:
            raise ValueError(f"the query is not among the candidates but the last option is {none.text!r}")
        return none.letter
    listed = next((o.letter for o in options if o.text == str(query_id)), None)
    if listed is not None:
        return listed
    if none.text != NONE_OF_THE_ABOVE or query_id <= MAX_ID_OPTIONS:
        raise ValueError(f"query id {query_id} is neither listed nor beyond the {MAX_ID_OPTIONS} listed ids")
    return none.letter


def _annotation(mask: np.ndarray, ident: int) -> dict[str, Any]:
    h, w = mask.shape
    return {"height": int(h), "width": int(w), "segmentation": mask_to_polygons(mask), "id": int(ident)}


def write_case(out_dir: Path, built: BuiltCase, seed: int, answer_u: float | None = None) -> dict[str, Any]:
    """Write the case folder; returns the TSV row (without `index`)."""
    d, f = built.design, built.facts
    case_rel = f"{CASES_DIR}/{d.case_id}"
    folder = out_dir / case_rel
    query_view, cand_view = f.views[built.query_cam], f.views[built.cand_cam]
    query_mask = query_view.visible_mask(f.index_of(d.query))
    cand_masks = [cand_view.visible_mask(cand_index(d, c)) for c in d.marked]
    query_index = None if d.absent else d.marked.index(d.query)
    ids = draw_ids(seed, d.case_id, len(d.marked), query_index, answer_u)
    query_id = None if query_index is None else ids[query_index]

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

    write_json(folder / CASE_FACTS, _case_facts(built, ids, query_id))

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


def _look_facts(d: CaseDesign, oid: str) -> dict[str, Any]:
    look, obj = d.looks[oid], d.scene.obj(oid)
    on_top = [o for o in d.scene.objects if o.support == oid]
    return {
        "variant": look.variant,
        "colour": look.colour,
        "scale": round(look.scale, 4),
        "yaw_deg": round(float(np.degrees(look.yaw)) % 180.0, 3),
        "decal": None if look.decal is None else {"kind": look.decal.kind, "value": look.decal.value},
        "attachment": None if not on_top else {"shape": on_top[0].shape.kind, "colour": on_top[0].colour},
        "centre": [round(v, 4) for v in obj.centre],
        "size": [round(2 * float(v), 4) for v in obj.shape.half_extents()],
    }


def _case_facts(built: BuiltCase, ids: list[int], query_id: int | None) -> dict[str, Any]:
    """What each drawn id is (its look, 3D placement and visibility), which one is the query (the
    TSV cannot say when the answer is "None of the above"; `query_id` null: the query is absent
    from the candidate view), the query's own look, the landmarks, the two lights and the
    candidate view's white balance: the facts behind the case's cues, for audits; and where the
    appearance shortcut ranks the match (planned and reached; for an absent query: its stand-in)."""
    d, f, cand_cam = built.design, built.facts, built.cand_cam
    candidates = [
        {
            "id": ident,
            **_look_facts(d, oid),
            "visible_px_candidate_view": f.seen[cand_cam][oid].visible_px,
            "visible_fraction_candidate_view": round(f.seen[cand_cam][oid].visible_fraction, 4),
        }
        for oid, ident in sorted(zip(d.marked, ids), key=lambda t: t[1])
    ]
    landmarks = [
        {"shape": o.shape.kind, "colour": o.colour, "centre": [round(v, 4) for v in o.centre]}
        for o in d.scene.objects
        if o.object_id not in d.candidates and o.support is None
    ]
    return {
        "generator": GENERATOR_VERSION,
        "cues": list(d.cues),
        "query_id": query_id,
        "absent": d.absent,
        "query": _look_facts(d, d.query),
        "candidates": candidates,
        "landmarks": landmarks,
        "cameras": [
            {"position": [round(v, 4) for v in c.position], "target": [round(v, 4) for v in c.target]}
            for c in d.scene.cameras
        ],
        "lights": [[round(v, 4) for v in d.scene.light], [round(v, 4) for v in d.cand_light]],
        "white_balance": [round(v, 4) for v in built.white_balance],
        "shortcut_rank": {
            "planned": built.planned_rank,
            "reached": built.shortcut_rank,
            "of_id": ids[d.marked.index(built.ranked)],
        },
    }


@dataclass(frozen=True)
class PlannedCase:
    case_id: str
    cues: tuple[str, ...]
    n: int  # candidates
    rank_u: float  # in [0, 1): where the appearance shortcut is to rank the match (build_case)
    answer_u: float  # in [0, 1): which id the query gets (draw_ids)
    absent: bool = False  # the query is not in the candidate view: the answer is "None of the above"


SUBSET_SETTINGS = (4, 8, 12)  # cvbench's MMVM candidate settings besides "all" (prompting.protocols.mmvm)


def none_share(n: int) -> float:
    """The share of n-candidate cases whose answer is "None of the above" (at every setting).

    Every setting offers that option; were it never right, a rule that never picks it (any fixed
    id letter, any appearance match) would score 1/m where chance is 1/(m+1): 17 points over at
    two candidates. So it is right as often as chance says, averaged over the four settings
    (4, 8, 12, all): the mean of 1/(m_K + 1), m_K = min(n, K, 25) ids offered at setting K. A
    "None" case stays one at every setting (cvbench draws a subset's candidates from the offered
    non-matches only, docs/formats.md), so a rule that always answers it scores chance in sum."""
    offered = [min(n, k, MAX_ID_OPTIONS) for k in (*SUBSET_SETTINGS, n)]
    return sum(1.0 / (m + 1) for m in offered) / len(offered)


def absent_share(n: int) -> float:
    """The share of n-candidate cases whose query is absent from the candidate view. Above 25
    candidates "None" comes from the query's id being beyond the 25 listed instead, as in the
    official set (planned_id)."""
    return none_share(n) if n <= MAX_ID_OPTIONS else 0.0


def planned_id(n: int, answer_u: float) -> int:
    """The query's id for `answer_u` in [0, 1) (spread evenly over a cue's cases): uniform over
    1..n up to 25 candidates; above, beyond 25 (not listed: "None of the above") for the first
    none_share(n) of the range and uniform over the 25 listed ids for the rest."""
    if n <= MAX_ID_OPTIONS:
        return 1 + min(n - 1, int(answer_u * n))
    share = none_share(n)
    if answer_u < share:
        return MAX_ID_OPTIONS + 1 + min(n - MAX_ID_OPTIONS - 1, int(answer_u / share * (n - MAX_ID_OPTIONS)))
    return 1 + min(MAX_ID_OPTIONS - 1, int((answer_u - share) / (1 - share) * MAX_ID_OPTIONS))


def _absent_flags(seed: int, cue: str, counts: Sequence[int]) -> list[bool]:
    """Which of a cue's cases have an absent query: systematic sampling of absent_share over the
    cases in a seeded order, so that the count is the sum of the shares rounded (up or down)."""
    rng = rng_for(seed, "mmvm-absent", cue)
    flags = [False] * len(counts)
    total = float(rng.uniform(0, 1))
    for k in rng.permutation(len(counts)):
        before, total = total, total + absent_share(counts[int(k)])
        flags[int(k)] = int(total) > int(before)
    return flags


def _strata(seed: int, cue: str, what: str, count: int) -> list[float]:
    """`count` values in [0, 1), one in each of `count` equal strata, in a seeded order."""
    rng = rng_for(seed, "mmvm-strata", cue, what)
    return [(int(k) + float(rng.uniform(0, 1))) / count for k in rng.permutation(count)]


def plan_cases(per_cue: int, seed: int) -> list[PlannedCase]:
    """Every case, cue by cue in CUE_CODES order. Within a cue the match's shortcut rank and the
    answer's position are each spread evenly over the cases (stratified), independently, and
    about absent_share(n) of the cases have the query absent from the candidate view."""
    plan: list[PlannedCase] = []
    for cue in CUE_CODES:
        ranks, answers = _strata(seed, cue, "rank", per_cue), _strata(seed, cue, "answer", per_cue)
        drawn = []
        for k in range(per_cue):
            rng = rng_for(seed, "mmvm-plan", cue, k)
            drawn.append((choose_cues(cue, rng), candidate_count(cue, k, rng)))
        absent = _absent_flags(seed, cue, [n for _, n in drawn])
        for k, (cues, n) in enumerate(drawn):
            plan.append(PlannedCase(f"case_{len(plan):04d}", cues, n, ranks[k], answers[k], absent[k]))
    return plan


def generate_mmvm(out_dir: Path, per_cue: int, seed: int) -> Path:
    """Write `out_dir/mllm_match_eval_full.tsv` and `out_dir/match_bench/`; returns the TSV path."""
    if per_cue < 1:
        raise ValueError(f"per_cue must be at least 1, got {per_cue}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, case in enumerate(plan_cases(per_cue, seed)):
        built = build_case(case.case_id, case.cues, case.n, seed, case.rank_u, case.absent)
        rows.append({"index": str(index), **write_case(out_dir, built, seed, case.answer_u)})
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(TSV_COLUMNS)
    for row in rows:
        writer.writerow([row[c] for c in TSV_COLUMNS])
    path = out_dir / TSV_NAME
    path.write_text(buf.getvalue(), encoding="utf-8", newline="")
    write_folder_manifest(out_dir, {"set": "mmvm", "seed": seed, "per_cue": per_cue, "version": GENERATOR_VERSION})
    return path
