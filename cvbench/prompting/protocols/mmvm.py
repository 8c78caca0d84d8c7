"""The MMVM visual-prompt protocol ("which marked object in the second image is the query object?").

Upstream protocol (docs/formats.md section 2.2): the query object outlined in cyan in
the first image; every candidate outlined in its own colour in the second image with a white
numeric ID on a box of that colour; the fixed question body, then ``"A. <id>"`` option lines
in ascending id order (at most 25), then ``"<next letter>. None of the above choices are correct"``.

Public API
----------
Constants: ``MMVM_QUESTION_BODY`` (verbatim upstream), ``NONE_OF_THE_ABOVE``,
``MAX_ID_OPTIONS = 25``, ``QUERY_CYAN``, ``PROTOCOL_ID = "mmvm/1"``, ``SETTINGS``.

- ``mmvm_options(candidate_ids: Iterable[str | int]) -> tuple[Option, ...]``: ids ascending
  (numerically), at most 25 of them, then the "None of the above" option.
- ``mmvm_question(options, style="contour") -> str``: body, newline, one line per option (each
  ending in a newline, as upstream). For style "contour" the body is MMVM_QUESTION_BODY verbatim;
  other styles name their own marks (``question_body(style)``).
- ``render_query_view(image, mask, *, style="contour", alpha=0.4, thickness=2) -> ndarray``:
  the query mask in cyan (contour thickness 2, scaled up for big images).
- ``candidate_colours(n, rng) -> tuple[PaletteColour, ...]``: the n most distinct palette
  colours in an order drawn from rng.
- ``render_candidate_view(image, masks, ids, rng, *, style="contour", alpha=0.4, thickness=2,
  colours=None) -> ndarray``: each candidate in a distinct colour with its id on a box of that
  colour in white.
- ``select_candidates(sample, setting, seed) -> CandidateSelection``: the 4/8/12/all setting.
- ``upstream_option_ids(ids, rng) -> tuple[str, ...]``: the ids offered as options; over 25
  candidates the first 25 of a seeded shuffle, sorted (upstream's rule).
- ``build_mmvm(sample, *, mode, style, alpha, thickness, policy, seed, setting) -> ProtocolOutput``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cvbench.core.seeding import rng_for
from cvbench.core.types import (
    NativeRegions,
    NativeView,
    Option,
    RegionRef,
    Sample,
)
from cvbench.imaging.images import ImageError, image_size
from cvbench.imaging.render import (
    MMVM_STYLES,
    QUERY_CYAN,
    UPSTREAM_MMVM_THICKNESS,
    PaletteColour,
    UpstreamTagLayout,
    draw_upstream_mmvm,
    scaled_thickness,
    tag_font,
)
from cvbench.prompting.encoding import ImagePolicy, fitted_size
from cvbench.prompting.protocols import (
    LoadedView,
    ProtocolError,
    ProtocolOutput,
    ShippedImage,
    load_view,
)
from cvbench.tasks.mmvm_marks import (
    MAX_ID_OPTIONS,
    MMVM_QUESTION_BODY,
    NONE_OF_THE_ABOVE,
    TAG_TEXT_RGB,
    candidate_colours,
    id_order_key,
    mmvm_options,
    mmvm_question,
    question_body,
    render_candidate_view,
    render_query_view,
    upstream_option_ids,
)

__all__ = [
    "MAX_ID_OPTIONS",
    "MMVM_QUESTION_BODY",
    "NONE_OF_THE_ABOVE",
    "PROTOCOL_ID",
    "QUERY_CYAN",
    "SETTINGS",
    "CandidateSelection",
    "build_mmvm",
    "candidate_colours",
    "mmvm_options",
    "mmvm_question",
    "question_body",
    "render_candidate_view",
    "render_query_view",
    "select_candidates",
    "upstream_option_ids",
]

PROTOCOL_ID = "mmvm/1"
SETTINGS: tuple[str, ...] = ("4", "8", "12", "all")

# ------------------------------------------------------------------------------ candidate settings


@dataclass(frozen=True)
class CandidateSelection:
    """Which candidates a prompt shows, under which ids, and the options and answer that follow."""

    indices: tuple[int, ...]  # candidate region indices kept, in region order
    ids: tuple[str, ...]  # id shown for each kept candidate
    options: tuple[Option, ...]
    answer: str | None
    subset: bool  # False: the question is shown as published
    total: int  # candidates in the published question
    ground_truth: str | None  # original id of the matching candidate; None for "None of the above"


def parse_setting(setting: str) -> int | None:
    """ "all" -> None; "4" -> 4. Anything else is an error."""
    if setting == "all":
        return None
    if setting.isdigit() and int(setting) >= 1:
        return int(setting)
    raise ProtocolError(f"MMVM candidate setting must be 'all' or a positive integer such as 4, 8, 12; got {setting!r}")


def _check_structure(sample: Sample) -> None:
    if sample.benchmark != "mmvm":
        raise ProtocolError(f"sample {sample.sample_id}: not an MMVM sample (benchmark {sample.benchmark!r})")
    if len(sample.views) < 2:
        raise ProtocolError(
            f"sample {sample.sample_id}: MMVM needs a query view and a candidate view, got {len(sample.views)} view(s)"
        )
    for v in sample.views[:-1]:
        if not v.regions:
            raise ProtocolError(f"sample {sample.sample_id}: query view {v.view_id!r} has no query object")
    ids = [r.region_id for r in sample.views[-1].regions]
    if not ids:
        raise ProtocolError(f"sample {sample.sample_id}: candidate view has no candidates")
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ProtocolError(f"sample {sample.sample_id}: candidate ids repeat: {', '.join(dupes)}")
    if not sample.options:
        raise ProtocolError(f"sample {sample.sample_id}: no options")
    if sample.answer is not None and sample.option(sample.answer) is None:
        raise ProtocolError(f"sample {sample.sample_id}: answer {sample.answer!r} is not one of the option letters")


def select_candidates(sample: Sample, setting: str, seed: int) -> CandidateSelection:
    """The candidates for setting K: the ground truth plus K-1 distractors, ids renumbered 1..K.

    Questions with <= K candidates (and setting "all") are unchanged: published ids, options and
    answer. Otherwise the distractors are drawn with rng_for(seed, sample_id, "mmvm-subset", K)
    (and, for K > 25, the offered ids are picked as upstream: `upstream_option_ids` with
    rng_for(seed, sample_id, "mmvm-option-ids", K))
    from the candidates known not to match, and ids 1..K are assigned in an order drawn with
    rng_for(seed, sample_id, "mmvm-ids"). When the answer is "None of the above", only candidates
    listed as options are known non-matches (an unlisted id above 25 may be the match), so the
    K candidates are drawn from those and the answer stays "None of the above".
    """
    _check_structure(sample)
    regions = sample.views[-1].regions
    ids = [r.region_id for r in regions]
    k = parse_setting(setting)
    gt_id = sample.answer_region_id
    if gt_id is not None and gt_id not in ids:
        raise ProtocolError(
            f"sample {sample.sample_id}: the answer's id {gt_id} is not among the candidate ids "
            f"({', '.join(sorted(ids, key=id_order_key))})"
        )
    if k is None or len(ids) <= k:
        return CandidateSelection(
            indices=tuple(range(len(ids))),
            ids=tuple(ids),
            options=sample.options,
            answer=sample.answer,
            subset=False,
            total=len(ids),
            ground_truth=gt_id,
        )
    if sample.answer is None:
        raise ProtocolError(
            f"sample {sample.sample_id}: no answer, so the matching candidate cannot be kept in a {k}-candidate subset"
        )
    rng = rng_for(seed, sample.sample_id, "mmvm-subset", k)
    if gt_id is not None:
        gt_index = ids.index(gt_id)
        pool = [i for i in range(len(ids)) if i != gt_index]
        drawn = rng.choice(len(pool), size=k - 1, replace=False)
        keep = sorted([gt_index] + [pool[int(j)] for j in drawn])
    else:
        listed = {o.text.strip() for o in sample.options}
        pool = [i for i, rid in enumerate(ids) if rid in listed]
        if len(pool) < k:
            raise ProtocolError(
                f"sample {sample.sample_id}: answer is 'None of the above' but only {len(pool)} "
                f"candidates are listed as options; cannot draw {k} known non-matches"
            )
        drawn = rng.choice(len(pool), size=k, replace=False)
        keep = sorted(pool[int(j)] for j in drawn)
    new_ids = [str(int(v) + 1) for v in rng_for(seed, sample.sample_id, "mmvm-ids").permutation(k)]
    options = mmvm_options(upstream_option_ids(new_ids, rng_for(seed, sample.sample_id, "mmvm-option-ids", k)))
    answer = options[-1].letter  # "None of the above" unless the match is among the offered ids
    if gt_id is not None:
        shown_gt = new_ids[keep.index(ids.index(gt_id))]
        answer = next((o.letter for o in options[:-1] if o.text == shown_gt), answer)
    return CandidateSelection(
        indices=tuple(keep),
        ids=tuple(new_ids),
        options=options,
        answer=answer,
        subset=True,
        total=len(ids),
        ground_truth=gt_id,
    )


# ------------------------------------------------------------------------------ the protocol


def _read_shipped(sample: Sample, view_index: int) -> ShippedImage:
    view = sample.views[view_index]
    ref = view.prerendered
    if ref is None:
        raise ProtocolError(f"sample {sample.sample_id}: view {view.view_id!r} has no pre-rendered image")
    try:
        h, w = image_size(ref)
        data = Path(ref.path).read_bytes()
    except (ImageError, OSError) as exc:
        raise ProtocolError(f"sample {sample.sample_id}: pre-rendered image of view {view.view_id!r}: {exc}") from exc
    return ShippedImage(path=Path(ref.path), data=data, height=h, width=w)


def _colour_records(
    colours: Sequence[PaletteColour], ids: Sequence[str], region_ids: Sequence[str]
) -> list[dict[str, Any]]:
    return [{"id": i, "region_id": rid, **c.as_dict()} for c, i, rid in zip(colours, ids, region_ids)]


def build_mmvm(
    sample: Sample,
    *,
    mode: str,
    style: str,
    alpha: float,
    thickness: int,
    policy: ImagePolicy,
    seed: int,
    setting: str = "all",
) -> ProtocolOutput:
    """The MMVM prompt for one sample in mode "prerendered" | "overlay" | "native"."""
    selection = select_candidates(sample, setting, seed)
    cand_view = sample.views[-1]
    base: dict[str, Any] = {
        "protocol": PROTOCOL_ID,
        "benchmark": "mmvm",
        "mode": mode,
        "setting": setting,
        "seed": seed,
        "cues": list(sample.cues),
        "candidates_total": selection.total,
        "subset_applied": selection.subset,
        "candidates_kept": [cand_view.regions[i].region_id for i in selection.indices],
        "ground_truth_region_id": selection.ground_truth,
    }
    if selection.subset and len(selection.ids) > MAX_ID_OPTIONS:
        base["option_ids_rule"] = "upstream: first 25 of a seeded shuffle of the ids, sorted"
    if mode == "prerendered":
        return _prerendered_output(sample, base, selection, setting)
    if mode not in ("overlay", "native"):
        raise ProtocolError(f"sample {sample.sample_id}: unknown mode {mode!r}")
    if style not in MMVM_STYLES:
        raise ProtocolError(f"unknown style {style!r}; expected one of {', '.join(MMVM_STYLES)}")
    return _drawn_output(sample, base, selection, mode, style, alpha, thickness, policy, seed, setting)


def _view_labels(sample: Sample) -> tuple[str, ...]:
    return tuple(f"Image {k + 1}" for k in range(len(sample.views)))


def _prerendered_output(
    sample: Sample, base: dict[str, Any], selection: CandidateSelection, setting: str
) -> ProtocolOutput:
    """The shipped overlays and the TSV question, verbatim (only with every candidate)."""
    if selection.subset:
        raise ProtocolError(
            f"sample {sample.sample_id}: setting {setting} keeps {setting} of "
            f"{selection.total} candidates, but prerendered mode can only show the shipped overlays "
            f"with all of them; use mode overlay or native for candidate settings"
        )
    if not sample.prerendered_question:
        raise ProtocolError(f"sample {sample.sample_id}: no pre-rendered question (TSV 'question') to show")
    shipped = tuple(_read_shipped(sample, i) for i in range(len(sample.views)))
    ids = [r.region_id for r in sample.views[-1].regions]
    record = {
        **base,
        "style": "upstream-prerendered",
        "alpha": None,
        "thickness": None,
        "query_colour": {"name": "cyan", "rgb": list(QUERY_CYAN)},
        "colours": [],
        "colours_note": "drawn upstream (distinctipy, unseeded); not known to cvbench",
        "ids_shown": sorted(ids, key=id_order_key),
        "id_map": {i: i for i in ids},
        "question": "upstream TSV 'question' verbatim",
        "shipped_images": [f"{s.path.parent.name}/{s.path.name}" for s in shipped],
    }
    return ProtocolOutput(
        text=sample.prerendered_question,
        views=shipped,
        view_labels=_view_labels(sample),
        options=sample.options,
        answer=sample.answer,
        record=record,
    )


def _load_views(
    sample: Sample, selection: CandidateSelection, policy: ImagePolicy
) -> tuple[list[LoadedView], LoadedView]:
    """The query views (their one region) and the candidate view (the kept candidates)."""
    try:
        queries = [load_view(v, policy, [0]) for v in sample.views[:-1]]
        cand = load_view(sample.views[-1], policy, selection.indices)
    except ProtocolError as exc:
        raise ProtocolError(f"sample {sample.sample_id}: {exc}") from exc
    return queries, cand


def _drawn_output(
    sample: Sample,
    base: dict[str, Any],
    selection: CandidateSelection,
    mode: str,
    style: str,
    alpha: float,
    thickness: int,
    policy: ImagePolicy,
    seed: int,
    setting: str,
) -> ProtocolOutput:
    """Overlay and native modes: the query in cyan, the kept candidates in seeded colours with their ids."""
    cand_view = sample.views[-1]
    loaded_queries, cand = _load_views(sample, selection, policy)

    def colour_rng() -> np.random.Generator:
        return rng_for(seed, sample.sample_id, "mmvm-colours", setting)

    colours = candidate_colours(len(selection.indices), colour_rng())
    upstream_layout: UpstreamTagLayout | None = None
    if style == "upstream":
        rendered_queries = [draw_upstream_mmvm(q.image, [q.masks[0]], [QUERY_CYAN])[0] for q in loaded_queries]
        rendered_cand, upstream_layout = draw_upstream_mmvm(
            cand.image, cand.masks, [c.rgb for c in colours], tags=list(selection.ids), text_rgb=TAG_TEXT_RGB
        )
    else:
        rendered_queries = [
            render_query_view(q.image, q.masks[0], style=style, alpha=alpha, thickness=thickness)
            for q in loaded_queries
        ]
        rendered_cand = render_candidate_view(
            cand.image,
            cand.masks,
            selection.ids,
            colour_rng(),
            style=style,
            alpha=alpha,
            thickness=thickness,
            colours=colours,
        )
    kept_region_ids = [cand_view.regions[i].region_id for i in selection.indices]
    shown_hw = [list(q.image.shape[:2]) for q in loaded_queries] + [list(cand.image.shape[:2])]
    record = {
        **base,
        "style": style,
        "alpha": alpha if style in ("mask", "marks") else None,
        "thickness": UPSTREAM_MMVM_THICKNESS if style == "upstream" else thickness,
        "thickness_px": (
            [UPSTREAM_MMVM_THICKNESS] * len(shown_hw)
            if style == "upstream"
            else [scaled_thickness(thickness, tuple(hw)) for hw in shown_hw]
        ),
        "query_colour": {"name": "cyan", "rgb": list(QUERY_CYAN)},
        "colours": _colour_records(colours, selection.ids, kept_region_ids),
        "ids_shown": sorted(selection.ids, key=id_order_key),
        "id_map": dict(zip(selection.ids, kept_region_ids)),
        "tag_font": (
            upstream_layout.as_dict() if upstream_layout is not None else tag_font(cand.image.shape[:2]).as_dict()
        ),
        "tag_text_rgb": list(TAG_TEXT_RGB),
        "question": (
            "upstream body" if style in ("upstream", "contour") else f"upstream body adapted to style {style!r}"
        ),
        "rendered_size_hw": shown_hw,
        "warnings": [w for q in loaded_queries for w in q.warnings] + list(cand.warnings),
    }
    if fitted_size(cand.original.shape[:2], policy) != cand.original.shape[:2]:
        record["resized_from_hw"] = [list(q.original.shape[:2]) for q in loaded_queries] + [
            list(cand.original.shape[:2])
        ]
    return ProtocolOutput(
        text=mmvm_question(selection.options, style),
        views=tuple(rendered_queries) + (rendered_cand,),
        view_labels=_view_labels(sample),
        options=selection.options,
        answer=selection.answer,
        native=_native_regions(sample, selection, loaded_queries, cand) if mode == "native" else None,
        record=record,
    )


def _native_regions(
    sample: Sample, selection: CandidateSelection, queries: list[LoadedView], cand: LoadedView
) -> NativeRegions:
    """Every view at its original size with its masks; the candidates listed in id order."""
    order = tuple(sorted(range(len(selection.ids)), key=lambda j: id_order_key(selection.ids[j])))
    views = tuple(
        NativeView(view_id=v.view_id, image=q.original, masks=(q.full_masks[0],), region_ids=(v.regions[0].region_id,))
        for v, q in zip(sample.views[:-1], queries)
    )
    cand_view = sample.views[-1]
    views += (
        NativeView(view_id=cand_view.view_id, image=cand.original, masks=cand.full_masks, region_ids=selection.ids),
    )
    return NativeRegions(views=views, refs=(), query=RegionRef(0, 0), candidate_order=order)
