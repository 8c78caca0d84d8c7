from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cvbench.core.types import Capabilities, ImageRef
from cvbench.prompting.build import (
    PromptError,
    PromptSettings,
    build_prompt,
    resolve_mode,
)
from cvbench.prompting.encoding import ImagePolicy
from tests.prompting.test_protocol_data import make_cvb_sample, make_mmvm_sample

MULTI = Capabilities()
SINGLE = Capabilities(max_images=1)
NATIVE = Capabilities(native_regions=True)


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


# ------------------------------------------------------------------------------ mode choice


def test_auto_mode_follows_declared_capabilities(tmp_path: Path):
    sample = make_mmvm_sample(tmp_path)
    assert resolve_mode(sample, PromptSettings(), MULTI) == "overlay"
    assert resolve_mode(sample, PromptSettings(), SINGLE) == "overlay"
    assert resolve_mode(sample, PromptSettings(), NATIVE) == "native"
    assert resolve_mode(sample, PromptSettings(mode="overlay"), NATIVE) == "overlay"


def test_prerendered_only_on_request_and_only_for_mmvm_with_shipped_overlays(tmp_path: Path):
    mmvm = make_mmvm_sample(tmp_path / "a")
    assert resolve_mode(mmvm, PromptSettings(mode="prerendered"), MULTI) == "prerendered"
    bare = make_mmvm_sample(tmp_path / "b", prerendered=False)
    with pytest.raises(PromptError, match="case_001.*pre-rendered"):
        resolve_mode(bare, PromptSettings(mode="prerendered"), MULTI)
    cvb = make_cvb_sample(tmp_path / "c")
    with pytest.raises(PromptError, match="only MMVM"):
        resolve_mode(cvb, PromptSettings(mode="prerendered"), MULTI)


def test_native_mode_needs_a_native_model(tmp_path: Path):
    with pytest.raises(PromptError, match="does not declare native region inputs"):
        resolve_mode(make_cvb_sample(tmp_path), PromptSettings(mode="native"), MULTI)


@pytest.mark.parametrize(
    "kwargs, what",
    [
        ({"mode": "best"}, "mode"),
        ({"style": "glow"}, "style"),
        ({"alpha": 0.0}, "alpha"),
        ({"thickness": 0}, "thickness"),
    ],
)
def test_bad_settings_are_rejected(kwargs, what):
    with pytest.raises(ValueError, match=what):
        PromptSettings(**kwargs)


def test_default_styles_per_benchmark():
    assert PromptSettings().style_for("mmvm") == "upstream"
    assert PromptSettings().style_for("crossviewbench") == "mask"
    assert PromptSettings(style="box").style_for("mmvm") == "box"


# ------------------------------------------------------------------------------ presentation


def test_multi_image_model_gets_each_view_in_order(tmp_path: Path):
    sample = make_cvb_sample(tmp_path, n_views=3)
    prompt = build_prompt(sample, PromptSettings(), MULTI)
    assert prompt.mode == "overlay" and [i.label for i in prompt.images] == ["Image 1", "Image 2", "Image 3"]
    assert prompt.protocol["image_layout"] == "separate"
    assert "stacked" not in prompt.text


def test_single_image_model_gets_one_stacked_image_and_is_told(tmp_path: Path):
    sample = make_cvb_sample(tmp_path, n_views=3)
    prompt = build_prompt(sample, PromptSettings(), SINGLE)
    assert len(prompt.images) == 1
    img = _decode(prompt.images[0].data)
    assert img.shape[1] == 400 and img.shape[0] > 3 * 300
    assert prompt.text.startswith("The image shows 3 views stacked vertically, labelled Image 1 to Image 3")
    assert prompt.text.endswith("\n\nA. Yes\nB. No")
    assert prompt.protocol["image_layout"] == "stacked"
    # the stacked image holds the same pixels as the separately shown views
    separate = build_prompt(sample, PromptSettings(), MULTI)
    first = _decode(separate.images[0].data)
    band_h = 32
    assert (img[band_h : band_h + 300] == first).all()


def test_max_images_limit_above_one_also_stacks_when_exceeded(tmp_path: Path):
    prompt = build_prompt(make_cvb_sample(tmp_path, n_views=3), PromptSettings(), Capabilities(max_images=2))
    assert len(prompt.images) == 1 and prompt.protocol["image_layout"] == "stacked"


def test_resize_policy_is_applied_and_recorded(tmp_path: Path):
    settings = PromptSettings(image=ImagePolicy(format="jpeg", jpeg_quality=80, max_side=200))
    prompt = build_prompt(make_cvb_sample(tmp_path), settings, MULTI)
    assert all(i.mime == "image/jpeg" and max(i.width, i.height) <= 200 for i in prompt.images)
    assert prompt.protocol["image_policy"]["max_side"] == 200
    assert prompt.protocol["image_policy"]["format"] == "jpeg"


def test_format_the_model_cannot_take_is_an_error(tmp_path: Path):
    with pytest.raises(PromptError, match="not accepted"):
        build_prompt(make_cvb_sample(tmp_path), PromptSettings(), Capabilities(image_formats=("image/jpeg",)))


# ------------------------------------------------------------------------------ MMVM end to end


