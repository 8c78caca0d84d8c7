"""The CrossViewBench visual-prompt protocol: colour overlays and colour words for `<region>`.

Overlay mode (every model without native region inputs): each referenced region is drawn in
its own named palette colour (the same region referenced twice keeps one colour; colours are
assigned in order of first reference: red, blue, green, yellow, ...), and each `<region>` is
rewritten, in order, to a fixed phrase for the style:

    mask    -> "the object highlighted in <colour>"
    contour -> "the object outlined in <colour>"
    box     -> "the object in the <colour> box"
    marks   -> "the object marked <n> in <colour>"   (n: the number on its tag)

The prompt text is ``question + "\\n\\n" + "\\n".join(option lines)`` as upstream (the question
alone when open-ended). Every view is shown, in order; only views holding referenced regions
carry marks. Native mode keeps `<region>` and hands over all objects of every view, the refs and
the token counts.

Public API
----------
``PROTOCOL_ID = "crossviewbench/1"``, ``PHRASES``, ``MAX_NAMED_REGIONS``
- ``region_phrase(style, colour_name, number) -> str``
- ``assign_colours(refs) -> dict[(view_index, region_index), int]``: palette index per distinct region
- ``rewrite_question(question, phrases) -> str``: each `<region>` replaced in order
- ``prompt_text(question, options) -> str``
- ``build_crossviewbench(sample, *, mode, style, alpha, thickness, policy) -> ProtocolOutput``
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from cvbench.core.types import (
    REGION_PLACEHOLDER,
    NativeRegions,
    NativeView,
    Option,
    RegionRef,
    Sample,
)
from cvbench.imaging.render import (
    NAMED_PALETTE,
    STYLES,
    draw_regions,
    scaled_thickness,
    tag_font,
)
from cvbench.prompting.encoding import ImagePolicy
from cvbench.prompting.protocols import (
    LoadedView,
    ProtocolError,
    ProtocolOutput,
    load_view,
)

__all__ = [
    "MAX_NAMED_REGIONS",
    "PHRASES",
    "PROTOCOL_ID",
    "assign_colours",
    "build_crossviewbench",
    "prompt_text",
    "region_phrase",
    "rewrite_question",
]

PROTOCOL_ID = "crossviewbench/1"
PHRASES: dict[str, str] = {
    "mask": "the object highlighted in {colour}",
    "contour": "the object outlined in {colour}",
    "box": "the object in the {colour} box",
    "marks": "the object marked {number} in {colour}",
}
MAX_NAMED_REGIONS = len(NAMED_PALETTE)
_SENTENCE_START = re.compile(r"(^|[.!?]\s+|\n\s*)$")
_OBJECT_BEFORE = re.compile(r"\b(?:[Tt]he\s+)?[Oo]bject\s+$")


def region_phrase(style: str, colour_name: str, number: int) -> str:
    if style not in PHRASES:
        raise ProtocolError(f"unknown style {style!r}; expected one of {', '.join(STYLES)}")
    return PHRASES[style].format(colour=colour_name, number=number)


def assign_colours(refs: Sequence[RegionRef]) -> dict[tuple[int, int], int]:
    """Palette index per distinct referenced region, in order of first reference."""
    order: dict[tuple[int, int], int] = {}
    for ref in refs:
        order.setdefault((ref.view_index, ref.region_index), len(order))
    return order


def rewrite_question(question: str, phrases: Sequence[str]) -> str:
    """Each `<region>` replaced by the next phrase, so the text reads naturally.

    A phrase that starts a sentence is capitalised. Every phrase begins with "the object", so
    an "object" or "the object" written just before the placeholder ("Is the object <region>
    visible?") is folded into it instead of being doubled.
    """
    parts = question.split(REGION_PLACEHOLDER)
    if len(parts) - 1 != len(phrases):
        raise ProtocolError(
            f"question has {len(parts) - 1} {REGION_PLACEHOLDER} placeholder(s) but {len(phrases)} phrase(s) were given"
        )
    text = parts[0]
    for phrase, rest in zip(phrases, parts[1:]):
        folded = _OBJECT_BEFORE.search(text) if phrase.startswith("the object") else None
        capital = False
        if folded is not None:
            capital = folded.group(0)[:1].isupper()
            text = text[: folded.start()]
        if capital or _SENTENCE_START.search(text):
            phrase = phrase[:1].upper() + phrase[1:]
        text += phrase + rest
    return text


# Task types whose referenced masks may legitimately be empty (upstream CrossViewer `_load_sample`).
EMPTY_REFERENCE_EXEMPT = ("Q2", "Q9")


def empty_reference_problem(
    masks_per_view: Sequence[Sequence[np.ndarray]], refs: Sequence[RegionRef], task_type: str | None
) -> str | None:
    """Why upstream would fail this sample for an empty mask, or None.

    Only a REFERENCED empty mask fails a sample, and Q2/Q9 are exempt; unreferenced empty masks are fine."""
    if (task_type or "").upper() in EMPTY_REFERENCE_EXEMPT:
        return None
    for k, ref in enumerate(refs):
        if not np.asarray(masks_per_view[ref.view_index][ref.region_index]).any():
            return (
                f"region_refs[{k}] (view {ref.view_index}, object {ref.region_index}) has an empty mask; upstream "
                f"fails such a sample (only Q2/Q9 may reference empty masks)"
            )
    return None


def prompt_text(question: str, options: Sequence[Option]) -> str:
    """As the reference model sees it: question, a blank line, one option per line."""
    if not options:
        return question
    return question + "\n\n" + "\n".join(o.line for o in options)


def _check(sample: Sample) -> None:
    if sample.benchmark != "crossviewbench":
        raise ProtocolError(f"sample {sample.sample_id}: not a CrossViewBench sample (benchmark {sample.benchmark!r})")
    n_placeholders = sample.question.count(REGION_PLACEHOLDER)
    if n_placeholders != len(sample.region_refs):
        raise ProtocolError(
            f"sample {sample.sample_id}: question has {n_placeholders} {REGION_PLACEHOLDER} "
            f"placeholder(s) but {len(sample.region_refs)} region_refs"
        )
    for k, ref in enumerate(sample.region_refs):
        if not 0 <= ref.view_index < len(sample.views):
            raise ProtocolError(
                f"sample {sample.sample_id}: region_refs[{k}] names view {ref.view_index}, "
                f"but the sample has {len(sample.views)} views"
            )
        view = sample.views[ref.view_index]
        if not 0 <= ref.region_index < len(view.regions):
            raise ProtocolError(
                f"sample {sample.sample_id}: region_refs[{k}] names object {ref.region_index} of view "
                f"{view.view_id!r}, which has {len(view.regions)} objects"
            )
    if sample.region_token_counts is not None and len(sample.region_token_counts) != len(sample.region_refs):
        raise ProtocolError(
            f"sample {sample.sample_id}: {len(sample.region_token_counts)} region_token_counts for "
            f"{len(sample.region_refs)} region_refs"
        )


def _load(
    sample: Sample, view_index: int, policy: ImagePolicy, indices: Sequence[int] | None, *, allow_empty: bool = False
) -> LoadedView:
    try:
        return load_view(sample.views[view_index], policy, indices, allow_empty=allow_empty)
    except ProtocolError as exc:
        raise ProtocolError(f"sample {sample.sample_id}: {exc}") from exc


def build_crossviewbench(
    sample: Sample, *, mode: str, style: str, alpha: float, thickness: int, policy: ImagePolicy
) -> ProtocolOutput:
    """The CrossViewBench prompt for one sample in mode "overlay" | "native"."""
    _check(sample)
    base: dict[str, Any] = {
        "protocol": PROTOCOL_ID,
        "benchmark": "crossviewbench",
        "mode": mode,
        "task_type": sample.task_type,
        "category": sample.category,
        "region_refs": [[r.view_index, r.region_index] for r in sample.region_refs],
    }
    # the loader's note (cvbench.tasks.crossviewbench.LOADER_NOTES) when upstream reads the gold answer
    # differently: results.json then scores the upstream-compatible accuracy its way
    gold = (sample.metadata.get("cvbench_loader") or {}).get("gold_upstream")
    if isinstance(gold, dict):
        base["upstream_gold"] = {"answer": gold.get("upstream"), "reason": gold.get("reason")}
    if mode == "prerendered":
        raise ProtocolError(
            f"sample {sample.sample_id}: CrossViewBench has no pre-rendered images; use mode overlay or native"
        )
    if mode == "native":
        return _native_output(sample, base, policy)
    if mode != "overlay":
        raise ProtocolError(f"sample {sample.sample_id}: unknown mode {mode!r}")
    if style not in STYLES:
        hint = " ('upstream' is the MMVM authors' drawing rule, for MMVM only)" if style == "upstream" else ""
        raise ProtocolError(f"unknown style {style!r} for CrossViewBench; expected one of {', '.join(STYLES)}{hint}")
    return _overlay_output(sample, base, style, alpha, thickness, policy)


def _view_labels(sample: Sample) -> tuple[str, ...]:
    return tuple(f"Image {k + 1}" for k in range(len(sample.views)))


def _native_output(sample: Sample, base: dict[str, Any], policy: ImagePolicy) -> ProtocolOutput:
    """Native models get every object; as upstream, only a referenced empty mask fails a sample."""
    loaded = [_load(sample, v, policy, None, allow_empty=True) for v in range(len(sample.views))]
    problem = empty_reference_problem([lv.full_masks for lv in loaded], sample.region_refs, sample.task_type)
    if problem is not None:
        raise ProtocolError(f"sample {sample.sample_id}: {problem}")
    empty = [[v, k] for v, lv in enumerate(loaded) for k, m in enumerate(lv.full_masks) if not m.any()]
    native = NativeRegions(
        views=tuple(
            NativeView(
                view_id=v.view_id,
                image=lv.original,
                masks=lv.full_masks,
                region_ids=tuple(r.region_id for r in v.regions),
            )
            for v, lv in zip(sample.views, loaded)
        ),
        refs=sample.region_refs,
        token_counts=sample.region_token_counts,
    )
    record = {
        **base,
        "style": None,
        "alpha": None,
        "thickness": None,
        "colours": [],
        "question": f"upstream, {REGION_PLACEHOLDER} kept",
        "region_token_counts": list(sample.region_token_counts) if sample.region_token_counts else None,
        "warnings": [w for lv in loaded for w in lv.warnings],
    }
    if empty:
        record["empty_masks"] = empty
    return ProtocolOutput(
        text=prompt_text(sample.question, sample.options),
        views=tuple(lv.image for lv in loaded),
        view_labels=_view_labels(sample),
        options=sample.options,
        answer=sample.answer,
        native=native,
        record=record,
    )


def _overlay_output(
    sample: Sample, base: dict[str, Any], style: str, alpha: float, thickness: int, policy: ImagePolicy
) -> ProtocolOutput:
    """Every referenced region drawn in its named colour; each placeholder rewritten to name it."""
    slots = assign_colours(sample.region_refs)
    if len(slots) > MAX_NAMED_REGIONS:
        raise ProtocolError(
            f"sample {sample.sample_id}: {len(slots)} distinct regions are referenced, but only "
            f"{MAX_NAMED_REGIONS} colours have names"
        )
    phrases = []
    for ref in sample.region_refs:
        slot = slots[(ref.view_index, ref.region_index)]
        phrases.append(region_phrase(style, NAMED_PALETTE[slot].label, slot + 1))

    rendered: list[np.ndarray] = []
    warnings: list[str] = []
    marked_views: list[int] = []
    for v in range(len(sample.views)):
        here = [(key, slot) for key, slot in slots.items() if key[0] == v]
        lv = _load(sample, v, policy, [key[1] for key, _ in here])
        warnings.extend(lv.warnings)
        if not here:
            rendered.append(lv.image)
            continue
        marked_views.append(v)
        rendered.append(_draw_view(lv, [slot for _, slot in here], style, alpha, thickness))
    record = {
        **base,
        "style": style,
        "alpha": alpha if style in ("mask", "marks") else None,
        "thickness": thickness,
        "thickness_px": [scaled_thickness(thickness, img.shape[:2]) for img in rendered],
        "colours": _colour_records(sample, slots),
        "wording": PHRASES[style],
        "phrases": phrases,
        "marked_views": marked_views,
        "question": f"upstream, each {REGION_PLACEHOLDER} rewritten in order",
        "warnings": warnings,
    }
    return ProtocolOutput(
        text=prompt_text(rewrite_question(sample.question, phrases), sample.options),
        views=tuple(rendered),
        view_labels=_view_labels(sample),
        options=sample.options,
        answer=sample.answer,
        record=record,
    )


def _draw_view(lv: LoadedView, slots: list[int], style: str, alpha: float, thickness: int) -> np.ndarray:
    return draw_regions(
        lv.image,
        lv.masks,
        [NAMED_PALETTE[slot].rgb for slot in slots],
        style,
        alpha=alpha,
        thickness=scaled_thickness(thickness, lv.image.shape[:2]),
        tags=[str(slot + 1) for slot in slots] if style == "marks" else None,
        font=tag_font(lv.image.shape[:2]),
    )


def _colour_records(sample: Sample, slots: dict[tuple[int, int], int]) -> list[dict[str, Any]]:
    """Which colour (and number) names which region, and which placeholders it replaced."""
    records = []
    for (view_index, region_index), slot in slots.items():
        view = sample.views[view_index]
        records.append(
            {
                **NAMED_PALETTE[slot].as_dict(),
                "number": slot + 1,
                "view_index": view_index,
                "view_id": view.view_id,
                "region_index": region_index,
                "region_id": view.regions[region_index].region_id,
                "placeholders": [
                    k
                    for k, r in enumerate(sample.region_refs)
                    if (r.view_index, r.region_index) == (view_index, region_index)
                ],
            }
        )
    return records
