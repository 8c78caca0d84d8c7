"""CrossViewBench loader: one JSON object per line -> Sample | InvalidSample, lazily.

Reads exactly the upstream record (docs/formats.md, section 1.1). Images and masks
are never decoded here (only paths are checked to exist); `cvbench data verify` does that.
A bad record becomes an InvalidSample naming `file:line` and the field; nothing is ever
substituted, relabelled or replaced by another sample.

Loader notes (how an answer was normalised, where the cluster key came from, unknown keys
of views and objects) go to `metadata["cvbench_loader"]`; every other upstream key of the
record is kept in `metadata` verbatim.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from cvbench.core.types import (
    REGION_PLACEHOLDER,
    TASK_TYPES,
    ImageRef,
    InvalidSample,
    Option,
    Region,
    RegionRef,
    Sample,
    SourceLocation,
    View,
    category_of,
)
from cvbench.tasks.files import (
    DataFormatError,
    LongLine,
    RecordError,
    iter_bounded_lines,
    join_inside,
    max_line_bytes,
    parse_option_lines,
)
from cvbench.tasks.gold import gold_divergence, upstream_gold

BENCHMARK = "crossviewbench"
LOADER_NOTES = "cvbench_loader"
# record keys turned into Sample fields; every other key is kept in metadata
CONSUMED_KEYS = frozenset(
    {"sample_id", "question_type", "question", "options", "answer", "region_refs", "region_token_counts", "views"}
)
VIEW_KEYS = frozenset({"view_id", "image_path", "video_path", "frame_id", "frame_idx", "objects"})
OBJECT_KEYS = frozenset({"mask_rle", "bbox_xyxy", "track_id", "name"})


def iter_crossviewbench(jsonl: Path, data_root: Path) -> Iterator[Sample | InvalidSample]:
    """Stream the samples of a CrossViewBench JSONL file, one line at a time.

    `data_root` is the folder image/video paths are relative to (upstream also tries its parent).
    Blank lines are skipped. A repeated sample_id makes the later line invalid; a line over
    `max_line_bytes()` is invalid (and never held in memory whole). A file without a single
    record raises DataFormatError: zero samples is never a finished evaluation.
    """
    jsonl = Path(jsonl)
    first_line: dict[str, int] = {}
    media: dict[str, Path] = {}  # image paths resolved in this pass (views share files)
    limit = max_line_bytes()
    records = 0
    with open(jsonl, "rb") as f:
        for lineno, raw in enumerate(iter_bounded_lines(f, limit), start=1):
            where = SourceLocation(str(jsonl), lineno)
            if isinstance(raw, LongLine):
                records += 1
                yield InvalidSample(where, raw.reason)
                continue
            if not raw.strip():
                continue
            records += 1
            try:
                record = _decode_line(raw, lineno)
            except RecordError as exc:
                yield InvalidSample(where, str(exc))
                continue
            try:
                sample_id = _sample_id(record)
            except RecordError as exc:
                yield InvalidSample(where, str(exc))
                continue
            if sample_id in first_line:
                yield InvalidSample(
                    where, f"duplicate sample_id {sample_id!r} (first used at line {first_line[sample_id]})", sample_id
                )
                continue
            first_line[sample_id] = lineno
            try:
                yield parse_record(record, sample_id, where, Path(data_root), media)
            except RecordError as exc:
                yield InvalidSample(where, str(exc), sample_id)
    if records == 0:
        raise DataFormatError(f"{jsonl}: no samples (the file is empty or holds only blank lines)")


def _decode_line(raw: bytes, lineno: int) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(f"line is not valid UTF-8 (byte {exc.start})") from None
    if lineno == 1:
        text = text.removeprefix("\ufeff")
    text = text.rstrip("\r\n")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
            raise RecordError(f"truncated JSON line: it ends inside a value (column {exc.colno}: {exc.msg})") from None
        raise RecordError(f"invalid JSON at column {exc.colno}: {exc.msg}") from None
    if not isinstance(record, dict):
        raise RecordError(f"line holds a JSON {type(record).__name__}, not an object")
    return record


def _sample_id(record: Mapping[str, Any]) -> str:
    if "sample_id" not in record:
        raise RecordError("missing 'sample_id'")
    value = record["sample_id"]
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        raise RecordError(f"'sample_id' must be a non-empty string or an integer, got {value!r}")
    return str(value)


def parse_record(
    record: Mapping[str, Any],
    sample_id: str,
    where: SourceLocation,
    data_root: Path,
    media: dict[str, Path] | None = None,
) -> Sample:
    """One decoded JSONL object -> Sample; raises RecordError naming the field at fault.

    `media`: relative path -> resolved file, shared by the records of one pass over a file so
    that each file is looked up once (only successful look-ups are kept)."""
    if LOADER_NOTES in record:
        raise RecordError(f"key {LOADER_NOTES!r} is reserved for cvbench's loader notes")
    notes: dict[str, Any] = {}

    task_type = record.get("question_type")
    if task_type not in TASK_TYPES:
        raise RecordError(f"'question_type' {task_type!r} is not a CrossViewBench task type (Q1..Q17)")

    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise RecordError(f"'question' must be a non-empty string, got {_short(question)}")

    default_frame = _frame(record, "record")
    views_raw = record.get("views")
    if not isinstance(views_raw, list) or len(views_raw) < 2:
        raise RecordError(f"'views' must be a list of at least 2 views, got {_short(views_raw)}")
    views = tuple(_parse_view(v, i, data_root, default_frame, notes, media) for i, v in enumerate(views_raw))
    declared_ids = [str(v["view_id"]) for v in views_raw if v.get("view_id") is not None]
    if len(set(declared_ids)) != len(declared_ids):
        raise RecordError(f"'views': repeated view_id in {declared_ids}")

    refs = _parse_refs(record.get("region_refs", []), views, views_raw)
    placeholders = question.count(REGION_PLACEHOLDER)
    if placeholders != len(refs):
        raise RecordError(
            f"'question' has {placeholders} {REGION_PLACEHOLDER} placeholder(s) but 'region_refs' "
            f"has {len(refs)} entries"
        )
    token_counts = _token_counts(record.get("region_token_counts"), len(refs))

    options_raw = record.get("options", [])
    if options_raw is None:
        options_raw = []
    if not isinstance(options_raw, list):
        raise RecordError(f"'options' must be a list of 'A. text' lines, got {_short(options_raw)}")
    options = parse_option_lines(options_raw, "options")
    metadata = {k: v for k, v in record.items() if k not in CONSUMED_KEYS}
    if options:
        if "answer" not in record:
            raise RecordError("missing 'answer'")
        try:
            answer, how = normalise_answer(record["answer"], options)
        except RecordError as exc:
            divergence = gold_divergence(record["answer"], options, None, str(exc))
            raise RecordError(f"{exc} [{divergence}]" if divergence else str(exc)) from exc
        if how is not None:
            notes["answer_normalised"] = {"from": record["answer"], "to": answer, "how": how}
        divergence = gold_divergence(record["answer"], options, answer)
        if divergence is not None:
            notes["gold_upstream"] = {
                "upstream": upstream_gold(record["answer"], options),
                "cvbench": answer,
                "reason": divergence,
            }
    else:
        answer = None  # open-ended: the reference answer stays in metadata["answer"]
        if "answer" in record:
            metadata["answer"] = record["answer"]

    cluster, cluster_source = _cluster(record, sample_id)
    notes["cluster_source"] = cluster_source
    metadata[LOADER_NOTES] = notes
    return Sample(
        sample_id=sample_id,
        benchmark=BENCHMARK,
        question=question,
        options=options,
        answer=answer,
        views=views,
        cluster=cluster,
        source=where,
        task_type=task_type,
        category=category_of(task_type),
        region_refs=refs,
        region_token_counts=token_counts,
        metadata=metadata,
    )


# ------------------------------------------------------------------------------ views


def _parse_view(
    raw: Any,
    index: int,
    data_root: Path,
    default_frame: int | None,
    notes: dict[str, Any],
    media: dict[str, Path] | None = None,
) -> View:
    label = f"views[{index}]"
    if not isinstance(raw, dict):
        raise RecordError(f"'{label}' must be an object, got {_short(raw)}")
    view_id = raw.get("view_id")
    if view_id is None:
        view_id = str(index)
    elif isinstance(view_id, bool) or not isinstance(view_id, (str, int)):
        raise RecordError(f"'{label}.view_id' must be a string, got {view_id!r}")
    image = _view_image(raw, label, data_root, default_frame, media)

    objects = raw.get("objects")
    if not isinstance(objects, list):
        raise RecordError(f"'{label}.objects' must be a list, got {_short(objects)}")
    regions = tuple(_parse_object(o, label, j, notes) for j, o in enumerate(objects))
    extra = {k: v for k, v in raw.items() if k not in VIEW_KEYS}
    if extra:
        notes.setdefault("view_fields", {})[str(index)] = extra
    return View(view_id=str(view_id), image=image, regions=regions)


def _view_image(
    raw: Mapping[str, Any], label: str, data_root: Path, default_frame: int | None, media: dict[str, Path] | None = None
) -> ImageRef:
    image_path = raw.get("image_path")
    if image_path is not None:
        if not isinstance(image_path, str):
            raise RecordError(f"'{label}.image_path' must be a string, got {image_path!r}")
        return ImageRef(_resolve_known(image_path, data_root, f"{label}.image_path", media))
    video_path = raw.get("video_path")
    if video_path is None:
        raise RecordError(f"'{label}' has neither 'image_path' nor 'video_path'")
    if not isinstance(video_path, str):
        raise RecordError(f"'{label}.video_path' must be a string, got {video_path!r}")
    frame = _frame(raw, label)
    if frame is None:
        frame = default_frame
    if frame is None:
        raise RecordError(f"'{label}' has a video_path but no frame_id/frame_idx (in the view or the record)")
    return ImageRef(_resolve_known(video_path, data_root, f"{label}.video_path", media), frame=frame)


def _resolve_known(relative: str, data_root: Path, field: str, media: dict[str, Path] | None) -> Path:
    """`resolve_media`, remembered in `media` (errors are not: each record reports its own field)."""
    if media is None:
        return resolve_media(relative, data_root, field)
    path = media.get(relative)
    if path is None:
        path = media[relative] = resolve_media(relative, data_root, field)
    return path


def _frame(raw: Mapping[str, Any], label: str) -> int | None:
    present = [(k, raw[k]) for k in ("frame_id", "frame_idx") if raw.get(k) is not None]
    if not present:
        return None
    if len(present) == 2 and present[0][1] != present[1][1]:
        raise RecordError(f"'{label}': frame_id {present[0][1]!r} and frame_idx {present[1][1]!r} disagree")
    key, value = present[0]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RecordError(f"'{label}.{key}' must be a non-negative integer, got {value!r}")
    return value


def resolve_media(relative: str, data_root: Path, field: str) -> Path:
    """The file under the data root, else under its parent (as upstream); never outside them."""
    try:
        primary = join_inside(data_root, relative)
    except RecordError as exc:
        raise RecordError(f"'{field}': {exc}") from None
    if primary.is_file():
        return primary
    parent = Path(data_root).absolute().parent
    try:
        fallback = join_inside(parent, relative)
    except RecordError as exc:
        raise RecordError(f"'{field}': {exc}") from None
    if fallback.is_file():
        return fallback
    raise RecordError(f"'{field}' {relative!r}: file not found (looked in {Path(data_root).absolute()} and {parent})")


def _parse_object(raw: Any, view_label: str, index: int, notes: dict[str, Any]) -> Region:
    # the common shape (a plain dict, 4 JSON numbers, only known keys) takes no generator, dict
    # comprehension or label formatting: a warm rerun parses ~25 objects per record
    if not isinstance(raw, dict):
        raise RecordError(f"'{_object_label(view_label, index)}' must be an object, got {_short(raw)}")
    rle = raw.get("mask_rle")
    if rle is not None and not isinstance(rle, dict):
        rle = None  # an unusable RLE falls back to the bbox, as upstream; decode_region warns about it
        notes.setdefault("unusable_mask_rle", []).append(_object_label(view_label, index))
    bbox = raw.get("bbox_xyxy")
    if bbox is not None:
        bbox = _bbox(bbox, view_label, index)
    if rle is None and bbox is None:
        raise RecordError(f"'{_object_label(view_label, index)}' has neither a 'mask_rle' nor a 'bbox_xyxy'")
    track_id = raw.get("track_id")
    name = raw.get("name")
    if not isinstance(name, str):
        name = None
    if not raw.keys() <= OBJECT_KEYS:
        extra = {k: v for k, v in raw.items() if k not in OBJECT_KEYS}
        notes.setdefault("object_fields", {})[_object_label(view_label, index)] = extra
    return Region(region_id=str(index) if track_id is None else str(track_id), rle=rle, bbox_xyxy=bbox, name=name)


def _object_label(view_label: str, index: int) -> str:
    return f"{view_label}.objects[{index}]"


_NUMBER = (int, float)


def _bbox(bbox: Any, view_label: str, index: int) -> tuple[float, float, float, float]:
    if type(bbox) is list and len(bbox) == 4:
        x1, y1, x2, y2 = bbox
        if type(x1) in _NUMBER and type(y1) in _NUMBER and type(x2) in _NUMBER and type(y2) in _NUMBER:
            return (float(x1), float(y1), float(x2), float(y2))
    if (
        not isinstance(bbox, (list, tuple))
        or len(bbox) != 4
        or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in bbox)
    ):
        label = _object_label(view_label, index)
        raise RecordError(f"'{label}.bbox_xyxy' must be 4 numbers [x1, y1, x2, y2], got {_short(bbox)}")
    x1, y1, x2, y2 = (float(v) for v in bbox)
    return (x1, y1, x2, y2)


# ------------------------------------------------------------------------------ references


def _parse_refs(raw: Any, views: Sequence[View], views_raw: Sequence[Any]) -> tuple[RegionRef, ...]:
    if not isinstance(raw, list):
        raise RecordError(f"'region_refs' must be a list, got {_short(raw)}")
    names = {str(v["view_id"]): i for i, v in enumerate(views_raw) if v.get("view_id") is not None}
    refs = []
    for k, ref in enumerate(raw):
        label = f"region_refs[{k}]"
        if isinstance(ref, (list, tuple)):
            if len(ref) != 2:
                raise RecordError(f"'{label}' must be [view_idx, obj_idx], got {_short(ref)}")
            view_raw, obj_raw = ref
        elif isinstance(ref, dict):
            view_raw = _one_of(ref, ("view_idx", "view"), label)
            obj_raw = _one_of(ref, ("obj_idx", "obj"), label)
        else:
            raise RecordError(f"'{label}' must be [view_idx, obj_idx] or an object, got {_short(ref)}")
        view_index = _view_index(view_raw, names, len(views), label)
        if isinstance(obj_raw, bool) or not isinstance(obj_raw, int):
            raise RecordError(f"'{label}': object index must be an integer, got {obj_raw!r}")
        n_objects = len(views[view_index].regions)
        if not 0 <= obj_raw < n_objects:
            raise RecordError(
                f"'{label}': object index {obj_raw} out of range (view {view_index} has {n_objects} objects)"
            )
        refs.append(RegionRef(view_index, obj_raw))
    return tuple(refs)


def _one_of(ref: Mapping[str, Any], keys: tuple[str, str], label: str) -> Any:
    present = [k for k in keys if k in ref]
    if not present:
        raise RecordError(f"'{label}' has neither {keys[0]!r} nor {keys[1]!r}")
    if len(present) == 2 and ref[keys[0]] != ref[keys[1]]:
        raise RecordError(f"'{label}': {keys[0]!r} and {keys[1]!r} disagree ({ref[keys[0]]!r} vs {ref[keys[1]]!r})")
    return ref[present[0]]


def _view_index(value: Any, names: Mapping[str, int], n_views: int, label: str) -> int:
    if isinstance(value, str):
        if value in names:
            return names[value]
        raise RecordError(f"'{label}': no view has view_id {value!r} (view ids: {sorted(names)})")
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"'{label}': view must be an index or a view_id string, got {value!r}")
    if not 0 <= value < n_views:
        raise RecordError(f"'{label}': view index {value} out of range (the sample has {n_views} views)")
    return value


def _token_counts(raw: Any, n_refs: int) -> tuple[int, ...] | None:
    if raw is None:
        return None
    if (
        not isinstance(raw, list)
        or len(raw) != n_refs
        or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in raw)
    ):
        raise RecordError(
            f"'region_token_counts' must be {n_refs} positive integers (one per region ref), got {_short(raw)}"
        )
    return tuple(raw)


# ------------------------------------------------------------------------------ answers, clusters

_LETTER_FORM = re.compile(r"^\(?\s*([A-Za-z])\s*[.):]?\s*\)?$")


def normalise_answer(raw: Any, options: Sequence[Option]) -> tuple[str, str | None]:
    """The answer as an option letter, and how it was normalised (None when it already was one).

    Upstream accepts a letter, the option's text, or a 1-based number; cvbench accepts those
    too but only when exactly one option fits, and records the normalisation.
    """
    letters = [o.letter for o in options]
    if isinstance(raw, str) and raw in letters:
        return raw, None
    readings: dict[str, str] = {}  # letter -> how
    if isinstance(raw, int) and not isinstance(raw, bool):
        if 1 <= raw <= len(options):
            readings[letters[raw - 1]] = "1-based option number"
    elif isinstance(raw, str):
        text = raw.strip()
        match = _LETTER_FORM.match(text)
        if match and match.group(1).upper() in letters:
            readings.setdefault(match.group(1).upper(), "letter form")
        for o in options:
            if text == o.line.strip():
                readings.setdefault(o.letter, "option line")
        text_hits = [o.letter for o in options if text.casefold() == o.text.strip().casefold() and text]
        if len(text_hits) == 1:
            readings.setdefault(text_hits[0], "option text")
        elif len(text_hits) > 1:
            raise RecordError(f"'answer' {raw!r} matches the text of several options ({', '.join(text_hits)})")
        if text.isdigit() and 1 <= int(text) <= len(options):
            readings.setdefault(letters[int(text) - 1], "1-based option number")
    else:
        raise RecordError(f"'answer' must be a string, got {_short(raw)}")
    if len(readings) == 1:
        return next(iter(readings.items()))
    if len(readings) > 1:
        raise RecordError(
            f"'answer' {raw!r} is ambiguous: it could mean option "
            + " or ".join(f"{letter} ({how})" for letter, how in sorted(readings.items()))
        )
    return _no_answer(raw, letters)


def _no_answer(raw: Any, letters: Sequence[str]) -> tuple[str, str | None]:
    span = f"{letters[0]}-{letters[-1]}" if len(letters) > 1 else letters[0]
    raise RecordError(
        f"'answer' {raw!r} is not among the options: neither a letter {span}, an option's text, "
        f"nor an option number 1-{len(letters)}"
    )


def _cluster(record: Mapping[str, Any], sample_id: str) -> tuple[str, str]:
    for key in ("scene", "take_name", "scenario"):
        value = record.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value), key
    dataset = record.get("dataset")
    prefix = str(dataset) if isinstance(dataset, (str, int)) and str(dataset).strip() else "no-dataset"
    return f"{prefix}/{sample_id}", "dataset+sample_id (no scene, take_name or scenario)"


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = ["iter_crossviewbench", "normalise_answer", "parse_record", "resolve_media"]
