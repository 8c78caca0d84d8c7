from __future__ import annotations

from pathlib import Path

import pytest

from cvbench.core.types import InvalidSample, Sample
from cvbench.imaging.masks import decode_region
from cvbench.tasks.loading import DataFormatError
from cvbench.tasks.mmvm import iter_mmvm, parse_match_type
from tests.tasks.builders import H, W, make_case, mmvm_row, write_tsv


def load(root: Path, rows: list[dict[str, str]]) -> list[Sample | InvalidSample]:
    return list(iter_mmvm(write_tsv(root / "mllm_match_eval_full.tsv", rows), root))


def test_row_and_case_become_a_sample(tmp_path: Path) -> None:
    make_case(tmp_path, "case_001", [3, 1, 2])
    (s,) = load(tmp_path, [mmvm_row(101, "case_001", [3, 1, 2], answer_id=2, match_type="[1, 5]")])
    assert isinstance(s, Sample), s
    assert s.sample_id == "101" and s.benchmark == "mmvm" and s.cluster == "case_001"
    assert s.cues == ("CL", "RP") and s.candidate_count == 3
    assert [o.line for o in s.options] == ["A. 1", "B. 2", "C. 3", "D. None of the above choices are correct"]
    assert s.answer == "B" and s.answer_region_id == "2"
    q, c = s.views
    case = tmp_path / "match_bench" / "case_001"
    assert q.image.path == case / "FRAME00_ORI.jpg" and q.prerendered.path == case / "FRAME00.jpg"
    assert c.image.path == case / "FRAME01_ORI.jpg" and c.prerendered.path == case / "FRAME01_CAND.jpg"
    assert len(q.regions) == 1 and [r.region_id for r in c.regions] == ["3", "1", "2"]
    assert c.regions[0].declared_hw == (H, W) and len(c.regions[0].polygons[0]) == 8
    assert s.question.startswith("Here are two images") and "A. 1" not in s.question
    assert s.prerendered_question.endswith("D. None of the above choices are correct")
    assert s.source.line == 2 and s.source.item == "case_001"
    assert "image" not in s.metadata and s.metadata["image_path_v3"].startswith("[")
    assert s.metadata["choices_head"] == "ABCD" and s.metadata["match_type"] == "[1, 5]"
    assert decode_region(c.regions[1], (H, W)).mask.sum() == 25


def test_none_of_the_above_answer_and_37_candidates_keep_every_region(tmp_path: Path) -> None:
    ids = list(range(1, 38))
    make_case(tmp_path, "case_big", ids, h=64, w=96)
    rows = [mmvm_row(1, "case_big", ids, answer_id=20), mmvm_row(2, "case_big", ids, answer_id=None)]
    big, none = load(tmp_path, rows)
    assert isinstance(big, Sample) and isinstance(none, Sample), (big, none)
    assert big.candidate_count == 37 and len(big.views[1].regions) == 37
    assert len(big.options) == 26  # 25 ids + None of the above (all letters A-Z)
    assert big.answer == "T" and big.answer_region_id == "20"
    assert none.answer == "Z" and none.answer_region_id is None


def test_upstream_prefixes_and_multiline_quoted_cells(tmp_path: Path) -> None:
    make_case(tmp_path, "case_002", [1, 2])
    row = mmvm_row(5, "case_002", [1, 2], answer_id=1, prefix="/mnt/petrelfs/someone/MMVM/match_bench")
    (s,) = load(tmp_path, [row])
    assert isinstance(s, Sample), s
    assert s.views[1].image.path == tmp_path / "match_bench" / "case_002" / "FRAME01_ORI.jpg"
    (absolute,) = load(tmp_path, [mmvm_row(6, "case_002", [1, 2], answer_id=1, prefix=str(tmp_path / "match_bench"))])
    assert isinstance(absolute, Sample) and absolute.views[0].prerendered.path.parent.name == "case_002"
    (relative,) = load(tmp_path, [mmvm_row(7, "case_002", [1, 2], answer_id=1, prefix="MMVMBench/match_bench")])
    assert isinstance(relative, Sample) and relative.views[1].image.path == s.views[1].image.path
    raw = (tmp_path / "mllm_match_eval_full.tsv").read_text()
    assert '"A. 1\nB. 2' in raw  # the choices cell really is quoted across lines


def test_annotation_quirks_are_kept_for_decode(tmp_path: Path) -> None:
    odd = [1.0, 2.0, 3.0, 4.0, 5.0]  # odd length: dropped at decode
    make_case(tmp_path, "case_003", [4, 7], declared_hw=(H * 2, W * 2), extra_polygons=[odd])
    (s,) = load(tmp_path, [mmvm_row(9, "case_003", [4, 7], answer_id=7)])
    assert isinstance(s, Sample), s
    region = s.views[1].regions[0]
    assert region.declared_hw == (H * 2, W * 2) and len(region.polygons) == 2
    decoded = decode_region(region, (H, W))
    assert decoded.mask.shape == (H, W) and any("annotation size" in w for w in decoded.warnings)


