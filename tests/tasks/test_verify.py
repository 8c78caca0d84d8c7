from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from cvbench.cli import cli
from cvbench.imaging.masks import encode_rle
from cvbench.tasks.verify import verify_path
from tests.tasks.builders import H, W, box_mask, cvb_record, make_case, mmvm_row, write_image, write_jsonl, write_tsv

IMGS = ["img/0.png", "img/1.png"]


def good_cvb(folder: Path) -> Path:
    write_image(folder / "img" / "0.png", seed=0)
    write_image(folder / "img" / "1.png", seed=1)
    recs = [cvb_record(f"q{i}", IMGS, question_type=qt) for i, qt in enumerate(["Q1", "Q1", "Q7", "Q17"])]
    return write_jsonl(folder / "crossviewbench.jsonl", recs)


def test_clean_dataset_passes_with_counts(tmp_path: Path) -> None:
    good_cvb(tmp_path)
    result = CliRunner().invoke(cli, ["data", "verify", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["passed"] and report["samples"] == 4 and report["ok"] == 4 and report["problems"] == []
    assert report["counts"]["task_type"] == {"Q1": 2, "Q7": 1, "Q17": 1}
    assert report["counts"]["category"] == {"correspondence": 2, "visibility_occlusion": 1, "physical": 1}
    assert report["images_checked"] == 2 and report["masks_checked"] == 16
    assert report["warnings"] == 0


def test_bad_items_are_listed_and_exit_nonzero(tmp_path: Path) -> None:
    good_cvb(tmp_path)
    (tmp_path / "img" / "broken.png").write_bytes(b"\x89PNG not really")
    small = cvb_record("mismatch", IMGS)
    small["views"][0]["objects"][0]["mask_rle"] = encode_rle(box_mask(1, 1, 5, 5, h=H // 2, w=W // 2))
    no_fallback = cvb_record("badrle", IMGS)
    no_fallback["views"][1]["objects"][0] = {"mask_rle": {"size": [H, W], "counts": "!!garbage"}}
    lines = [
        small,  # 5: warning only
        cvb_record("broken", ["img/broken.png", "img/1.png"]),  # 6: image does not decode
        no_fallback,  # 7: mask does not decode
        cvb_record("q0", IMGS),  # 8: duplicate
        cvb_record("refs", IMGS, region_refs=[[0, 9]]),  # 9
    ]
    path = tmp_path / "crossviewbench.jsonl"
    with open(path, "a") as f:
        for rec in lines:
            f.write(json.dumps(rec) + "\n")
    report = verify_path(path)
    assert not report.passed and report.samples == 9 and report.ok == 5
    where = {p.source.line: p.reason for p in report.problems}
    assert sorted(where) == [6, 7, 8, 9]
    assert "not a readable image" in where[6]
    assert "view 1 (cam1) region 0 (id 0): region 0: invalid RLE" in where[7] and "no bbox_xyxy" in where[7]
    assert "duplicate sample_id 'q0' (first used at line 1)" in where[8]
    assert "object index 9 out of range" in where[9]
    assert report.warnings == 1 and "differs from image size" in report.warning_examples[0]
    assert report.warning_examples[0].startswith(f"{path}:5 [mismatch]: view 0 (cam0) region 0 (id t0a)")

    result = CliRunner().invoke(cli, ["data", "verify", str(path)])
    assert result.exit_code == 1
    for line in (6, 7, 8, 9):
        assert f"{path}:{line} [" in result.output
    assert "4 bad item(s)" in result.output and "1 warning(s)" in result.output


def test_mmvm_folder_counts_cues_candidates_buckets_and_warns_on_annotation_size(tmp_path: Path) -> None:
    make_case(tmp_path, "case_a", [1, 2, 3])
    make_case(tmp_path, "case_b", list(range(1, 14)), h=64, w=96, declared_hw=(128, 192), extra_polygons=[[1, 2, 3]])
    make_case(tmp_path, "case_c", [1, 2], skip=["FRAME00.jpg"])
    rows = [
        mmvm_row(1, "case_a", [1, 2, 3], answer_id=2, match_type="[1, 5]"),
        mmvm_row(2, "case_b", list(range(1, 14)), answer_id=13, match_type="[2]"),
        mmvm_row(3, "case_a", [1, 2, 3], answer_id=2, match_type="[10]"),
        mmvm_row(4, "case_c", [1, 2], answer_id=1),
    ]
    write_tsv(tmp_path / "mllm_match_eval_full.tsv", rows)
    result = CliRunner().invoke(cli, ["data", "verify", str(tmp_path), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["samples"] == 4 and report["ok"] == 2 and report["bad"] == 2
    assert report["counts"]["cue"] == {"CL": 1, "SP": 1, "RP": 1}
    assert report["counts"]["candidates"] == {"3": 1, "13": 1}
    assert report["counts"]["bucket"] == {"2-4": 1, "13+": 1}
    reasons = " | ".join(p["reason"] for p in report["problems"])
    assert "10 is not a known cue" in reasons and "FRAME00.jpg" in reasons and "file not found" in reasons
    # 13 candidates + the query have a declared size twice the image's; one odd polygon is dropped
    assert report["warnings"] == 15
    assert any("dropped 1 polygon(s)" in w for w in report["warning_examples"])
    assert report["warning_kinds"] == {
        "annotation size [N, N] differs from image size [N, N]; rescaled": 14,
        "dropped N polygon(s) of odd length or under N numbers": 1,
    }
    assert any(
        "(case_b) [2]: view 1 (candidates) region 0 (id 1): annotation size [128, 192] differs" in w
        for w in report["warning_examples"]
    )


def test_verify_cli_exit_status_and_usage_errors(tmp_path: Path) -> None:
    good_cvb(tmp_path)
    run = [sys.executable, "-m", "cvbench.cli", "data", "verify"]
    ok = subprocess.run([*run, str(tmp_path / "crossviewbench.jsonl")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "4 samples: 4 ok, 0 bad item(s)" in ok.stdout and "all samples passed" in ok.stdout
    missing = subprocess.run([*run, str(tmp_path / "nope")], capture_output=True, text=True)
    assert missing.returncode == 1 and "no such file or folder" in missing.stderr
    good_cvb(tmp_path / "root" / "crossviewbench")
    root = subprocess.run([*run, str(tmp_path / "root"), "--json"], capture_output=True, text=True)  # a data root
    assert root.returncode == 0, root.stdout
    assert json.loads(root.stdout)["files"] == [str(tmp_path / "root" / "crossviewbench" / "crossviewbench.jsonl")]
    (tmp_path / "x.txt").write_text("")
    wrong = subprocess.run([*run, str(tmp_path / "x.txt")], capture_output=True, text=True)
    assert wrong.returncode == 1 and "expected a CrossViewBench .jsonl or an MMVM .tsv" in wrong.stderr
