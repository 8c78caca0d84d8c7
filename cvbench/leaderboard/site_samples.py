"""The leaderboard's sample browsers: which records each model page shows (a seeded subset per
evaluation), their images in SITE/img/ (exact, preview or none), native regions drawn for
display, and the JSON payload the page's script reads."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cvbench.core.seeding import rng_for
from cvbench.core.types import ImageRef
from cvbench.imaging.images import ImageError, load_image
from cvbench.leaderboard.previews import IMAGE_MODES, PreviewSettings, preview_jpeg
from cvbench.reports.regions import DISPLAY_ONLY, region_drawings
from cvbench.reports.slice_names import setting_sort_key, slice_label, slice_sort_key
from cvbench.reports.summary import error_text, record_slice_names, record_status
from cvbench.rundir.format import RunData, SampleRecord, write_bytes_atomic
from cvbench.rundir.portable import data_root

DEFAULT_PREVIEW = PreviewSettings()


class SiteError(ValueError):
    pass


def select_site_records(
    records: Sequence[SampleRecord], *, run_name: str, seed: int, per_evaluation: int
) -> list[SampleRecord]:
    """At most `per_evaluation` records of each evaluation (task@setting), a seeded uniform
    subset in file order when there are more. 0 means all."""
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault(f"{r.task}@{r.setting}", []).append(i)
    keep: set[int] = set()
    for evaluation, idx in groups.items():
        if per_evaluation <= 0 or len(idx) <= per_evaluation:
            keep.update(idx)
        else:
            rng = rng_for(seed, run_name, evaluation, "site-samples")
            keep.update(idx[j] for j in rng.choice(len(idx), size=per_evaluation, replace=False))
    return [records[i] for i in sorted(keep)]


def require_image_mode(mode: str) -> None:
    if mode not in IMAGE_MODES:
        raise SiteError(f"--images must be one of {', '.join(IMAGE_MODES)}, got {mode!r}")


def copy_site_images(
    run: RunData,
    records: Iterable[SampleRecord],
    site: Path,
    mode: str = "exact",
    preview: PreviewSettings = DEFAULT_PREVIEW,
) -> tuple[dict[str, str], int]:
    """Put the records' images into SITE/img/: sha -> site-relative path; and how many files were new.

    `exact` copies the files the model saw (named by their sha256); `preview` writes a downscaled
    JPEG of each, named by the sha256 of the image it shows plus how it was made; `none` nothing.
    """
    require_image_mode(mode)
    paths: dict[str, str] = {}
    written = 0
    if mode == "none":
        return paths, written
    for r in records:
        for sha in r.image_sha256:
            if sha in paths:
                continue
            src = run.image_path(sha)
            if src is None:
                continue
            suffix = src.suffix.lower() if mode == "exact" else preview.suffix
            rel = f"img/{sha[:2]}/{sha}{suffix}"
            dest = site / rel
            if not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                if mode == "exact":
                    shutil.copyfile(src, dest)
                else:
                    try:
                        data = preview_jpeg(load_image(ImageRef(src)), preview)
                    except ImageError as exc:
                        raise SiteError(f"{run.path.name}: image of {r.record_id}: {exc}") from None
                    write_bytes_atomic(dest, data)
                written += 1
            paths[sha] = rel
    return paths, written


def write_region_drawings(
    run: RunData, records: Sequence[SampleRecord], site: Path, mode: str, preview: PreviewSettings
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Native-mode records drawn with their regions (display only) as JPEGs in SITE/img/regions/,
    named by their content: record id -> {"images", "legend", "label"}; plus notes."""
    if mode == "none":
        return {}, []
    drawings, notes = region_drawings(records, data_root(run.config))
    out: dict[str, dict[str, Any]] = {}
    for record_id, drawing in drawings.items():
        paths = []
        for image in drawing.images:
            data = preview_jpeg(image, preview)
            rel = f"img/regions/{hashlib.sha256(data).hexdigest()}.jpg"
            if not (site / rel).exists():
                (site / rel).parent.mkdir(parents=True, exist_ok=True)
                write_bytes_atomic(site / rel, data)
            paths.append(rel)
        out[record_id] = {
            "images": paths,
            "legend": [
                {"number": e.number, "view": e.view, "name": e.name, "colour": e.colour} for e in drawing.legend
            ],
            "label": DISPLAY_ONLY,
        }
    return out, notes


def sample_payload(
    records: Sequence[SampleRecord],
    image_paths: dict[str, str],
    total: int,
    prefix: str,
    image_mode: str = "exact",
    regions: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    evaluations: dict[str, set[str]] = {}
    items = []
    for r in records:
        evaluation = f"{r.task}@{r.setting}"
        slices = record_slice_names(r)
        evaluations.setdefault(evaluation, set()).update(slices)
        items.append(
            {
                "id": r.record_id,
                "evaluation": evaluation,
                "slices": slices,
                "status": record_status(r),
                "prompt": r.prompt_text,
                "response": r.response,
                "parsed": r.parsed,
                "answer": r.answer,
                "parse_status": r.parse_status,
                "parse_reason": r.parse_reason,
                "error": error_text(r),
                "invalid": r.invalid,
                "judge": _judge_text(getattr(r, "judge", None)),
                "options": r.options,
                "source": r.source,
                "cluster": r.cluster,
                "mode": r.mode,
                "images": [prefix + image_paths[s] if s in image_paths else None for s in r.image_sha256],
                "image_sha256": list(r.image_sha256),
                "regions": _with_prefix((regions or {}).get(r.record_id), prefix),
            }
        )
    slice_options = []
    for evaluation in sorted(evaluations, key=lambda e: (e.partition("@")[0], -setting_sort_key(e.partition("@")[2]))):
        slice_options.append({"value": evaluation, "label": evaluation})
        for s in sorted(evaluations[evaluation], key=slice_sort_key):
            slice_options.append({"value": f"{evaluation}|{s}", "label": f"{evaluation} · {slice_label(s)}"})
    return {"total": total, "included": len(items), "image_mode": image_mode, "slices": slice_options, "records": items}


def _with_prefix(regions: dict[str, Any] | None, prefix: str) -> dict[str, Any] | None:
    return None if regions is None else {**regions, "images": [prefix + p for p in regions["images"]]}


def _judge_text(judge: Any) -> str | None:
    if not isinstance(judge, dict):
        return None
    return f"{judge.get('model', 'judge')}: {judge.get('response', '')}"
