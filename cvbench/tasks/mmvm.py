"""MMVM loader: `mllm_match_eval_full.tsv` + `match_bench/case_*/` -> Sample | InvalidSample.

Reads exactly the upstream layout (docs/formats.md, section 2.1), one TSV row at a
time; the small per-case annotation JSONs are read as each row is loaded, images are never
decoded here. The query view is the original `FRAME00_ORI.jpg` (pre-rendered `FRAME00.jpg`)
with entry [0] of `FRAME00.json` as its one region; the candidate view is `FRAME01_ORI.jpg`
(pre-rendered `FRAME01_CAND.jpg`) with every annotation of `FRAME01_CAND.json` as a region
(region_id = the drawn numeric id), all of them kept even past the 25 that fit as options.

A bad row becomes an InvalidSample naming `file:line (case)` and the value at fault; an
unparseable or unknown cue is reported, never relabelled.
"""

from __future__ import annotations

import ast
import csv
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from cvbench.core.types import (
    CUE_BY_CODE,
    CUES,
    ImageRef,
    InvalidSample,
    Option,
    Region,
    Sample,
    SourceLocation,
    View,
)
from cvbench.tasks.files import (
    DataFormatError,
    LongLine,
    RecordError,
    ensure_resolves_inside,
    iter_bounded_lines,
    join_inside,
    max_line_bytes,
    parse_option_lines,
)

BENCHMARK = "mmvm"
LOADER_NOTES = "cvbench_loader"
CASES_DIR = "match_bench"
REQUIRED_COLUMNS = ("index", "question", "pure_question", "choices", "answer", "match_type", "image_path")
# columns turned into Sample fields, and base64 copies of the images (unused; megabytes per row)
CONSUMED_COLUMNS = frozenset({"question", "pure_question", "choices", "answer"})
DROPPED_COLUMNS = frozenset({"image", "image_v3"})
NONE_OF_THE_ABOVE = "none of the above"
MIN_CANDIDATES = 2


def iter_mmvm(tsv: Path, data_root: Path) -> Iterator[Sample | InvalidSample]:
    """Stream the samples of an MMVM TSV. `data_root` holds `match_bench/` (paths in the TSV
    may be relative to it or carry an upstream prefix before `match_bench/`).

    Raises DataFormatError for a file that cannot be read as a whole (no header, missing
    columns, broken quoting); every row-level problem is an InvalidSample.
    """
    tsv = Path(tsv)
    _raise_csv_field_limit()
    first_line: dict[str, int] = {}
    rows = 0
    with open(tsv, "rb") as f:
        lines = _TsvLines(f, max_line_bytes())
        reader = csv.reader(lines, delimiter="\t")
        header = _read_header(reader, tsv)
        header_problem = lines.problem(1, 1)
        if header_problem is not None:
            raise DataFormatError(f"{tsv}:1: the header cannot be read ({header_problem})")
        row_end = reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise DataFormatError(f"{tsv}:{row_end + 1}: the TSV cannot be read past this line ({exc})") from exc
            start, row_end = row_end + 1, reader.line_num
            where = SourceLocation(str(tsv), start)
            problem = lines.problem(start, row_end)
            if problem is not None:
                rows += 1
                yield InvalidSample(where, problem)
                continue
            if not any(cell.strip() for cell in row):
                continue
            rows += 1
            if len(row) != len(header):
                yield InvalidSample(where, f"row has {len(row)} tab-separated fields, the header has {len(header)}")
                continue
            cells = dict(zip(header, row, strict=True))
            sample_id = cells["index"].strip()
            if not sample_id:
                yield InvalidSample(where, "empty 'index'")
                continue
            if sample_id in first_line:
                first = first_line[sample_id]
                yield InvalidSample(where, f"duplicate index {sample_id!r} (first used at line {first})", sample_id)
                continue
            first_line[sample_id] = start
            try:
                yield parse_row(cells, sample_id, where, Path(data_root))
            except _CaseError as exc:
                yield InvalidSample(SourceLocation(where.file, where.line, exc.case), str(exc), sample_id)
            except RecordError as exc:
                yield InvalidSample(where, str(exc), sample_id)
    if rows == 0:
        raise DataFormatError(f"{tsv}: no samples (a header row and no data rows)")


