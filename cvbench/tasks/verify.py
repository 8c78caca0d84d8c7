"""`cvbench data verify`: load every sample of a dataset and deep-check it, streaming.

Checks, per sample: it loads (every loader check: fields, refs, options, answer, ids, paths),
every image (and pre-rendered overlay, and video frame) exists and decodes, every mask
decodes, masks and annotations match their image size (a mismatch is a warning naming the
item), `<region>` count equals the refs, refs are in range, the answer is among the options,
candidate ids are unique and the answer's id exists. Samples are checked one at a time and
dropped, so memory stays bounded however large the file.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cvbench.core.types import (
    CATEGORY_NAMES,
    CUE_CODES,
    REGION_PLACEHOLDER,
    TASK_TYPES,
    ImageRef,
    InvalidSample,
    Sample,
    SourceLocation,
)
from cvbench.imaging.images import ImageError, image_size, load_image
from cvbench.imaging.masks import MaskError, decode_region, valid_polygons
from cvbench.tasks.crossviewbench import LOADER_NOTES
from cvbench.tasks.files import DataFormatError
from cvbench.tasks.loading import iter_data_file
from cvbench.tasks.slices import CANDIDATE_BUCKETS, SliceError, candidate_bucket

CVB_FILE = "crossviewbench.jsonl"
MMVM_FILE = "mllm_match_eval_full.tsv"
MAX_WARNING_EXAMPLES = 200
_IMAGE_CACHE_LIMIT = 200_000


class VerifyError(ValueError):
    """The path given to verify holds no dataset it can read."""


@dataclass
class VerifyReport:
    files: list[str] = field(default_factory=list)
    samples: int = 0  # records read (valid or not)
    ok: int = 0
    problems: list[InvalidSample] = field(default_factory=list)  # every bad item, in file order
    warnings: int = 0
    warning_examples: list[str] = field(default_factory=list)  # the first MAX_WARNING_EXAMPLES
    warning_kinds: Counter[str] = field(default_factory=Counter)  # message with numbers blanked -> count
    counts: dict[str, Counter[str]] = field(default_factory=dict)  # dimension -> label -> samples
    images_checked: int = 0
    masks_checked: int = 0
    # samples whose gold answer upstream's evaluation reads differently (or skips): where, id, reason
    gold_divergences: list[tuple[str, str | None, str]] = field(default_factory=list)

    @property
    def upstream_skipped(self) -> int:
        return sum(1 for _, _, reason in self.gold_divergences if "upstream skips" in reason)

    @property
    def passed(self) -> bool:
        return not self.problems

    def count(self, dim: str, label: str) -> None:
        self.counts.setdefault(dim, Counter())[label] += 1

    def warn(self, where: str, message: str) -> None:
        self.warnings += 1
        self.warning_kinds[warning_kind(message)] += 1
        if len(self.warning_examples) < MAX_WARNING_EXAMPLES:
            self.warning_examples.append(f"{where}: {message}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "files": self.files,
            "samples": self.samples,
            "ok": self.ok,
            "bad": len(self.problems),
            "problems": [{"where": str(p.source), "sample_id": p.sample_id, "reason": p.reason} for p in self.problems],
            "warnings": self.warnings,
            "warning_examples": self.warning_examples,
            "warning_kinds": dict(self.warning_kinds.most_common()),
            "counts": {dim: dict(_ordered(dim, c)) for dim, c in self.counts.items()},
            "images_checked": self.images_checked,
            "masks_checked": self.masks_checked,
            "gold_divergences": [{"where": w, "sample_id": i, "reason": r} for w, i, r in self.gold_divergences],
            "upstream_skipped": self.upstream_skipped,
        }


def find_data_files(path: Path) -> list[tuple[str, Path, Path]]:
    """(source format, data file, data folder) for a .jsonl, a .tsv, a folder holding either, or a
    data root whose subfolders hold them."""
    path = Path(path)
    if not path.exists():
        raise VerifyError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix == ".jsonl":
            return [("crossviewbench-jsonl", path, path.parent)]
        if path.suffix == ".tsv":
            return [("mmvm-tsv", path, path.parent)]
        raise VerifyError(f"{path}: expected a CrossViewBench .jsonl or an MMVM .tsv")
    found = _data_files_in(path)
    if not found:  # a data root: verify each task folder in it
        for child in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
            found.extend(_data_files_in(child))
    if not found:
        raise VerifyError(f"{path}: holds neither {CVB_FILE} nor {MMVM_FILE} (nor do its subfolders)")
    return found


def _data_files_in(folder: Path) -> list[tuple[str, Path, Path]]:
    found = []
    if (folder / CVB_FILE).is_file():
        found.append(("crossviewbench-jsonl", folder / CVB_FILE, folder))
    if (folder / MMVM_FILE).is_file():
        found.append(("mmvm-tsv", folder / MMVM_FILE, folder))
    return found


def verify_path(path: Path, decode_images: bool = True, progress: Callable[[int], None] | None = None) -> VerifyReport:
    """Verify every sample under `path`. `decode_images=False` reads image headers only."""
    report = VerifyReport()
    checker = SampleChecker(decode_images)
    for source, data_file, folder in find_data_files(path):
        report.files.append(str(data_file))
        items: Iterator[Sample | InvalidSample] = iter_data_file(source, data_file, folder)
        try:
            for item in items:
                report.samples += 1
                if isinstance(item, InvalidSample):
                    report.problems.append(item)
                    if "[answer " in item.reason and "upstream" in item.reason:
                        report.gold_divergences.append(
                            (str(item.source), item.sample_id, item.reason.rsplit("[", 1)[1].rstrip("]"))
                        )
                else:
                    gold = (item.metadata.get(LOADER_NOTES) or {}).get("gold_upstream")
                    if gold:
                        report.gold_divergences.append((str(item.source), item.sample_id, str(gold["reason"])))
                    _tally(report, item)
                    problems, warnings = checker.check(item)
                    report.images_checked, report.masks_checked = checker.images_checked, checker.masks_checked
                    for w in warnings:
                        report.warn(f"{item.source} [{item.sample_id}]", w)
                    if problems:
                        report.problems.extend(InvalidSample(item.source, p, item.sample_id) for p in problems)
                    else:
                        report.ok += 1
                if progress is not None and report.samples % 100 == 0:
                    progress(report.samples)
        except (DataFormatError, OSError) as exc:
            text = str(exc).removeprefix(f"{data_file}: ")
            reason = text if text.startswith("no samples") else f"cannot read further: {text}"
            report.problems.append(InvalidSample(SourceLocation(str(data_file)), reason))
    if progress is not None:
        progress(report.samples)
    return report


def warning_kind(message: str) -> str:
    """'view 1 (cam2) region 3 (id 7): mask size [4, 5] differs ...' -> 'mask size [N, N] differs ...'."""
    text = message.split("): ", 1)[1] if message.startswith("view ") and "): " in message else message
    return re.sub(r"\d+", "N", text)


def _tally(report: VerifyReport, sample: Sample) -> None:
    report.count("benchmark", sample.benchmark)
    if sample.benchmark == "crossviewbench":
        report.count("task_type", str(sample.task_type))
        report.count("category", str(sample.category))
        report.count("options", str(len(sample.options)) if sample.options else "open-ended")
    else:
        for cue in dict.fromkeys(sample.cues):
            report.count("cue", cue)
        if sample.candidate_count is not None:
            report.count("candidates", str(sample.candidate_count))
            try:
                report.count("bucket", candidate_bucket(sample.candidate_count))
            except SliceError:
                report.count("bucket", "<2")


# ------------------------------------------------------------------------------ per-sample checks


def structure_problems(sample: Sample) -> list[str]:
    """Checks on the loaded values alone (no I/O); the loaders enforce these, verify re-checks."""
    problems: list[str] = []
    letters = [o.letter for o in sample.options]
    if len(set(letters)) != len(letters):
        problems.append(f"repeated option letters {letters}")
    if sample.options and sample.answer not in letters:
        problems.append(f"answer {sample.answer!r} is not among the options {', '.join(letters)}")
    if not sample.options and sample.answer is not None:
        problems.append(f"answer {sample.answer!r} given for an open-ended question")
    for k, ref in enumerate(sample.region_refs):
        if not 0 <= ref.view_index < len(sample.views):
            problems.append(f"region ref {k}: view {ref.view_index} out of range ({len(sample.views)} views)")
        elif not 0 <= ref.region_index < len(sample.views[ref.view_index].regions):
            problems.append(
                f"region ref {k}: object {ref.region_index} out of range (view {ref.view_index} has "
                f"{len(sample.views[ref.view_index].regions)} objects)"
            )
    if sample.benchmark == "crossviewbench":
        n = sample.question.count(REGION_PLACEHOLDER)
        if n != len(sample.region_refs):
            problems.append(f"{n} {REGION_PLACEHOLDER} placeholder(s) but {len(sample.region_refs)} region refs")
        if sample.task_type not in TASK_TYPES or sample.category not in CATEGORY_NAMES:
            problems.append(f"task type {sample.task_type!r} / category {sample.category!r} unknown")
    if sample.benchmark == "mmvm":
        if len(sample.views) != 2 or not sample.views[0].regions:
            problems.append("an MMVM sample needs a query view with the query object and a candidate view")
        else:
            ids = [r.region_id for r in sample.views[1].regions]
            repeated = sorted({i for i in ids if ids.count(i) > 1})
            if repeated:
                problems.append(f"repeated candidate id(s) {', '.join(repeated)}")
            if sample.candidate_count != len(ids):
                problems.append(f"candidate_count {sample.candidate_count} but {len(ids)} candidate regions")
            answer_id = sample.answer_region_id
            if answer_id is not None and answer_id not in ids:
                problems.append(f"the answer's id {answer_id} is not among the candidates")
        if not sample.cues or any(c not in CUE_CODES for c in sample.cues):
            problems.append(f"cues {list(sample.cues)} must be a non-empty list of {', '.join(CUE_CODES)}")
    return problems


class SampleChecker:
    """Decodes a sample's images and masks; remembers image sizes (images are shared by many
    CrossViewBench questions), never pixels."""

    def __init__(self, decode_images: bool = True) -> None:
        self.decode_images = decode_images
        self._sizes: dict[tuple[str, int | None], tuple[int, int] | str] = {}
        self.images_checked = 0
        self.masks_checked = 0

    def image_hw(self, ref: ImageRef) -> tuple[int, int]:
        key = (str(ref.path), ref.frame)
        if key not in self._sizes:
            if len(self._sizes) >= _IMAGE_CACHE_LIMIT:
                self._sizes.clear()
            try:
                if self.decode_images:
                    h, w = load_image(ref).shape[:2]
                else:
                    h, w = image_size(ref)
                self._sizes[key] = (int(h), int(w))
            except ImageError as exc:
                self._sizes[key] = str(exc)
            self.images_checked += 1
        value = self._sizes[key]
        if isinstance(value, str):
            raise ImageError(value)
        return value

    def check(self, sample: Sample) -> tuple[list[str], list[str]]:
        problems = structure_problems(sample)
        warnings: list[str] = []
        for v, view in enumerate(sample.views):
            label = f"view {v} ({view.view_id})"
            try:
                hw = self.image_hw(view.image)
            except ImageError as exc:
                problems.append(f"{label}: {exc}")
                continue
            if view.prerendered is not None:
                try:
                    pre_hw = self.image_hw(view.prerendered)
                    if pre_hw != hw:
                        warnings.append(
                            f"{label}: pre-rendered image {view.prerendered.path.name} is "
                            f"{list(pre_hw)}, the original {list(hw)}"
                        )
                except ImageError as exc:
                    problems.append(f"{label}: pre-rendered image: {exc}")
            for r, region in enumerate(view.regions):
                where = f"{label} region {r} (id {region.region_id})"
                dropped = len(region.polygons) - len(valid_polygons(region.polygons))
                if dropped:
                    warnings.append(f"{where}: dropped {dropped} polygon(s) of odd length or under 6 numbers")
                try:
                    decoded = decode_region(region, hw)
                except MaskError as exc:
                    problems.append(f"{where}: {exc}")
                    continue
                self.masks_checked += 1
                warnings.extend(f"{where}: {w}" for w in decoded.warnings)
                if not np.any(decoded.mask):
                    warnings.append(f"{where}: mask is empty")
        return problems, warnings


# ------------------------------------------------------------------------------ output


def _ordered(dim: str, counter: Counter[str]) -> list[tuple[str, int]]:
    order: dict[str, list[str]] = {
        "task_type": list(TASK_TYPES),
        "category": list(CATEGORY_NAMES),
        "cue": list(CUE_CODES),
        "bucket": [label for label, _, _ in CANDIDATE_BUCKETS] + ["<2"],
    }
    if dim in order:
        return [(k, counter[k]) for k in order[dim] if counter[k]] + sorted(
            (k, n) for k, n in counter.items() if k not in order[dim]
        )
    if dim in ("candidates", "options"):

        def numeric_first(kv: tuple[str, int]) -> tuple[bool, int, str]:
            return not kv[0].isdigit(), int(kv[0]) if kv[0].isdigit() else 0, kv[0]

        return sorted(counter.items(), key=numeric_first)
    return sorted(counter.items())


def report_json(report: VerifyReport) -> str:
    return json.dumps(report.as_dict(), indent=2, ensure_ascii=False)


def print_report(report: VerifyReport, console: Any) -> None:
    """Human-readable report on a rich Console."""
    from rich.table import Table

    console.print(f"[bold]Verified[/bold] {', '.join(report.files)}")
    console.print(
        f"{report.samples} samples: {report.ok} ok, {len(report.problems)} bad item(s); "
        f"{report.warnings} warning(s); {report.images_checked} images checked, "
        f"{report.masks_checked} masks decoded"
    )
    titles = {
        "benchmark": "benchmark",
        "task_type": "task type",
        "category": "category",
        "options": "options",
        "cue": "cue (multi-label)",
        "candidates": "candidates",
        "bucket": "candidate bucket",
    }
    for dim in ("benchmark", "category", "task_type", "options", "cue", "bucket", "candidates"):
        if dim not in report.counts:
            continue
        table = Table(title=f"samples per {titles[dim]}", title_justify="left")
        table.add_column(titles[dim])
        table.add_column("samples", justify="right")
        for label, n in _ordered(dim, report.counts[dim]):
            shown = f"{label} ({TASK_TYPES[label][0]})" if dim == "task_type" and label in TASK_TYPES else label
            if dim == "category" and label in CATEGORY_NAMES:
                shown = CATEGORY_NAMES[label]
            table.add_row(shown, str(n))
        console.print(table)
    if report.warning_examples:
        more = report.warnings - len(report.warning_examples)
        console.print(f"[yellow]warnings[/yellow] ({report.warnings}) by kind:")
        for kind, n in report.warning_kinds.most_common(20):
            console.print(f"  {n:>7}  {kind}", markup=False, highlight=False)
        console.print("warnings:")
        for w in report.warning_examples:
            console.print(f"  {w}", markup=False, highlight=False)
        if more:
            console.print(f"  ... and {more} more")
    if report.gold_divergences:
        console.print(
            f"[yellow]gold answers read differently by the upstream evaluation[/yellow] "
            f"({len(report.gold_divergences)}; upstream skips {report.upstream_skipped}):"
        )
        for where, sample_id, reason in report.gold_divergences:
            console.print(f"  {where} [{sample_id}]: {reason}", markup=False, highlight=False)
    if report.problems:
        console.print(f"[red]bad items[/red] ({len(report.problems)}):")
        for p in report.problems:
            console.print(f"  {p}", markup=False, highlight=False)
    else:
        console.print("[green]all samples passed[/green]")
