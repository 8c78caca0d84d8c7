"""The bad-input catalogue (docs/bad-inputs.md): one broken item per row, all in one data root
beside good samples. For each row:

- `cvbench run` writes an `invalid` record for that item whose reason names the problem (or,
  for the rows that are warnings by design, answers it), and answers every good sample;
- `cvbench data verify` exits 1 and lists every item, each named by file:line and sample id.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cvbench.imaging.masks import encode_rle
from tests.reliability.conftest import cli_env, cvbench
from tests.tasks.builders import (
    cvb_record,
    make_case,
    mmvm_row,
    write_image,
    write_jsonl,
    write_tsv,
)

IMAGES = ["images/a.png", "images/b.png"]


@dataclass(frozen=True)
class Row:
    case: str  # the catalogue row (docs/bad-inputs.md)
    task: str  # crossviewbench | mmvm
    record: str  # the sample id part of the run's record_id
    line: int  # line in the data file (TSV: the row's first line; header is line 1)
    message: str  # a fragment of the reason the user sees
    warning: bool = False  # a warning by design: the sample is still evaluated


CVB_ROWS = (
    Row(
        "missing image",
        "crossviewbench",
        "missing-image",
        3,
        "'views[1].image_path' 'images/nope.png': file not found (looked in ",
    ),
    Row("corrupt image", "crossviewbench", "corrupt-image", 4, "images/corrupt.png: not a readable image"),
    Row(
        "truncated JSONL line",
        "crossviewbench",
        "invalid@crossviewbench.jsonl:5",
        5,
        "truncated JSON line: it ends inside a value (column 63: Unterminated string starting at)",
    ),
    Row(
        "invalid JSON",
        "crossviewbench",
        "invalid@crossviewbench.jsonl:6",
        6,
        "invalid JSON at column 2: Expecting property name enclosed in double quotes",
    ),
    Row(
        "wrong mask size",
        "crossviewbench",
        "wrong-mask-size",
        7,
        "mask size [24, 32] differs from image size [48, 64]; resized",
        warning=True,
    ),
    Row(
        "invalid RLE (bbox present)",
        "crossviewbench",
        "invalid-rle",
        8,
        "invalid RLE (compressed RLE has an invalid character '!'); used bbox_xyxy",
        warning=True,
    ),
    Row(
        "invalid RLE, no bbox",
        "crossviewbench",
        "invalid-rle-no-bbox",
        9,
        "region t0a: invalid RLE (compressed RLE has an invalid character '!') and no bbox_xyxy to fall back to",
    ),
    Row(
        "object ref out of range",
        "crossviewbench",
        "ref-out-of-range",
        10,
        "'region_refs[0]': object index 7 out of range (view 0 has 2 objects)",
    ),
    Row(
        "view ref out of range",
        "crossviewbench",
        "view-out-of-range",
        11,
        "'region_refs[0]': view index 5 out of range (the sample has 2 views)",
    ),
    Row(
        "duplicate id",
        "crossviewbench",
        "invalid@crossviewbench.jsonl:12",
        12,
        "duplicate sample_id 'good-1' (first used at line 1)",
    ),
    Row(
        "answer not among options",
        "crossviewbench",
        "answer-not-in-options",
        13,
        "'answer' 'E' is not among the options: neither a letter A-B, an option's text, nor an option number 1-2",
    ),
    Row(
        "<region> count mismatch",
        "crossviewbench",
        "region-count-mismatch",
        14,
        "'question' has 2 <region> placeholder(s) but 'region_refs' has 1 entries",
    ),
    Row(
        "path escaping the data root (..)",
        "crossviewbench",
        "path-escape",
        15,
        "'views[1].image_path': path '../../../../etc/passwd' escapes the data folder ",
    ),
    Row(
        "absolute path",
        "crossviewbench",
        "absolute-path",
        16,
        "'views[1].image_path': path '/etc/passwd' escapes the data folder ",
    ),
    Row(
        "decompression bomb (PNG header 100000x100000)",
        "crossviewbench",
        "decompression-bomb",
        17,
        "images/bomb.png: refused to decode",
    ),
    Row(
        "large image (9000x9000 header, over cvbench's 64 MP limit)",
        "crossviewbench",
        "large-image",
        18,
        "refused to decode a 9000x9000 image (over 64,000,000 pixels; likely a decompression bomb)",
    ),
    Row(
        "unknown task type",
        "crossviewbench",
        "unknown-task-type",
        19,
        "'question_type' 'Q99' is not a CrossViewBench task type (Q1..Q17)",
    ),
    Row("fewer than 2 views", "crossviewbench", "one-view", 20, "'views' must be a list of at least 2 views"),
    Row(
        "line is not a JSON object",
        "crossviewbench",
        "invalid@crossviewbench.jsonl:21",
        21,
        "line holds a JSON list, not an object",
    ),
    Row("missing answer", "crossviewbench", "no-answer", 22, "missing 'answer'"),
    Row("non-UTF-8 line", "crossviewbench", "invalid@crossviewbench.jsonl:23", 23, "line is not valid UTF-8"),
    Row(
        "truncated JPEG",
        "crossviewbench",
        "truncated-jpeg",
        25,
        "images/truncated.jpg: not a readable image (image file is truncated",
    ),
    Row(
        "symlink escaping the data root",
        "crossviewbench",
        "symlink-escape",
        26,
        "'views[1].image_path': path 'images/outside.png' is a symlink to ",
    ),
    Row(
        "RLE size mismatch",
        "crossviewbench",
        "rle-size-mismatch",
        27,
        "region t0a: invalid RLE (compressed RLE runs sum to 768, expected H*W = 3072) and no bbox_xyxy "
        "to fall back to",
    ),
    Row(
        "very long line",
        "crossviewbench",
        "invalid@crossviewbench.jsonl:28",
        28,
        "bytes long, over the 1,048,576-byte line bound; not read",
    ),
)
MMVM_ROWS = (
    Row(
        "TSV match_type not a list",
        "mmvm",
        "1",
        10,
        "'match_type' 'color and position' is not a Python list of cue numbers 1-8",
    ),
    Row(
        "TSV match_type unknown cue",
        "mmvm",
        "2",
        18,
        "'match_type' '[1, 9]': 9 is not a known cue (1-8: 1=CL, 2=SP, 3=TM, 4=SZ, 5=RP, 6=OO, 7=BR, 8=OM)",
    ),
    Row(
        "TSV match_type code (never evaluated)",
        "mmvm",
        "3",
        26,
        "'match_type' \"__import__('os').system('touch PWNED')\" is not a Python list of cue numbers 1-8",
    ),
    Row("TSV match_type empty list", "mmvm", "4", 34, "'match_type' '[]' is not a non-empty list of cue numbers 1-8"),
    Row("TSV answer not an option letter", "mmvm", "5", 42, "'answer' 'Q' is not one of the option letters A, B, C, D"),
    Row(
        "TSV duplicate index",
        "mmvm",
        "invalid@mllm_match_eval_full.tsv:50",
        50,
        "duplicate index '0' (first used at line 2)",
    ),
    Row(
        "TSV case folder missing",
        "mmvm",
        "7",
        58,
        "'image_path[0]' 'match_bench/case_nowhere/FRAME00.jpg': file not found",
    ),
    Row(
        "TSV path escaping the data root",
        "mmvm",
        "8",
        66,
        "'image_path[0]': path '../../etc/FRAME00.jpg' escapes the data folder ",
    ),
    Row(
        "TSV non-UTF-8 data row", "mmvm", "invalid@mllm_match_eval_full.tsv:82", 82, "line is not valid UTF-8 (byte 1)"
    ),
    Row(
        "TSV very long row",
        "mmvm",
        "invalid@mllm_match_eval_full.tsv:90",
        90,
        "bytes long, over the 1,048,576-byte line bound; not read",
    ),
    Row("TSV symlink escaping the data root", "mmvm", "12", 98, "path 'case_sym/FRAME00_ORI.jpg' is a symlink to "),
)
ROWS = CVB_ROWS + MMVM_ROWS
GOOD = {"crossviewbench": ["good-1", "good-2", "good-3", "good-4"], "mmvm": ["0", "9", "13"]}
MAX_LINE = 1_048_576  # $CVBENCH_MAX_LINE_BYTES for the catalogue run; the long lines are ~3 MB
OUTSIDE_BYTES = b"OUTSIDE-THE-DATA-ROOT"  # planted in the files the symlinks point to


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width x height pixels (the data would be tiny): a bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def write_crossviewbench(folder: Path) -> None:
    write_image(folder / IMAGES[0], seed=1)
    write_image(folder / IMAGES[1], seed=2)
    truncated = write_image(folder / "images" / "truncated.jpg", seed=3)
    truncated.write_bytes(truncated.read_bytes()[:-400])
    outside = write_image(folder.parent.parent / "outside" / "secret.png", seed=4)
    outside.write_bytes(outside.read_bytes() + OUTSIDE_BYTES)  # still a valid PNG, now recognisable
    (folder / "images" / "outside.png").symlink_to(outside)
    (folder / "images" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    png_header_only(folder / "images" / "bomb.png", 100_000, 100_000)
    png_header_only(folder / "images" / "large.png", 9_000, 9_000)

    def other_image(sid: str, path: str) -> dict[str, Any]:
        record = cvb_record(sid, IMAGES)
        record["views"][1]["image_path"] = path
        return record

    small = np.zeros((24, 32), bool)
    small[2:10, 2:10] = True
    wrong_size = cvb_record("wrong-mask-size", IMAGES)
    wrong_size["views"][0]["objects"][0]["mask_rle"] = encode_rle(small)
    bad_rle = cvb_record("invalid-rle", IMAGES)
    bad_rle["views"][0]["objects"][0]["mask_rle"]["counts"] = "!!garbage"
    bad_rle_only = cvb_record("invalid-rle-no-bbox", IMAGES)
    bad_rle_only["views"][0]["objects"][0]["mask_rle"]["counts"] = "!!garbage"
    del bad_rle_only["views"][0]["objects"][0]["bbox_xyxy"]
    size_mismatch = cvb_record("rle-size-mismatch", IMAGES)
    size_mismatch["views"][0]["objects"][0]["mask_rle"] = {**encode_rle(small), "size": [48, 64]}
    del size_mismatch["views"][0]["objects"][0]["bbox_xyxy"]
    long_line = cvb_record("long-line", IMAGES, question="Is <region> " + "very " * 600_000 + "far?")
    no_answer = cvb_record("no-answer", IMAGES)
    del no_answer["answer"]
    lines: list[dict[str, Any] | str] = [
        cvb_record("good-1", IMAGES),
        cvb_record("good-2", IMAGES),
        other_image("missing-image", "images/nope.png"),
        other_image("corrupt-image", "images/corrupt.png"),
        '{"sample_id": "truncated", "question_type": "Q1", "question": "Which',
        "{sample_id: invalid-json}",
        wrong_size,
        bad_rle,
        bad_rle_only,
        cvb_record("ref-out-of-range", IMAGES, region_refs=[[0, 7]]),
        cvb_record("view-out-of-range", IMAGES, region_refs=[[5, 0]]),
        cvb_record("good-1", IMAGES),
        cvb_record("answer-not-in-options", IMAGES, answer="E"),
        cvb_record("region-count-mismatch", IMAGES, question="Is <region> the same as <region>?"),
        other_image("path-escape", "../../../../etc/passwd"),
        other_image("absolute-path", "/etc/passwd"),
        other_image("decompression-bomb", "images/bomb.png"),
        other_image("large-image", "images/large.png"),
        cvb_record("unknown-task-type", IMAGES, question_type="Q99"),
        cvb_record("one-view", IMAGES[:1]),
        '["not", "an", "object"]',
        no_answer,
        "@NONUTF8@",
        cvb_record("good-3", IMAGES),
        other_image("truncated-jpeg", "images/truncated.jpg"),
        other_image("symlink-escape", "images/outside.png"),
        size_mismatch,
        long_line,
        cvb_record("good-4", IMAGES),
    ]
    path = write_jsonl(folder / "crossviewbench.jsonl", lines)
    path.write_bytes(path.read_bytes().replace(b"@NONUTF8@", b'{"sample_id": "caf\xe9"}'))


def write_mmvm(folder: Path) -> None:
    for case in ("case_good", "case_a", "case_b", "case_c", "case_d", "case_e", "case_f", "case_sym"):
        make_case(folder, case, [3, 1, 2])
    outside = folder.parent.parent / "outside" / "FRAME00_ORI.jpg"
    outside.parent.mkdir(parents=True, exist_ok=True)
    outside.write_bytes((folder / "match_bench" / "case_sym" / "FRAME00_ORI.jpg").read_bytes() + OUTSIDE_BYTES)
    (folder / "match_bench" / "case_sym" / "FRAME00_ORI.jpg").unlink()
    (folder / "match_bench" / "case_sym" / "FRAME00_ORI.jpg").symlink_to(outside)
    rows = [
        mmvm_row(0, "case_good", [3, 1, 2], 1),
        mmvm_row(1, "case_a", [3, 1, 2], 1, match_type="color and position"),
        mmvm_row(2, "case_b", [3, 1, 2], 1, match_type="[1, 9]"),
        mmvm_row(3, "case_c", [3, 1, 2], 1, match_type="__import__('os').system('touch PWNED')"),
        mmvm_row(4, "case_d", [3, 1, 2], 1, match_type="[]"),
        mmvm_row(5, "case_e", [3, 1, 2], 1, answer="Q"),
        mmvm_row(0, "case_f", [3, 1, 2], 2),
        mmvm_row(7, "case_nowhere", [3, 1, 2], 1),
        mmvm_row(
            8, "case_good", [3, 1, 2], 1, image_path=repr(["../../etc/FRAME00.jpg", "../../etc/FRAME01_CAND.jpg"])
        ),
        mmvm_row(9, "case_good", [3, 1, 2], 2),
        mmvm_row("@NONUTF8@", "case_good", [3, 1, 2], 1),
        mmvm_row("L" * 3_000_000, "case_good", [3, 1, 2], 1),
        mmvm_row(12, "case_sym", [3, 1, 2], 1),
        mmvm_row(13, "case_good", [3, 1, 2], 3),
    ]
    path = write_tsv(folder / "mllm_match_eval_full.tsv", rows)
    path.write_bytes(path.read_bytes().replace(b"@NONUTF8@", b"1\xe90"))


@dataclass(frozen=True)
class Outcome:
    root: Path
    records: dict[str, dict[str, Any]]  # record_id -> record
    verify: dict[str, Any]
    verify_rc: int
    verify_text: str
    run_stdout: str


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    tmp = tmp_path_factory.mktemp("bad-inputs")
    root = tmp / "data"
    write_crossviewbench(root / "crossviewbench")
    write_mmvm(root / "mmvm")
    env = cli_env(tmp, CVBENCH_MAX_LINE_BYTES=str(MAX_LINE))
    run = cvbench(
        [
            "run",
            "--model",
            "random",
            "--task",
            "crossviewbench,mmvm",
            "--data-dir",
            str(root),
            "--out",
            str(tmp / "run"),
            "--no-cache",
            "--no-progress",
            "--save-images",
            "all",
        ],
        env,
        tmp,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    records = {}
    for line in (tmp / "run" / "samples.jsonl").read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        assert data["record_id"] not in records, f"record {data['record_id']} written twice"
        records[data["record_id"]] = data
    as_json = cvbench(["data", "verify", str(root), "--json"], env, tmp)
    text = cvbench(["data", "verify", str(root)], env, tmp)
    assert as_json.returncode == text.returncode
    return Outcome(
        root,
        records,
        json.loads(as_json.stdout),
        as_json.returncode,
        text.stdout + text.stderr,
        run.stdout + run.stderr,
    )


def test_catalogue_matches_the_docs() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "bad-inputs.md").read_text(encoding="utf-8").replace("`", "")
    for row in ROWS:
        assert f"| {row.case} |" in doc, f"docs/bad-inputs.md has no row for {row.case!r}"
        assert row.message.strip() in doc.replace("\\|", "|"), f"docs/bad-inputs.md lacks the message of {row.case!r}"
    for level in RUN_LEVEL:
        assert f"| {level.case} |" in doc and level.message in doc, f"docs/bad-inputs.md: no row for {level.case!r}"


@pytest.mark.parametrize("row", ROWS, ids=[r.case for r in ROWS])
def test_run_marks_the_item_and_goes_on(outcome: Outcome, row: Row) -> None:
    record = outcome.records.get(f"{row.task}@all/{row.record}")
    assert record is not None, f"no record for {row.case}; records: {sorted(outcome.records)}"
    if row.warning:
        assert record["parse_status"] == "parsed" and record["invalid"] is None
        return
    assert record["parse_status"] == "invalid" and record["correct"] is False and record["parsed"] is None
    assert record["response"] is None and record["error"] is None
    assert row.message in record["invalid"], record["invalid"]
    assert record["source"].endswith(f":{row.line}") or f":{row.line} " in record["source"], record["source"]


def test_good_samples_are_all_answered(outcome: Outcome) -> None:
    for task, ids in GOOD.items():
        for sid in ids:
            record = outcome.records[f"{task}@all/{sid}"]
            assert record["parse_status"] == "parsed" and record["parsed"], record
    expected = len(ROWS) + sum(len(v) for v in GOOD.values())
    assert len(outcome.records) == expected
    assert not (outcome.root / "mmvm" / "PWNED").exists() and not Path("PWNED").exists()


def test_nothing_outside_the_data_root_was_read_into_the_run(outcome: Outcome) -> None:
    """The files the symlinks point to carry a marker; no file of the run holds it."""
    run_dir = outcome.root.parent / "run"
    assert list(run_dir.rglob("*.png")) or list(run_dir.rglob("*.jpg")), "the run saved no images at all"
    carriers = [p for p in run_dir.rglob("*") if p.is_file() and OUTSIDE_BYTES in p.read_bytes()]
    assert not carriers, carriers


@pytest.mark.parametrize("row", ROWS, ids=[r.case for r in ROWS])
def test_verify_lists_the_item(outcome: Outcome, row: Row) -> None:
    assert outcome.verify_rc == 1 and outcome.verify["passed"] is False
    file = "crossviewbench.jsonl" if row.task == "crossviewbench" else "mllm_match_eval_full.tsv"
    if row.warning:
        hits = [w for w in outcome.verify["warning_examples"] if f"{file}:{row.line} [{row.record}]" in w]
        assert hits and row.message in hits[0], outcome.verify["warning_examples"]
        return
    hits = [
        p
        for p in outcome.verify["problems"]
        if p["where"].endswith(f"{file}:{row.line}") or f"{file}:{row.line} (" in p["where"]
    ]
    assert len(hits) == 1, (row.case, outcome.verify["problems"])
    assert row.message in hits[0]["reason"], hits[0]["reason"]
    assert f"{file}:{row.line}" in outcome.verify_text  # the human-readable listing names it too


def test_verify_counts(outcome: Outcome) -> None:
    bad = [r for r in ROWS if not r.warning]
    assert outcome.verify["bad"] == len(bad) == len(outcome.verify["problems"])
    assert outcome.verify["warnings"] == sum(r.warning for r in ROWS)


# ------------------------------------------------------------------------------ run-level bad inputs


@dataclass(frozen=True)
class RunLevel:
    case: str
    message: str  # a fragment of the one-line `Error: ...` the user sees


RUN_LEVEL = (
    RunLevel(
        "corrupt response cache",
        "not a usable cvbench response cache (file is not a database); move it away, "
        "pass another --cache, or use --no-cache",
    ),
    RunLevel("corrupt config.json in the run directory", "config.json:1: invalid JSON"),
    RunLevel(
        "invalid line in the middle of samples.jsonl",
        "samples.jsonl:1: invalid JSON in the middle of the file; move the run directory away or repair that line",
    ),
    RunLevel("bad retry setting in the environment", "$CVBENCH_TIMEOUT_S='soon': expected a number"),
    RunLevel("unparseable .env line", ".env:2: expected NAME=value"),
    RunLevel("empty JSONL", "crossviewbench.jsonl: no samples (the file is empty or holds only blank lines)"),
    RunLevel("header-only TSV", "mllm_match_eval_full.tsv: no samples (a header row and no data rows)"),
)


def _run_level_setup(case: str, tmp: Path) -> tuple[list[str], dict[str, str]]:
    """Extra arguments and environment for one run-level case (the files are written here)."""
    out = tmp / "run"
    if case == "corrupt response cache":
        (tmp / "bad.db").write_bytes(b"this is not an SQLite database, just text" * 10)
        return ["--cache", str(tmp / "bad.db")], {}
    if case == "corrupt config.json in the run directory":
        out.mkdir()
        (out / "config.json").write_text("{not json", encoding="utf-8")
        return [], {}
    if case == "invalid line in the middle of samples.jsonl":
        return [], {}  # the test runs once, breaks line 1, and runs again
    if case == "bad retry setting in the environment":
        return [], {"CVBENCH_TIMEOUT_S": "soon"}
    if case == "unparseable .env line":
        (tmp / ".env").write_text("OK_NAME=1\nthis line has no equals sign\n", encoding="utf-8")
        return ["--model", "openai-compatible:x", "--base-url", "http://127.0.0.1:9/v1"], {}
    if case == "empty JSONL":
        (tmp / "data" / "crossviewbench" / "crossviewbench.jsonl").write_bytes(b"\n\n")
        return [], {}
    if case == "header-only TSV":
        write_tsv(tmp / "data" / "mmvm" / "mllm_match_eval_full.tsv", [])
        return ["--task", "mmvm"], {}  # the later --task wins
    raise AssertionError(case)


@pytest.mark.parametrize("row", RUN_LEVEL, ids=[r.case for r in RUN_LEVEL])
def test_run_level_bad_input_is_one_clear_error(row: RunLevel, tmp_path: Path) -> None:
    folder = tmp_path / "data" / "crossviewbench"
    write_image(folder / IMAGES[0], seed=1)
    write_image(folder / IMAGES[1], seed=2)
    write_jsonl(folder / "crossviewbench.jsonl", [cvb_record(f"s{i}", IMAGES) for i in range(3)])
    extra_args, extra_env = _run_level_setup(row.case, tmp_path)
    args = [
        "run",
        "--model",
        "random",
        "--task",
        "crossviewbench",
        "--data-dir",
        str(tmp_path / "data"),
        "--out",
        str(tmp_path / "run"),
        "--no-progress",
        *extra_args,
    ]
    if "--cache" not in extra_args:
        args.append("--no-cache")
    env = cli_env(tmp_path, **extra_env)
    if row.case == "invalid line in the middle of samples.jsonl":
        first = cvbench(args, env, tmp_path)
        assert first.returncode == 0, first.stderr[-2000:]
        samples = tmp_path / "run" / "samples.jsonl"
        lines = samples.read_text(encoding="utf-8").splitlines()
        samples.write_text("\n".join(["{broken", *lines[1:]]) + "\n", encoding="utf-8")
    result = cvbench(args, env, tmp_path)
    assert result.returncode == 1, (result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.startswith("Error: ") and row.message in result.stderr, result.stderr
    if row.case in ("empty JSONL", "header-only TSV"):  # never a finished run, and verify says so too
        results = tmp_path / "run" / "results.json"
        assert not results.exists() or json.loads(results.read_text())["status"] != "complete"
        verify = cvbench(["data", "verify", str(tmp_path / "data"), "--json"], env, tmp_path)
        file, reason = row.message.split(": ", 1)
        hits = [p for p in json.loads(verify.stdout)["problems"] if p["where"].endswith(file)]
        assert verify.returncode == 1 and hits and hits[0]["reason"] == reason, verify.stdout[-2000:]