class _TsvLines:
    """The TSV's physical lines as text for csv.reader, one per line so that `line_num` counts
    them. A line over the bound or with bytes that are not UTF-8 is remembered (and handed on
    blank, or decoded with surrogates) so that only its row is reported, never the whole file."""

    def __init__(self, f: BinaryIO, limit: int) -> None:
        self._f = f
        self._limit = limit
        self.long: dict[int, LongLine] = {}
        self.not_utf8: dict[int, int] = {}  # line -> offset of the first bad byte

    def __iter__(self) -> Iterator[str]:
        for lineno, raw in enumerate(iter_bounded_lines(self._f, self._limit), start=1):
            if isinstance(raw, LongLine):
                self.long[lineno] = raw
                yield '"\n' if raw.quotes % 2 else "\n"  # same quote parity: a quoted cell opens or closes as before
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.not_utf8[lineno] = exc.start
                text = raw.decode("utf-8", "surrogateescape")
            yield text.removeprefix("\ufeff") if lineno == 1 else text

    def problem(self, first: int, last: int) -> str | None:
        """Why the row on lines first..last cannot be read, or None."""
        for n in range(first, last + 1):
            if n in self.long:
                return self.long[n].reason if n == first else f"line {n}: {self.long[n].reason}"
            if n in self.not_utf8:
                where = "" if n == first else f" (line {n} of the row)"
                return f"line is not valid UTF-8 (byte {self.not_utf8[n]}){where}"
        return None


class _CaseError(RecordError):
    """A row's problem once its case folder is known (so the location can name it)."""

    def __init__(self, message: str, case: str) -> None:
        super().__init__(message)
        self.case = case


def _raise_csv_field_limit() -> None:
    # the published TSV carries base64 images in single cells, far over csv's 128 KiB default
    limit = sys.maxsize
    while True:
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 2