def test_bad_rows_are_reported_never_relabelled(tmp_path: Path) -> None:
    make_case(tmp_path, "case_a", [1, 2, 3])
    make_case(tmp_path, "case_dup", [1, 1, 2])
    make_case(tmp_path, "case_noori", [1, 2], skip=["FRAME01_ORI.jpg"])
    make_case(tmp_path, "case_one", [5])
    rows = [
        mmvm_row(1, "case_a", [1, 2, 3], answer_id=1),  # line 2 ok
        mmvm_row(2, "case_a", [1, 2, 3], answer_id=1, match_type="[1, 9]"),  # 3
        mmvm_row(3, "case_a", [1, 2, 3], answer_id=1, match_type="color"),  # 4
        mmvm_row(4, "case_a", [1, 2, 3], answer_id=1, answer="H"),  # 5
        mmvm_row(1, "case_a", [1, 2, 3], answer_id=1),  # 6 duplicate index
        mmvm_row(6, "case_dup", [1, 1, 2], answer_id=2),  # 7
        mmvm_row(7, "case_noori", [1, 2], answer_id=2),  # 8
        mmvm_row(8, "case_missing", [1, 2], answer_id=2),  # 9
        mmvm_row(9, "case_a", [1, 2, 3], answer_id=1, image_path="['../../etc/x.jpg', 'y.jpg']"),  # 10
        mmvm_row(10, "case_a", [1, 2, 3, 9], answer_id=9),  # 11 id 9 not annotated
        mmvm_row(11, "case_one", [5], answer_id=5),  # 12
        mmvm_row(12, "case_a", [1, 2, 3], answer_id=1, image_path="__import__('os')"),  # 13
    ]
    items = load(tmp_path, rows)
    assert len(items) == 12
    assert isinstance(items[0], Sample)
    # rows span several physical lines (quoted multi-line cells): key by row position, check lines apart
    bad = {pos + 2: i for pos, i in enumerate(items) if isinstance(i, InvalidSample)}
    expect = {
        3: "'match_type' '[1, 9]': 9 is not a known cue",
        4: "'match_type' 'color' is not a Python list",
        5: "'answer' 'H' is not one of the option letters",
        6: "duplicate index '1' (first used at line 2)",  # line 2: the row's first physical line
        7: "repeated candidate id(s) 1",
        8: "original image FRAME01_ORI.jpg is missing",
        9: "file not found",
        10: "escapes the data folder",
        11: "option D names id 9, which no candidate annotation has",
        12: "1 candidate(s)",
        13: "is not a Python list literal",
    }
    assert sorted(bad) == sorted(expect)
    for line, needle in expect.items():
        assert needle in bad[line].reason, (line, bad[line].reason)
    assert bad[7].source.item == "case_dup" and "(case_dup)" in str(bad[7])
    physical = (tmp_path / "mllm_match_eval_full.tsv").read_text().split("\n")
    for row, item in zip(rows, items, strict=True):  # each location is the physical line where the row starts
        assert physical[item.source.line - 1].startswith(row["index"] + "\t"), (item, row["index"])
    assert f"{tmp_path / 'mllm_match_eval_full.tsv'}:{items[1].source.line} [2]: " in str(items[1])


def test_row_with_wrong_field_count_and_missing_columns(tmp_path: Path) -> None:
    make_case(tmp_path, "case_a", [1, 2])
    tsv = write_tsv(tmp_path / "mllm_match_eval_full.tsv", [mmvm_row(1, "case_a", [1, 2], answer_id=1)])
    with open(tsv, "a") as f:
        f.write("2\tonly\tthree\n")
    items = list(iter_mmvm(tsv, tmp_path))
    assert isinstance(items[0], Sample)
    assert isinstance(items[1], InvalidSample) and "3 tab-separated fields, the header has 12" in items[1].reason
    write_tsv(tsv, [], header=["index", "question"])
    with pytest.raises(DataFormatError, match="missing column.*pure_question"):
        list(iter_mmvm(tsv, tmp_path))


def test_huge_base64_cells_are_read(tmp_path: Path) -> None:
    make_case(tmp_path, "case_a", [1, 2])
    (s,) = load(tmp_path, [mmvm_row(1, "case_a", [1, 2], answer_id=1, image="QUJD" * 200_000)])
    assert isinstance(s, Sample), s


@pytest.mark.parametrize(
    "cell, cues", [("[1, 5]", ("CL", "RP")), ("[8]", ("OM",)), ("(2, 2, 3)", ("SP", "TM")), ("4", ("SZ",))]
)
def test_parse_match_type(cell: str, cues: tuple[str, ...]) -> None:
    assert parse_match_type(cell) == cues


@pytest.mark.parametrize("cell", ["[]", "[0]", "[True]", "[1.0]", "abc", "[1, 'XX']", "open('x')"])
def test_parse_match_type_rejects(cell: str) -> None:
    with pytest.raises(ValueError, match="match_type"):
        parse_match_type(cell)