def test_prerendered_bytes_pass_through_unchanged(tmp_path: Path):
    sample = make_mmvm_sample(tmp_path)
    prompt = build_prompt(sample, PromptSettings(mode="prerendered"), MULTI)
    assert prompt.text == sample.prerendered_question
    assert [i.data for i in prompt.images] == [Path(v.prerendered.path).read_bytes() for v in sample.views]
    assert [i.mime for i in prompt.images] == ["image/jpeg", "image/jpeg"]
    assert [r["source"] for r in prompt.protocol["images"]] == ["shipped-bytes", "shipped-bytes"]


def test_prerendered_is_reencoded_when_the_policy_resizes(tmp_path: Path):
    sample = make_mmvm_sample(tmp_path)
    prompt = build_prompt(sample, PromptSettings(mode="prerendered", image=ImagePolicy(max_side=240)), MULTI)
    assert [(i.width, i.height) for i in prompt.images] == [(240, 180), (240, 180)]
    assert [r["source"] for r in prompt.protocol["images"]] == ["shipped-reencoded", "shipped-reencoded"]


def test_prerendered_subset_is_an_error(tmp_path: Path):
    sample = make_mmvm_sample(tmp_path, n=10)
    with pytest.raises(PromptError, match=r"case_001.*prerendered mode can only show"):
        build_prompt(sample, PromptSettings(mode="prerendered"), MULTI, setting="4")


def test_mmvm_subset_prompt_is_consistent(tmp_path: Path):
    sample = make_mmvm_sample(tmp_path, n=20, gt=11)
    prompt = build_prompt(sample, PromptSettings(seed=7), MULTI, setting="8")
    assert prompt.setting == "8" and len(prompt.options) == 9
    assert prompt.text.endswith("".join(o.line + "\n" for o in prompt.options))
    shown = next(o for o in prompt.options if o.letter == prompt.answer)
    assert prompt.protocol["id_map"][shown.text] == sample.answer_region_id
    assert prompt.protocol["seed"] == 7 and prompt.protocol["cues"] == ["CL", "RP"]


def test_same_seed_gives_identical_bytes_and_another_seed_a_different_subset(tmp_path: Path):
    sample = make_mmvm_sample(tmp_path, n=20, gt=3)
    a = build_prompt(sample, PromptSettings(seed=1), MULTI, setting="4")
    b = build_prompt(sample, PromptSettings(seed=1), MULTI, setting="4")
    assert [i.data for i in a.images] == [i.data for i in b.images]
    assert a.content_digest() == b.content_digest() and a.protocol == b.protocol
    others = [build_prompt(sample, PromptSettings(seed=s), MULTI, setting="4") for s in (2, 3, 4)]
    assert any(o.protocol["id_map"] != a.protocol["id_map"] for o in others)


def test_native_prompt_for_a_region_model(tmp_path: Path):
    prompt = build_prompt(make_mmvm_sample(tmp_path, n=7, gt=1), PromptSettings(), NATIVE)
    assert prompt.mode == "native" and prompt.native is not None
    assert len(prompt.native.views[1].masks) == 7 and prompt.native.candidate_order
    assert prompt.protocol["mode"] == "native"


def test_protocol_records_everything_that_decides_what_was_seen(tmp_path: Path):
    prompt = build_prompt(make_mmvm_sample(tmp_path, n=5, gt=0), PromptSettings(style="mask", alpha=0.5), MULTI)
    rec = prompt.protocol
    for key in (
        "protocol",
        "mode",
        "style",
        "alpha",
        "thickness",
        "colours",
        "ids_shown",
        "id_map",
        "candidates_kept",
        "image_policy",
        "cues",
        "query_colour",
        "seed",
        "setting",
    ):
        assert key in rec, key
    assert rec["protocol"] == "mmvm/1" and rec["style"] == "mask" and rec["alpha"] == 0.5
    assert all({"name", "rgb", "id"} <= set(c) for c in rec["colours"])
    cvb = build_prompt(make_cvb_sample(tmp_path), PromptSettings(), MULTI).protocol
    assert cvb["protocol"] == "crossviewbench/1" and cvb["task_type"] == "Q5"


# ------------------------------------------------------------------------------ errors


def test_missing_image_raises_prompt_error_naming_the_sample(tmp_path: Path):
    sample = make_cvb_sample(tmp_path)
    gone = dataclasses.replace(sample.views[0], image=ImageRef(tmp_path / "missing.png"))
    broken = dataclasses.replace(sample, views=(gone,) + sample.views[1:])
    with pytest.raises(PromptError, match=r"crossviewbench\.jsonl:3 \[cvb-1\].*missing\.png.*not found"):
        build_prompt(broken, PromptSettings(), MULTI)


def test_bad_mask_raises_prompt_error(tmp_path: Path):
    sample = make_cvb_sample(tmp_path)
    bad = dataclasses.replace(sample.views[0].regions[0], rle={"size": [300, 400], "counts": [5, 5]})
    view = dataclasses.replace(sample.views[0], regions=(bad,) + sample.views[0].regions[1:])
    with pytest.raises(PromptError, match=r"\[cvb-1\].*track00.*no bbox_xyxy"):
        build_prompt(dataclasses.replace(sample, views=(view,) + sample.views[1:]), PromptSettings(), MULTI)


def test_crossviewbench_has_no_candidate_settings(tmp_path: Path):
    with pytest.raises(PromptError, match="only the setting 'all'"):
        build_prompt(make_cvb_sample(tmp_path), PromptSettings(), MULTI, setting="4")