def _read_header(reader: Any, tsv: Path) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise DataFormatError(f"{tsv}: empty file (expected a header row with {', '.join(REQUIRED_COLUMNS)})") from None
    except csv.Error as exc:
        raise DataFormatError(f"{tsv}:1: the header cannot be read ({exc})") from exc
    header = [h.strip() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise DataFormatError(
            f"{tsv}:1: missing column(s) {', '.join(missing)} (the header has "
            f"{', '.join(header[:12])}{' ...' if len(header) > 12 else ''})"
        )
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise DataFormatError(f"{tsv}:1: repeated column(s) {', '.join(repeated)}")
    return header


def parse_row(cells: Mapping[str, str], sample_id: str, where: SourceLocation, data_root: Path) -> Sample:
    """One TSV row -> Sample; raises RecordError naming the column (and case) at fault."""
    cues = parse_match_type(cells["match_type"])
    query_overlay, cand_overlay = _overlay_paths(cells["image_path"], data_root)
    case = query_overlay.parent.name
    try:
        _check_case_files_inside(data_root, query_overlay, cand_overlay)
        return _build_sample(cells, sample_id, where, cues, query_overlay, cand_overlay, case)
    except _CaseError:
        raise
    except RecordError as exc:
        raise _CaseError(str(exc), case) from None


def _check_case_files_inside(data_root: Path, *overlays: Path) -> None:
    """The annotation and original image beside each overlay, symlinks followed, stay in the data."""
    for overlay in overlays:
        stem = overlay.stem.removesuffix("_CAND")
        for sibling in (annotation_path(overlay), overlay.with_name(f"{stem}_ORI{overlay.suffix}")):
            if os.path.lexists(sibling):
                ensure_resolves_inside(sibling, data_root, f"{overlay.parent.name}/{sibling.name}")


def _build_sample(
    cells: Mapping[str, str],
    sample_id: str,
    where: SourceLocation,
    cues: tuple[str, ...],
    query_overlay: Path,
    cand_overlay: Path,
    case: str,
) -> Sample:
    query_ann = read_annotations(annotation_path(query_overlay))
    cand_ann = read_annotations(annotation_path(cand_overlay))
    query = annotation_region(query_ann[0], f"{annotation_path(query_overlay).name}[0]", needs_id=False)
    candidates = tuple(
        annotation_region(a, f"{annotation_path(cand_overlay).name}[{i}]", needs_id=True)
        for i, a in enumerate(cand_ann)
    )
    ids = [r.region_id for r in candidates]
    repeated = sorted({i for i in ids if ids.count(i) > 1}, key=int)
    if repeated:
        raise RecordError(f"{annotation_path(cand_overlay).name}: repeated candidate id(s) {', '.join(repeated)}")
    if len(candidates) < MIN_CANDIDATES:
        raise RecordError(
            f"{annotation_path(cand_overlay).name}: {len(candidates)} candidate(s); an MMVM question "
            f"needs at least {MIN_CANDIDATES}"
        )

    options = parse_option_lines([ln for ln in cells["choices"].splitlines() if ln.strip()], "choices")
    if not options:
        raise RecordError("'choices' is empty")
    _check_option_ids(options, set(ids))
    answer = cells["answer"].strip()
    letters = [o.letter for o in options]
    if answer not in letters:
        raise RecordError(f"'answer' {cells['answer']!r} is not one of the option letters {', '.join(letters)}")
    answer_text = options[letters.index(answer)].text
    if not _is_none_option(answer_text) and answer_text not in ids:
        raise RecordError(f"'answer' {answer} names id {answer_text}, which no candidate annotation has")
    question = cells["pure_question"]
    if not question.strip():
        raise RecordError("'pure_question' is empty")

    query_view = View("query", ImageRef(original_image_path(query_overlay)), (query,), ImageRef(query_overlay))
    cand_view = View("candidates", ImageRef(original_image_path(cand_overlay)), candidates, ImageRef(cand_overlay))
    metadata: dict[str, Any] = {k: v for k, v in cells.items() if k not in CONSUMED_COLUMNS | DROPPED_COLUMNS}
    metadata[LOADER_NOTES] = {
        "case": case,
        "query_annotations": len(query_ann),
        "dropped_columns": sorted(DROPPED_COLUMNS & set(cells)),
    }
    return Sample(
        sample_id=sample_id,
        benchmark=BENCHMARK,
        question=question,
        options=options,
        answer=answer,
        views=(query_view, cand_view),
        cluster=case,
        source=SourceLocation(where.file, where.line, case),
        cues=cues,
        candidate_count=len(candidates),
        prerendered_question=cells["question"],
        metadata=metadata,
    )


def _is_none_option(text: str) -> bool:
    return text.strip().lower().startswith(NONE_OF_THE_ABOVE)


def _check_option_ids(options: Sequence[Option], ids: set[str]) -> None:
    for o in options:
        if _is_none_option(o.text):
            continue
        if not o.text.isdigit():
            raise RecordError(
                f"'choices' option {o.letter} {o.text!r} is neither a candidate id nor "
                f"'None of the above choices are correct'"
            )
        if o.text not in ids:
            raise RecordError(f"'choices' option {o.letter} names id {o.text}, which no candidate annotation has")


# ------------------------------------------------------------------------------ cells


def parse_match_type(cell: str) -> tuple[str, ...]:
    """`"[1, 5]"` -> ("CL", "RP"). Parsed with ast.literal_eval; anything else is an error."""
    try:
        value = ast.literal_eval(cell.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise RecordError(f"'match_type' {cell!r} is not a Python list of cue numbers 1-8") from None
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise RecordError(f"'match_type' {cell!r} is not a non-empty list of cue numbers 1-8")
    codes: list[str] = []
    for v in value:
        if isinstance(v, int) and not isinstance(v, bool) and v in CUES:
            codes.append(CUES[v][0])
        elif isinstance(v, str) and v in CUE_BY_CODE:
            codes.append(v)
        else:
            raise RecordError(
                f"'match_type' {cell!r}: {v!r} is not a known cue (1-8: "
                + ", ".join(f"{i}={code}" for i, (code, _) in CUES.items())
                + ")"
            )
    return tuple(dict.fromkeys(codes))


def _literal_list(cell: str, column: str) -> list[Any]:
    try:
        value = ast.literal_eval(cell.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise RecordError(f"'{column}' {cell[:120]!r} is not a Python list literal") from None
    if not isinstance(value, (list, tuple)):
        raise RecordError(f"'{column}' {cell[:120]!r} is not a list")
    return list(value)


def _overlay_paths(cell: str, data_root: Path) -> tuple[Path, Path]:
    paths = _literal_list(cell, "image_path")
    if len(paths) != 2 or not all(isinstance(p, str) for p in paths):
        raise RecordError(f"'image_path' must list 2 paths (query overlay, candidate overlay), got {cell[:160]!r}")
    return (
        resolve_case_file(paths[0], data_root, "image_path[0]"),
        resolve_case_file(paths[1], data_root, "image_path[1]"),
    )


def resolve_case_file(given: str, data_root: Path, field: str) -> Path:
    """A TSV image path on this machine: as given under the data root, else by its
    `match_bench/case_xxx/...` tail (upstream paths often carry a machine-specific prefix).
    A relative path that climbs out of the data root is refused."""
    text = given.strip().replace("\\", "/")
    parts = PurePosixPath(text).parts
    tried: list[str] = []
    if not PurePosixPath(text).is_absolute():
        try:
            direct = join_inside(data_root, text)
        except RecordError as exc:
            raise RecordError(f"'{field}': {exc}") from None
        if direct.is_file():
            return direct
        tried.append(str(direct))
    elif ".." in parts:
        raise RecordError(f"'{field}': path {given!r} contains '..'")
    else:
        root_abs = Path(os.path.abspath(data_root))
        if root_abs in Path(text).parents and Path(text).is_file():
            try:
                ensure_resolves_inside(Path(text), root_abs, given)
            except RecordError as exc:
                raise RecordError(f"'{field}': {exc}") from None
            return Path(text)
    if CASES_DIR in parts:
        tail = parts[len(parts) - 1 - parts[::-1].index(CASES_DIR) :]
        if ".." in tail:
            raise RecordError(f"'{field}': path {given!r} contains '..' after {CASES_DIR}/")
        try:
            by_tail = join_inside(data_root, "/".join(tail))
        except RecordError as exc:
            raise RecordError(f"'{field}': {exc}") from None
        if by_tail.is_file():
            return by_tail
        tried.append(str(by_tail))
    where = " or ".join(tried) if tried else f"under {Path(data_root).absolute()} (no {CASES_DIR}/ in the path)"
    raise RecordError(f"'{field}' {given!r}: file not found (looked for {where})")


# ------------------------------------------------------------------------------ case files


def annotation_path(overlay: Path) -> Path:
    """`FRAME01_CAND.jpg` -> `FRAME01_CAND.json`."""
    return overlay.with_suffix(".json")


def original_image_path(overlay: Path) -> Path:
    """`FRAME00.jpg` -> `FRAME00_ORI.jpg`; `FRAME01_CAND.jpg` -> `FRAME01_ORI.jpg`."""
    stem = overlay.stem.removesuffix("_CAND")
    path = overlay.with_name(f"{stem}_ORI{overlay.suffix}")
    if not path.is_file():
        raise RecordError(f"original image {path.name} is missing next to {overlay.name}")
    return path


def read_annotations(path: Path) -> list[dict[str, Any]]:
    """An annotation JSON: a non-empty list of objects."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordError(f"annotation file {path.name} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"annotation file {path.name} is not valid JSON ({exc})") from None
    if not isinstance(raw, list) or not raw:
        raise RecordError(f"annotation file {path.name} must be a non-empty list of objects")
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise RecordError(f"{path.name}[{i}] must be an object, got {type(entry).__name__}")
    return raw


def annotation_region(entry: Mapping[str, Any], label: str, needs_id: bool) -> Region:
    """One annotation -> Region (COCO polygons, or an RLE dict; declared size from height/width)."""
    region_id = _annotation_id(entry.get("id"), label, needs_id)
    seg = entry.get("segmentation")
    polygons: tuple[tuple[float, ...], ...] = ()
    rle = None
    if isinstance(seg, dict):
        rle = seg
    elif isinstance(seg, list):
        for k, poly in enumerate(seg):
            if not isinstance(poly, list) or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in poly):
                raise RecordError(f"{label}.segmentation[{k}] must be a list of numbers [x1, y1, x2, y2, ...]")
        polygons = tuple(tuple(float(v) for v in poly) for poly in seg)
        if not any(len(p) >= 6 and len(p) % 2 == 0 for p in polygons):
            raise RecordError(f"{label}: no usable polygon (each needs an even count of at least 6 numbers)")
    else:
        raise RecordError(f"{label}.segmentation must be a list of polygons, got {type(seg).__name__}")
    return Region(region_id=region_id, rle=rle, polygons=polygons, declared_hw=_declared_hw(entry, label))


def _annotation_id(value: Any, label: str, needs_id: bool) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and value.strip().isdigit():
        return str(int(value))
    if value is None and not needs_id:
        return "query"
    raise RecordError(f"{label}.id must be a non-negative integer (the drawn tag), got {value!r}")


def _declared_hw(entry: Mapping[str, Any], label: str) -> tuple[int, int] | None:
    h, w = entry.get("height"), entry.get("width")
    if h is None and w is None:
        return None
    if not (isinstance(h, int) and isinstance(w, int) and _positive_int(h) and _positive_int(w)):
        raise RecordError(f"{label}: height/width must be positive integers, got {h!r}/{w!r}")
    return h, w


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
