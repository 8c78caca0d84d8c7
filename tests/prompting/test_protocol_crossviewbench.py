from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from cvbench.core.types import RegionRef
from cvbench.imaging.images import load_image
from cvbench.imaging.masks import decode_region
from cvbench.imaging.render import NAMED_PALETTE
from cvbench.prompting.encoding import ImagePolicy
from cvbench.prompting.protocols import ProtocolError
from cvbench.prompting.protocols import crossviewbench as P
from tests.prompting.test_protocol_data import make_cvb_sample

BUILD = {"alpha": 0.4, "thickness": 2, "policy": ImagePolicy()}
RED, BLUE, GREEN = (c.rgb for c in NAMED_PALETTE[:3])


def test_each_region_gets_its_colour_phrase_in_order_and_repeats_keep_their_colour(tmp_path: Path):
    sample = make_cvb_sample(tmp_path)
    out = P.build_crossviewbench(sample, mode="overlay", style="mask", **BUILD)
    assert out.text == (
        "Is the object highlighted in red in Image 1 the same object as the object highlighted in blue "
        "in Image 2? The object highlighted in red is the reference.\n\nA. Yes\nB. No"
    )
    rec = out.record
    assert rec["protocol"] == "crossviewbench/1" and rec["task_type"] == "Q5" and rec["style"] == "mask"
    assert [(c["name"], c["view_index"], c["region_index"], c["placeholders"]) for c in rec["colours"]] == [
        ("red", 0, 0, [0, 2]),
        ("blue", 1, 1, [1]),
    ]
    assert rec["colours"][0]["rgb"] == list(RED) and rec["alpha"] == 0.4
    assert out.options == sample.options and out.answer == "A"


@pytest.mark.parametrize(
    "style, phrase",
    [
        ("mask", "the object highlighted in red"),
        ("contour", "the object outlined in red"),
        ("box", "the object in the red box"),
        ("marks", "the object marked 1 in red"),
    ],
)
def test_wording_follows_the_style(tmp_path: Path, style: str, phrase: str):
    sample = make_cvb_sample(tmp_path, refs=((0, 2),), question="Where is <region> in the second view?")
    out = P.build_crossviewbench(sample, mode="overlay", style=style, **BUILD)
    assert out.text.startswith(f"Where is {phrase} in the second view?\n\n")
    assert out.record["wording"] == P.PHRASES[style]


def test_phrase_at_a_sentence_start_is_capitalised():
    assert (
        P.rewrite_question("<region> moved. Did <region>?", ["the object in red", "the object in blue"])
        == "The object in red moved. Did the object in blue?"
    )


@pytest.mark.parametrize(
    "question, expected",
    [
        ("Is the object <region> visible?", "Is the object in red visible?"),
        ("The object <region> is marked.", "The object in red is marked."),
        ("Is object <region> visible?", "Is the object in red visible?"),
        ("Which object matches <region>?", "Which object matches the object in red?"),
        ("Compare the objects <region> and <region>.", "Compare the objects the object in red and the object in red."),
    ],
)
def test_object_words_before_a_placeholder_are_not_doubled(question, expected):
    phrases = ["the object in red"] * question.count("<region>")
    assert P.rewrite_question(question, phrases) == expected


def test_open_ended_question_has_no_option_block(tmp_path: Path):
    sample = make_cvb_sample(tmp_path, refs=((0, 0),), question="Describe <region>.", options=(), answer="")
    sample = dataclasses.replace(sample, options=(), answer=None)
    out = P.build_crossviewbench(sample, mode="overlay", style="mask", **BUILD)
    assert out.text == "Describe the object highlighted in red."


def test_only_views_with_referenced_regions_are_marked(tmp_path: Path):
    sample = make_cvb_sample(tmp_path, n_views=3)
    out = P.build_crossviewbench(sample, mode="overlay", style="mask", **BUILD)
    originals = [load_image(v.image) for v in sample.views]
    assert len(out.views) == 3 and out.view_labels == ("Image 1", "Image 2", "Image 3")
    assert (out.views[2] == originals[2]).all()  # unreferenced view shown untouched
    assert out.record["marked_views"] == [0, 1]
    # view 0: only its referenced object changed; the others are untouched
    v0 = sample.views[0]
    masks = [decode_region(r, originals[0].shape[:2]).mask for r in v0.regions]
    changed = (out.views[0] != originals[0]).any(axis=2)
    assert changed[masks[0]].mean() > 0.9
    assert not changed[masks[1]].any() and not changed[masks[2]].any()
    inside = out.views[0][masks[0]].astype(int)
    expected = np.rint(originals[0][masks[0]] * 0.6 + np.array(RED) * 0.4)
    assert (np.abs(inside - expected) <= 1).all(axis=1).mean() > 0.8  # translucent red (edge aside)


def test_native_keeps_placeholders_and_passes_every_object(tmp_path: Path):
    sample = make_cvb_sample(tmp_path, token_counts=(4, 9, 4))
    out = P.build_crossviewbench(sample, mode="native", style="mask", **BUILD)
    assert out.text == sample.question + "\n\nA. Yes\nB. No"
    native = out.native
    assert native is not None and native.refs == sample.region_refs and native.token_counts == (4, 9, 4)
    assert [len(v.masks) for v in native.views] == [3, 3, 3]
    assert native.views[1].region_ids == ("track10", "track11", "track12")
    assert (native.views[0].image == load_image(sample.views[0].image)).all()
    assert out.record["task_type"] == "Q5" and out.record["mode"] == "native"


def test_placeholder_count_must_match_refs(tmp_path: Path):
    sample = make_cvb_sample(tmp_path, refs=((0, 0),), question="Is <region> the same as <region>?")
    with pytest.raises(ProtocolError, match=r"2 <region> placeholder\(s\) but 1 region_refs"):
        P.build_crossviewbench(sample, mode="overlay", style="mask", **BUILD)


def test_out_of_range_ref_is_an_error(tmp_path: Path):
    sample = make_cvb_sample(tmp_path, refs=((1, 7),), question="Is <region> here?")
    with pytest.raises(ProtocolError, match=r"region_refs\[0\] names object 7"):
        P.build_crossviewbench(sample, mode="overlay", style="mask", **BUILD)
    sample = dataclasses.replace(sample, region_refs=(RegionRef(5, 0),))
    with pytest.raises(ProtocolError, match="names view 5"):
        P.build_crossviewbench(sample, mode="overlay", style="mask", **BUILD)


def test_corrupt_mask_is_an_error_naming_sample_and_region(tmp_path: Path):
    sample = make_cvb_sample(tmp_path)
    bad = dataclasses.replace(sample.views[1].regions[1], rle={"size": [300, 400], "counts": "zzz"})
    view = dataclasses.replace(sample.views[1], regions=(sample.views[1].regions[0], bad, sample.views[1].regions[2]))
    broken = dataclasses.replace(sample, views=(sample.views[0], view, sample.views[2]))
    with pytest.raises(ProtocolError, match=r"cvb-1.*track11"):
        P.build_crossviewbench(broken, mode="overlay", style="mask", **BUILD)


def test_resize_policy_renders_at_the_presented_size(tmp_path: Path):
    sample = make_cvb_sample(tmp_path)
    out = P.build_crossviewbench(
        sample, mode="overlay", style="contour", alpha=0.4, thickness=2, policy=ImagePolicy(max_side=200)
    )
    assert all(v.shape[:2] == (150, 200) for v in out.views)
    assert (out.views[0] == RED).all(axis=2).sum() > 50
