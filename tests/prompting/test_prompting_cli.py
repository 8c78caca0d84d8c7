"""`cvbench render` end to end, on data written in the upstream on-disk formats."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cvbench.imaging.masks import encode_rle, mask_to_polygons
from cvbench.prompting.protocols.mmvm import (
    mmvm_options,
    mmvm_question,
    render_candidate_view,
    render_query_view,
)
from tests.prompting.test_protocol_data import (
    ellipse_mask,
    grid_masks,
    textured_image,
    write_image,
)

HW = (240, 320)


def write_mmvm_dataset(root: Path, n: int = 9) -> Path:
    """<root>/mmvm/mllm_match_eval_full.tsv + match_bench/case_000/ as upstream lays them out."""
    folder = root / "mmvm"
    case = folder / "match_bench" / "case_000"
    rng = np.random.default_rng(0)
    q_img, c_img = textured_image(*HW, seed=1), textured_image(*HW, seed=2)
    q_mask = ellipse_mask(HW, (160, 120), (50, 40))
    c_masks = grid_masks(HW, n, seed=3)
    ids = [int(i) + 1 for i in rng.permutation(n)]
    write_image(case / "FRAME00_ORI.jpg", q_img)
    write_image(case / "FRAME01_ORI.jpg", c_img)
    write_image(case / "FRAME00.jpg", render_query_view(q_img, q_mask))
    write_image(case / "FRAME01_CAND.jpg", render_candidate_view(c_img, c_masks, ids, rng))
    ann = lambda m, i: {"height": HW[0], "width": HW[1], "segmentation": mask_to_polygons(m), "id": i}
    (case / "FRAME00.json").write_text(json.dumps([ann(q_mask, 0)]))
    (case / "FRAME01_CAND.json").write_text(json.dumps([ann(m, i) for m, i in zip(c_masks, ids)]))
    options = mmvm_options(ids)
    answer = next(o.letter for o in options if o.text == str(ids[4]))
    row = {
        "index": "7",
        "question": mmvm_question(options),
        "pure_question": mmvm_question(options).split("\n")[0],
        "choices": "\n".join(o.line for o in options),
        "choices_head": "".join(o.letter for o in options),
        "answer": answer,
        "match_type": "[1, 5]",
        "image_path": repr(["match_bench/case_000/FRAME00.jpg", "match_bench/case_000/FRAME01_CAND.jpg"]),
    }
    with open(folder / "mllm_match_eval_full.tsv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(row), delimiter="\t")
        writer.writeheader()
        writer.writerow(row)
    return folder


def write_crossviewbench_dataset(root: Path) -> Path:
    folder = root / "crossviewbench"
    views = []
    for v in range(2):
        write_image(folder / "images" / f"v{v}.png", textured_image(*HW, seed=20 + v))
        masks = grid_masks(HW, 2, seed=30 + v)
        views.append(
            {
                "view_id": f"cam{v}",
                "image_path": f"images/v{v}.png",
                "objects": [
                    {"mask_rle": encode_rle(m), "bbox_xyxy": [0, 0, 10, 10], "track_id": 10 * v + k}
                    for k, m in enumerate(masks)
                ],
            }
        )
    record = {
        "sample_id": "q5-001",
        "question_type": "Q5",
        "question": "Is <region> the same object as <region>?",
        "options": ["A. Yes", "B. No"],
        "answer": "B",
        "region_refs": [[0, 1], [1, 0]],
        "views": views,
        "dataset": "EgoHumans",
        "scene": "s1",
    }
    (folder / "crossviewbench.jsonl").write_text(json.dumps(record) + "\n")
    return folder


def run_render(data: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CVBENCH_DATA": str(data)}
    return subprocess.run(
        [sys.executable, "-m", "cvbench.cli", "render", "--out", str(out), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_render_mmvm_subset_writes_images_text_and_record(tmp_path: Path):
    write_mmvm_dataset(tmp_path / "data")
    out = tmp_path / "out"
    proc = run_render(tmp_path / "data", out, "--task", "mmvm", "--sample", "7", "--candidates", "4", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["prompt.json", "prompt.txt", "view_0.png", "view_1.png"]
    record = json.loads((out / "prompt.json").read_text())
    assert record["setting"] == "4" and len(record["options"]) == 5
    assert (out / "prompt.txt").read_text() == record["text"]
    assert record["text"].endswith("E. None of the above choices are correct\n")
    assert record["protocol"]["cues"] == ["CL", "RP"] and record["protocol"]["seed"] == 3
    gt_text = dict(record["options"])[record["answer"]]
    assert record["protocol"]["id_map"][gt_text] == record["protocol"]["ground_truth_region_id"]
    img = np.asarray(Image.open(out / "view_0.png"))
    assert img.shape == (*HW, 3) and (img == (0, 255, 255)).all(axis=2).sum() > 50
    import hashlib

    assert hashlib.sha256((out / "view_1.png").read_bytes()).hexdigest() == record["images"][1]["sha256"]
    # the identity is the pixels and the encoding, not the encoder's bytes
    from cvbench.prompting.encoding import pixel_identity

    pixels = np.asarray(Image.open(out / "view_1.png").convert("RGB"))
    assert pixel_identity(pixels, {"format": "png"}) == record["images"][1]["identity"]


def test_render_prerendered_passes_shipped_bytes(tmp_path: Path):
    folder = write_mmvm_dataset(tmp_path / "data")
    out = tmp_path / "out"
    proc = run_render(tmp_path / "data", out, "--task", "mmvm", "--sample", "7", "--mode", "prerendered")
    assert proc.returncode == 0, proc.stderr
    case = folder / "match_bench" / "case_000"
    assert (out / "view_0.jpg").read_bytes() == (case / "FRAME00.jpg").read_bytes()
    assert (out / "view_1.jpg").read_bytes() == (case / "FRAME01_CAND.jpg").read_bytes()


def test_render_prerendered_subset_fails_clearly(tmp_path: Path):
    write_mmvm_dataset(tmp_path / "data")
    proc = run_render(
        tmp_path / "data",
        tmp_path / "out",
        "--task",
        "mmvm",
        "--sample",
        "7",
        "--mode",
        "prerendered",
        "--candidates",
        "4",
    )
    assert proc.returncode == 1
    assert "prerendered mode can only show" in proc.stderr and "Traceback" not in proc.stderr


def test_render_native_writes_originals_and_masks(tmp_path: Path):
    write_crossviewbench_dataset(tmp_path / "data")
    out = tmp_path / "out"
    proc = run_render(tmp_path / "data", out, "--task", "crossviewbench", "--sample", "q5-001", "--mode", "native")
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in out.iterdir())
    assert {
        "mask_0_0.png",
        "mask_0_1.png",
        "mask_1_0.png",
        "mask_1_1.png",
        "original_0.png",
        "original_1.png",
        "view_0.png",
        "view_1.png",
        "prompt.txt",
        "prompt.json",
    } == set(names)
    assert (out / "prompt.txt").read_text() == "Is <region> the same object as <region>?\n\nA. Yes\nB. No"
    mask = np.asarray(Image.open(out / "mask_0_1.png"))
    assert mask.shape == HW and set(np.unique(mask)) == {0, 255}
    record = json.loads((out / "prompt.json").read_text())
    assert record["native"]["refs"] == [[0, 1], [1, 0]] and record["protocol"]["task_type"] == "Q5"


def test_render_crossviewbench_overlay_single_image(tmp_path: Path):
    write_crossviewbench_dataset(tmp_path / "data")
    out = tmp_path / "out"
    proc = run_render(
        tmp_path / "data", out, "--task", "crossviewbench", "--sample", "q5-001", "--single-image", "--style", "contour"
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["prompt.json", "prompt.txt", "view_0.png"]
    text = (out / "prompt.txt").read_text()
    assert text.startswith("The image shows 2 views stacked vertically")
    assert "Is the object outlined in red the same object as the object outlined in blue?" in text


def test_render_unknown_sample_is_a_clear_error(tmp_path: Path):
    write_crossviewbench_dataset(tmp_path / "data")
    proc = run_render(tmp_path / "data", tmp_path / "out", "--task", "crossviewbench", "--sample", "nope")
    assert proc.returncode == 1 and "no sample with id 'nope'" in proc.stderr


@pytest.mark.parametrize("args, message", [(["--candidates", "five"], "setting"), (["--max-side", "2"], "max-side")])
def test_render_bad_options_are_clear_errors(tmp_path: Path, args: list[str], message: str):
    write_mmvm_dataset(tmp_path / "data")
    proc = run_render(tmp_path / "data", tmp_path / "out", "--task", "mmvm", "--sample", "7", *args)
    assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr


def test_render_for_a_model_writes_what_its_provider_receives(tmp_path: Path):
    # issue 16 item 2: the saved images are the model's real input (the provider's image contract applied)
    write_crossviewbench_dataset(tmp_path / "data")
    out, plain = tmp_path / "out", tmp_path / "plain"
    proc = run_render(
        tmp_path / "data",
        out,
        "--task",
        "crossviewbench",
        "--sample",
        "q5-001",
        "--model",
        "claude-sonnet",
        "--max-side",
        "40",
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["prompt.json", "prompt.txt", "view_0.jpg", "view_1.jpg"]
    assert max(Image.open(out / "view_0.jpg").size) == 40  # JPEG, within the user's smaller size
    assert run_render(tmp_path / "data", plain, "--task", "crossviewbench", "--sample", "q5-001").returncode == 0
    assert sorted(p.name for p in plain.iterdir())[-1] == "view_1.png"  # no model: lossless PNG, full size
