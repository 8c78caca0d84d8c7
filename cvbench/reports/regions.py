"""Native-mode samples drawn with their regions, for people only.

A native-region model receives the raw images and the masks, and its prompt says `<region>` for
each referenced object. To show a reader which object is which, each referenced region is drawn
on a copy of its view ("marks" style: fill, outline and a numbered tag, numbered in `<region>`
order) with a legend. These pictures are labelled "display only, the model received masks"
wherever they appear; they are never what the model saw.

The masks come from the task's data (config.json's data root): when the data is not there, the
report says so instead of drawing anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cvbench.core.types import Sample
from cvbench.imaging.images import ImageError, load_image
from cvbench.imaging.masks import MaskError, decode_region
from cvbench.imaging.render import draw_regions, palette, scaled_thickness, tag_font
from cvbench.rundir.records import SampleRecord
from cvbench.tasks.loading import iter_task_samples
from cvbench.tasks.registry import get_task

DISPLAY_ONLY = "display only, the model received masks"


@dataclass(frozen=True)
class LegendEntry:
    number: int  # the k-th `<region>` of the prompt, 1-based
    view: int  # 1-based image number
    name: str  # object name or region id
    colour: str  # "#rrggbb"


@dataclass(frozen=True)
class RegionDrawing:
    images: tuple[np.ndarray, ...]  # one per view, RGB, regions drawn
    legend: tuple[LegendEntry, ...]


def region_refs(record: SampleRecord) -> list[tuple[int, int]]:
    """(view index, region index) of each `<region>` of a native-mode record, in prompt order."""
    refs = record.protocol.get("region_refs") if record.mode == "native" else None
    if not isinstance(refs, list):
        return []
    out = []
    for ref in refs:
        if isinstance(ref, list) and len(ref) == 2 and all(isinstance(v, int) for v in ref):
            out.append((ref[0], ref[1]))
    return out


def load_samples(records: Sequence[SampleRecord], data_dir: str | None) -> tuple[dict[str, Sample], list[str]]:
    """The samples of the native-mode records, by record id; plus notes for what could not be read."""
    wanted: dict[str, dict[str, str]] = {}
    for r in records:
        if region_refs(r):
            wanted.setdefault(r.task, {})[r.sample_id] = r.record_id
    found: dict[str, Sample] = {}
    notes: list[str] = []
    for task, ids in wanted.items():
        try:
            spec = get_task(task)
            for item in iter_task_samples(spec, Path(data_dir) if data_dir else None):
                if isinstance(item, Sample) and item.sample_id in ids:
                    found[ids[item.sample_id]] = item
        except Exception as exc:  # the data may be elsewhere now: say so, draw nothing
            notes.append(f"regions of {task} not drawn: its data could not be read ({type(exc).__name__}: {exc})")
    return found, notes


def draw_sample_regions(sample: Sample, refs: Sequence[tuple[int, int]]) -> RegionDrawing:
    """Each view with its referenced regions filled, outlined and tagged with their `<region>` number."""
    colours = palette(len(refs))
    legend = []
    per_view: dict[int, list[tuple[int, int]]] = {}
    for k, (view_index, region) in enumerate(refs):
        per_view.setdefault(view_index, []).append((k, region))
        reg = sample.views[view_index].regions[region]
        legend.append(LegendEntry(k + 1, view_index + 1, reg.name or reg.region_id, colours[k].hex))
    images = []
    for v, view in enumerate(sample.views):
        image = load_image(view.image)
        marks = per_view.get(v, [])
        if marks:
            hw = (image.shape[0], image.shape[1])
            masks = [decode_region(view.regions[region], hw).mask for _, region in marks]
            image = draw_regions(
                image,
                masks,
                [colours[k].rgb for k, _ in marks],
                "marks",
                alpha=0.35,
                thickness=scaled_thickness(3, hw),
                tags=[str(k + 1) for k, _ in marks],
                font=tag_font(hw),
            )
        images.append(image)
    return RegionDrawing(tuple(images), tuple(legend))


def region_drawings(
    records: Sequence[SampleRecord], data_dir: str | None
) -> tuple[dict[str, RegionDrawing], list[str]]:
    """record id -> its drawing, for the native-mode records whose data can be read; plus notes."""
    samples, notes = load_samples(records, data_dir)
    out: dict[str, RegionDrawing] = {}
    for r in records:
        sample = samples.get(r.record_id)
        if sample is None:
            continue
        try:
            out[r.record_id] = draw_sample_regions(sample, region_refs(r))
        except (ImageError, MaskError, IndexError, ValueError) as exc:
            notes.append(f"{r.record_id}: regions not drawn ({exc})")
    return out, notes
