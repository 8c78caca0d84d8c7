"""Native-region adapters fed by the real prompt builder (cvbench.prompting.build, native mode).

Checks that what `build_prompt` produces for a native-region model is exactly what the
CrossViewer and CoLVA input builders need: MMVM native prompts carry the rendered overlays in
`Prompt.images` and the originals + masks in `Prompt.native`; CrossViewBench native prompts
keep `<region>` placeholders followed by the option lines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cvbench.core.types import (
    Capabilities,
    GenerationConfig,
    ImageRef,
    Option,
    Region,
    RegionRef,
    Request,
    Sample,
    SourceLocation,
    View,
)
from cvbench.imaging.masks import encode_rle
from cvbench.model_adapters.colva import VPT_CONTEXT, build_colva_inputs
from cvbench.model_adapters.crossviewer import REGION_TOKEN, build_crossviewer_batch, question_of
from cvbench.prompting.build import PromptSettings, build_prompt

NATIVE = Capabilities(max_images=None, native_regions=True, option_logprobs=False, system_prompt=False)


def save_image(path: Path, h: int, w: int, seed: int) -> ImageRef:
    pixels = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return ImageRef(path)


def square(x: float, y: float, s: float) -> tuple[float, ...]:
    return (x, y, x + s, y, x + s, y + s, x, y + s)


def mmvm_sample(tmp_path: Path, n: int) -> Sample:
    query = View("FRAME00", save_image(tmp_path / "q.png", 80, 120, 1), (Region("0", polygons=(square(10, 10, 20),)),))
    ids = [str(i) for i in np.random.default_rng(2).permutation(np.arange(1, n + 1))]
    regions = tuple(Region(i, polygons=(square(4 + 9 * k % 100, 5 + 12 * (k // 11), 7),)) for k, i in enumerate(ids))
    cand = View("FRAME01", save_image(tmp_path / "c.png", 90, 110, 3), regions)
    shown = sorted(ids, key=int)[:25]
    options = tuple(Option(chr(65 + k), i) for k, i in enumerate(shown))
    options += (Option(chr(65 + len(shown)), "None of the above choices are correct"),)
    return Sample(
        sample_id="case_7",
        benchmark="mmvm",
        question="pure question",
        options=options,
        answer="B",
        views=(query, cand),
        cluster="case_7",
        source=SourceLocation("mmvm.tsv", 2),
        cues=("CL",),
        candidate_count=n,
    )


def test_mmvm_native_prompt_feeds_colva(tmp_path: Path) -> None:
    sample = mmvm_sample(tmp_path, 6)
    prompt = build_prompt(sample, PromptSettings(), NATIVE)
    assert prompt.mode == "native" and prompt.native is not None
    assert len(prompt.images) == 2  # the overlays, as CoLVA's tiles need them
    inputs = build_colva_inputs(prompt)
    assert inputs["candidate_ids"] == ["1", "2", "3", "4", "5", "6"]
    assert inputs["ot_pixel_values"].shape == (2, 3, 1024, 1024)
    assert [v.shape[0] for v in inputs["ot_visual_prompts"]] == [1, 6]
    # the visual prompts follow the ids: object-k's mask is the region whose drawn id is k
    cand_view = prompt.native.views[1]
    for k, index in enumerate(prompt.native.candidate_order):
        assert cand_view.region_ids[index] == str(k + 1)
        _, xs = np.nonzero(cand_view.masks[index])
        region = next(r for r in sample.views[1].regions if r.region_id == str(k + 1))
        assert xs.min() == pytest.approx(region.polygons[0][0], abs=1)
    assert inputs["question"].endswith(prompt.text)
    assert f"<object-6>{VPT_CONTEXT}.\n" in inputs["question"]


def test_mmvm_native_prompt_with_a_candidate_subset_feeds_colva(tmp_path: Path) -> None:
    sample = mmvm_sample(tmp_path, 12)
    prompt = build_prompt(sample, PromptSettings(seed=5), NATIVE, setting="4")
    inputs = build_colva_inputs(prompt)
    assert inputs["candidate_ids"] == ["1", "2", "3", "4"]
    assert inputs["ot_visual_prompts"][1].shape[0] == 4
    assert len(prompt.options) == 5


def crossviewbench_sample(tmp_path: Path) -> Sample:
    masks = []
    for k in range(3):
        m = np.zeros((50, 70), bool)
        m[5 + 10 * k : 12 + 10 * k, 5:40] = True
        masks.append(m)
    view0 = View(
        "cam0",
        save_image(tmp_path / "v0.png", 50, 70, 5),
        tuple(Region(str(k), rle=encode_rle(m)) for k, m in enumerate(masks)),
    )
    view1 = View("cam1", save_image(tmp_path / "v1.png", 50, 70, 6), (Region("0", rle=encode_rle(masks[1])),))
    options = (Option("A", "yes"), Option("B", "no"))
    return Sample(
        sample_id="cv-1",
        benchmark="crossviewbench",
        question="Is <region> the same object as <region>?",
        options=options,
        answer="A",
        views=(view0, view1),
        cluster="scene-1",
        source=SourceLocation("cvb.jsonl", 1),
        task_type="Q5",
        category="correspondence",
        region_refs=(RegionRef(0, 2), RegionRef(1, 0)),
    )


def test_crossviewbench_native_prompt_feeds_crossviewer(tmp_path: Path) -> None:
    prompt = build_prompt(crossviewbench_sample(tmp_path), PromptSettings(), NATIVE)
    assert prompt.mode == "native" and prompt.native is not None
    request = Request("crossviewer", prompt.prompt, GenerationConfig())
    question = question_of(request)
    assert question == "Is <region> the same object as <region>?"
    batch = build_crossviewer_batch(prompt.native, question, prompt.options)
    assert [m.shape for m in batch["masks"]] == [(4, 50, 70), (4, 50, 70)]
    assert batch["question"].startswith("Is [" + REGION_TOKEN)
    assert batch["question"].endswith("]?\n\nA. yes\nB. no")
    assert batch["region_refs"] == [(0, 2), (1, 0)]
