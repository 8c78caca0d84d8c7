"""The ablation transform in the prompt builder, on real synthetic samples (docs/ablations.md)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cvbench.core.types import Capabilities, Prompt, PromptImage, Sample
from cvbench.imaging.images import load_image
from cvbench.prompting.ablation import BLANK_RGB, TEXT_ABLATION_STEM, check_run_ablation
from cvbench.prompting.build import PromptError, PromptSettings, build_prompt
from cvbench.prompting.encoding import concat_vertical
from tests.ablation.conftest import load_samples

MULTI = Capabilities()
SINGLE = Capabilities(max_images=1)
NATIVE = Capabilities(native_regions=True)
TASKS = ("synth-crossviewbench", "synth-mmvm")


def pixels(image: PromptImage) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(image.data)).convert("RGB"))


def originals(sample: Sample) -> list[np.ndarray]:
    return [load_image(v.image) for v in sample.views]


def build(sample: Sample, caps: Capabilities, ablation: str | None = None, **kw: object) -> Prompt:
    return build_prompt(sample, PromptSettings(ablation=ablation, **kw), caps)  # type: ignore[arg-type]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("caps", [MULTI, SINGLE], ids=["multi-image", "single-image"])
def test_images_ablation_sends_blanks_of_the_same_sizes_and_the_same_text(
    synth_root: Path, task: str, caps: Capabilities
) -> None:
    for sample in load_samples(task, synth_root)[:6]:
        full, blind = build(sample, caps), build(sample, caps, "images")
        assert [(i.width, i.height, i.mime, i.label) for i in blind.images] == [
            (i.width, i.height, i.mime, i.label) for i in full.images
        ]
        for image in blind.images:
            assert (pixels(image) == np.array(BLANK_RGB, np.uint8)).all()
        assert not all((pixels(i) == np.array(BLANK_RGB, np.uint8)).all() for i in full.images)
        assert (blind.text, blind.options, blind.answer) == (full.text, full.options, full.answer)
        assert blind.protocol["ablation"]["kind"] == "images" and "ablation" not in full.protocol
        assert [r["source"] for r in blind.protocol["images"]] == ["blank"] * len(blind.images)
        assert [r["identity"] for r in blind.protocol["images"]] == [i.sha256 for i in blind.images]
        assert blind.content_digest() != full.content_digest()
        assert build(sample, caps, "images").content_digest() == blind.content_digest()  # deterministic


@pytest.mark.parametrize("task", TASKS)
def test_marks_ablation_shows_the_source_views_without_overlays(synth_root: Path, task: str) -> None:
    marked_somewhere = False
    for sample in load_samples(task, synth_root)[:6]:
        full, unmarked = build(sample, MULTI), build(sample, MULTI, "marks")
        sources = originals(sample)
        assert len(unmarked.images) == len(sources)
        for image, source in zip(unmarked.images, sources):
            assert np.array_equal(pixels(image), source)
        marked_somewhere |= any(not np.array_equal(pixels(i), s) for i, s in zip(full.images, sources))
        assert unmarked.text == full.text and unmarked.answer == full.answer
        assert unmarked.protocol["ablation"]["kind"] == "marks"
    assert marked_somewhere, "the unablated prompts should carry overlay pixels"


def test_marks_ablation_stacks_the_unmarked_views_for_a_single_image_model(synth_root: Path) -> None:
    sample = load_samples("synth-mmvm", synth_root)[0]
    prompt = build(sample, SINGLE, "marks")
    labels = [f"Image {k + 1}" for k in range(len(sample.views))]
    assert len(prompt.images) == 1
    assert np.array_equal(pixels(prompt.images[0]), concat_vertical(originals(sample), labels))


def test_marks_ablation_in_prerendered_mode_replaces_the_shipped_overlays(synth_root: Path) -> None:
    sample = load_samples("synth-mmvm", synth_root)[0]
    assert all(v.prerendered is not None for v in sample.views)
    full = build(sample, MULTI, mode="prerendered")
    unmarked = build(sample, MULTI, "marks", mode="prerendered")
    assert unmarked.text == full.text == sample.prerendered_question
    for image, source in zip(unmarked.images, originals(sample)):
        assert np.array_equal(pixels(image), source)
    blind = build(sample, MULTI, "images", mode="prerendered")
    assert [(i.width, i.height) for i in blind.images] == [(i.width, i.height) for i in full.images]
    assert all((pixels(i) == np.array(BLANK_RGB, np.uint8)).all() for i in blind.images)


def test_text_ablation_keeps_the_marked_images_and_the_options_only(synth_root: Path) -> None:
    for sample in load_samples("synth-crossviewbench", synth_root)[:6]:
        full, options_only = build(sample, MULTI), build(sample, MULTI, "text")
        lines = "\n".join(o.line for o in sample.options)
        assert options_only.text == f"{TEXT_ABLATION_STEM}\n\n{lines}"
        stem = full.text.split("\n\n")[0]  # the question, with its marks named
        assert stem and stem not in options_only.text and stem in full.text
        assert [i.sha256 for i in options_only.images] == [i.sha256 for i in full.images]
        assert options_only.answer == full.answer and options_only.options == full.options


def test_text_ablation_is_refused_for_mmvm_and_in_native_mode(synth_root: Path) -> None:
    mmvm = load_samples("synth-mmvm", synth_root)[0]
    with pytest.raises(PromptError, match="refused for MMVM: its question stem is the same fixed template"):
        build(mmvm, MULTI, "text")
    cvb = load_samples("synth-crossviewbench", synth_root)[0]
    with pytest.raises(PromptError, match=r"refused in native mode: the <region> tokens"):
        build(cvb, NATIVE, "text")
    with pytest.raises(ValueError, match="refused for MMVM"):
        check_run_ablation("text", ["crossviewbench", "mmvm"], "auto", native_regions=False)
    with pytest.raises(ValueError, match="refused in native mode"):
        check_run_ablation("text", ["crossviewbench"], "auto", native_regions=True)
    check_run_ablation("text", ["crossviewbench"], "auto", native_regions=False)
    for kind in ("images", "marks"):
        check_run_ablation(kind, ["crossviewbench", "mmvm"], "auto", native_regions=True)


@pytest.mark.parametrize("task", TASKS)
def test_native_images_ablation_blanks_the_pixels_and_keeps_the_masks(synth_root: Path, task: str) -> None:
    sample = load_samples(task, synth_root)[0]
    full, blind = build(sample, NATIVE), build(sample, NATIVE, "images")
    assert full.native is not None and blind.native is not None
    for fv, bv in zip(full.native.views, blind.native.views):
        assert bv.image.shape == fv.image.shape and (bv.image == np.array(BLANK_RGB, np.uint8)).all()
        assert len(bv.masks) == len(fv.masks) and all(np.array_equal(a, b) for a, b in zip(fv.masks, bv.masks))
    assert all((pixels(i) == np.array(BLANK_RGB, np.uint8)).all() for i in blind.images)
    assert blind.text == full.text and blind.native.refs == full.native.refs


@pytest.mark.parametrize("task", TASKS)
def test_native_marks_ablation_makes_every_mask_the_whole_image(synth_root: Path, task: str) -> None:
    sample = load_samples(task, synth_root)[0]
    full, unmarked = build(sample, NATIVE), build(sample, NATIVE, "marks")
    assert full.native is not None and unmarked.native is not None
    for fv, uv in zip(full.native.views, unmarked.native.views):
        assert np.array_equal(uv.image, fv.image)
        assert len(uv.masks) == len(fv.masks) and all(m.all() and m.shape == fv.image.shape[:2] for m in uv.masks)
    for image, source in zip(unmarked.images, originals(sample)):
        assert np.array_equal(pixels(image), source)  # MMVM's native overlays are gone too
    assert unmarked.content_digest() != full.content_digest()


def test_settings_record_the_ablation_only_when_set() -> None:
    assert "ablation" not in PromptSettings().as_dict()
    assert PromptSettings(ablation="marks").as_dict()["ablation"] == "marks"
    with pytest.raises(ValueError, match="ablation must be one of images, marks, text"):
        PromptSettings(ablation="colour")
