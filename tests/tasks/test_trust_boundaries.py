"""Issue 24's data boundaries at the loader: symlinks resolved against the data root, bounded
line reading (memory stays near the bound), per-row UTF-8 errors in a TSV, zero samples as an
error, and an empty slice's accuracy as null. Real files and real symlinks throughout."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import pytest

from cvbench.core.types import InvalidSample, Sample
from cvbench.reports.tables import metric_cell
from cvbench.runner.progress import _fmt_metric
from cvbench.scoring.metrics import metric
from cvbench.tasks.crossviewbench import iter_crossviewbench
from cvbench.tasks.files import (
    DataFormatError,
    LongLine,
    RecordError,
    iter_bounded_lines,
    join_inside,
    max_line_bytes,
)
from cvbench.tasks.mmvm import iter_mmvm
from tests.tasks.builders import (
    cvb_record,
    make_case,
    mmvm_row,
    write_image,
    write_jsonl,
    write_tsv,
)

IMAGES = ["images/a.png", "images/b.png"]


def cvb_folder(root: Path) -> Path:
    folder = root / "crossviewbench"
    write_image(folder / IMAGES[0], seed=1)
    write_image(folder / IMAGES[1], seed=2)
    return folder


# ------------------------------------------------------------------------------ symlinks


def test_symlink_to_a_file_outside_the_root_is_refused_naming_it(tmp_path: Path) -> None:
    folder = cvb_folder(tmp_path / "data")
    outside = write_image(tmp_path / "elsewhere" / "secret.png", seed=3)
    (folder / "images" / "link.png").symlink_to(outside)
    with pytest.raises(RecordError, match=r"path 'images/link.png' is a symlink to .*elsewhere/secret.png, outside"):
        join_inside(folder, "images/link.png")


def test_symlinked_folder_pointing_outside_is_refused(tmp_path: Path) -> None:
    folder = cvb_folder(tmp_path / "data")
    write_image(tmp_path / "elsewhere" / "x.png", seed=3)
    (folder / "more").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(RecordError, match="is a symlink to"):
        join_inside(folder, "more/x.png")
    with pytest.raises(RecordError, match="is a symlink to"):  # even before the file exists
        join_inside(folder, "more/not-yet.png")


def test_links_that_stay_inside_and_a_linked_task_folder_still_load(tmp_path: Path) -> None:
    """A snapshot-style layout (files linking into a blob folder inside the data) and a task
    folder that is itself a link (`data download --link`) are inside the resolved root."""
    real = cvb_folder(tmp_path / "copy")
    (real / "blobs").mkdir()
    (real / "images" / "a.png").rename(real / "blobs" / "0123")
    (real / "images" / "a.png").symlink_to("../blobs/0123")
    write_jsonl(real / "crossviewbench.jsonl", [cvb_record("s1", IMAGES)])
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "crossviewbench").symlink_to(real, target_is_directory=True)
    items = list(
        iter_crossviewbench(
            tmp_path / "data" / "crossviewbench" / "crossviewbench.jsonl", tmp_path / "data" / "crossviewbench"
        )
    )
    assert [type(i) for i in items] == [Sample], items


def test_mmvm_original_image_symlinked_outside_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "mmvm"
    make_case(folder, "case_a", [1, 2, 3])
    ori = folder / "match_bench" / "case_a" / "FRAME01_ORI.jpg"
    outside = tmp_path / "elsewhere.jpg"
    outside.write_bytes(ori.read_bytes())
    ori.unlink()
    ori.symlink_to(outside)
    write_tsv(folder / "mllm_match_eval_full.tsv", [mmvm_row(0, "case_a", [1, 2, 3], 1)])
    [item] = list(iter_mmvm(folder / "mllm_match_eval_full.tsv", folder))
    assert isinstance(item, InvalidSample)
    assert "path 'case_a/FRAME01_ORI.jpg' is a symlink to" in item.reason and str(outside) in item.reason


# ------------------------------------------------------------------------------ bounded lines


def test_bounded_lines_split_exactly_at_the_bound() -> None:
    data = b"a" * 1024 + b"\n" + b"b" * 1025 + b"\n" + b"c" * 3000 + b"\n" + b"tail"
    got = list(iter_bounded_lines(io.BytesIO(data), 1024))
    assert got[0] == b"a" * 1024 + b"\n"
    assert got[1] == LongLine(1025, 1024, 0) and got[2] == LongLine(3000, 1024, 0)
    assert got[3] == b"tail"


def test_max_line_bytes_setting() -> None:
    assert max_line_bytes({}) == 256 * 1024 * 1024
    assert max_line_bytes({"CVBENCH_MAX_LINE_BYTES": "4096"}) == 4096
    with pytest.raises(DataFormatError, match=r"\$CVBENCH_MAX_LINE_BYTES='lots': expected a whole number"):
        max_line_bytes({"CVBENCH_MAX_LINE_BYTES": "lots"})
    with pytest.raises(DataFormatError, match="at least 1024"):
        max_line_bytes({"CVBENCH_MAX_LINE_BYTES": "10"})


def test_a_long_jsonl_line_is_invalid_and_memory_stays_near_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = cvb_folder(tmp_path / "data")
    long_record = cvb_record("long", IMAGES, question="Is <region> " + "x" * 16_000_000 + "?")
    path = write_jsonl(folder / "crossviewbench.jsonl", [cvb_record("a", IMAGES), long_record, cvb_record("b", IMAGES)])
    del long_record
    monkeypatch.setenv("CVBENCH_MAX_LINE_BYTES", str(64 * 1024))
    tracemalloc.start()
    try:
        items = list(iter_crossviewbench(path, folder))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [getattr(i, "sample_id", None) for i in items] == ["a", None, "b"]
    assert isinstance(items[1], InvalidSample) and items[1].source.line == 2
    assert "over the 65,536-byte line bound" in items[1].reason
    assert peak < 8 * 1024 * 1024, f"peak {peak:,} bytes while skipping a 16 MB line"


def test_a_non_utf8_tsv_row_is_reported_alone(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "mmvm"
    make_case(folder, "case_a", [1, 2, 3])
    rows = [
        mmvm_row(0, "case_a", [1, 2, 3], 1),
        mmvm_row(1, "case_a", [1, 2, 3], 2, pure_question="@BAD@ which one?"),
        mmvm_row(2, "case_a", [1, 2, 3], 3),
    ]
    path = write_tsv(folder / "mllm_match_eval_full.tsv", rows)
    path.write_bytes(path.read_bytes().replace(b"@BAD@", b"caf\xe9"))
    items = list(iter_mmvm(path, folder))
    assert [type(i).__name__ for i in items] == ["Sample", "InvalidSample", "Sample"]
    bad = items[1]
    assert bad.source.line == rows_first_line(path, 1) and "is not valid UTF-8" in bad.reason


def rows_first_line(path: Path, index: int) -> int:
    """The physical line on which the row with `index` starts (the header is line 1)."""
    for n, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        if line.startswith(f"{index}\t".encode()):
            return n
    raise AssertionError(index)


# ------------------------------------------------------------------------------ zero samples


def test_empty_jsonl_and_header_only_tsv_are_errors_naming_the_file(tmp_path: Path) -> None:
    jsonl = tmp_path / "crossviewbench.jsonl"
    jsonl.write_bytes(b"\n  \n")
    with pytest.raises(DataFormatError, match=f"{jsonl}: no samples"):
        list(iter_crossviewbench(jsonl, tmp_path))
    tsv = write_tsv(tmp_path / "mllm_match_eval_full.tsv", [])
    with pytest.raises(DataFormatError, match=f"{tsv}: no samples"):
        list(iter_mmvm(tsv, tmp_path))


def test_an_empty_slice_has_no_accuracy() -> None:
    m = metric([], run_seed=0, slice_name="empty")
    assert m["n"] == 0 and m["accuracy"] is None and m["ci"] is None
    assert _fmt_metric(m, True)[:3] == ["-", "-", "0"]
    cell = metric_cell(m)
    assert cell.value is None and cell.n == 0


def test_a_data_file_linked_from_outside_the_task_folder_is_refused(tmp_path: Path) -> None:
    """The data file itself is data: `crossviewbench.jsonl -> /elsewhere/...` is refused by name."""
    from cvbench.tasks.loading import DataFormatError, iter_task_samples
    from cvbench.tasks.registry import get_task

    outside = tmp_path / "elsewhere" / "crossviewbench.jsonl"
    outside.parent.mkdir()
    outside.write_text('{"sample_id": "x"}\n', encoding="utf-8")
    folder = tmp_path / "data" / "crossviewbench"
    folder.mkdir(parents=True)
    (folder / "crossviewbench.jsonl").symlink_to(outside)
    with pytest.raises(DataFormatError, match=r"crossviewbench\.jsonl'? is a symlink to .*elsewhere"):
        list(iter_task_samples(get_task("crossviewbench"), tmp_path / "data"))
