from __future__ import annotations

import json
from pathlib import Path

import pytest

from cvbench.core.types import InvalidSample, Sample
from cvbench.imaging.masks import decode_region
from cvbench.tasks.crossviewbench import iter_crossviewbench, normalise_answer
from cvbench.tasks.files import parse_option_lines
from tests.tasks.builders import H, W, cvb_object, cvb_record, write_image, write_jsonl


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    data = tmp_path / "data" / "crossviewbench"
    for i in range(3):
        write_image(data / "images" / f"v{i}.jpg", seed=i)
    return data


IMGS = ["images/v0.jpg", "images/v1.jpg"]


def load(root: Path, lines: list) -> list[Sample | InvalidSample]:
    return list(iter_crossviewbench(write_jsonl(root / "crossviewbench.jsonl", lines), root))


def only(items: list) -> Sample | InvalidSample:
    assert len(items) == 1, items
    return items[0]


def test_valid_record_becomes_a_sample_with_everything_kept(root: Path) -> None:
    rec = cvb_record(
        7,
        IMGS,
        selected_object_names=["mug"],
        object_ids=["o1"],
        frame_id=3,
        metadata={"split": "test"},
        custom_field=[1, 2],
    )
    s = only(load(root, [rec]))
    assert isinstance(s, Sample)
    assert s.sample_id == "7" and s.benchmark == "crossviewbench"
    assert s.task_type == "Q1" and s.category == "correspondence"
    assert [o.line for o in s.options] == ["A. the left one", "B. the right one"]
    assert s.answer == "A"
    assert s.cluster == "scene_01"
    assert s.source.line == 1 and s.source.file.endswith("crossviewbench.jsonl")
    assert [(r.view_index, r.region_index) for r in s.region_refs] == [(0, 0)]
    assert s.views[0].view_id == "cam0" and s.views[0].image.path == (root / "images/v0.jpg").absolute()
    assert [r.region_id for r in s.views[1].regions] == ["t1a", "t1b"]
    # every key that is not a Sample field survives verbatim
    for key in (
        "dataset",
        "scene",
        "spatial_info",
        "selected_object_names",
        "object_ids",
        "frame_id",
        "metadata",
        "custom_field",
    ):
        assert s.metadata[key] == rec[key]
    assert s.metadata["cvbench_loader"]["cluster_source"] == "scene"
    assert "answer_normalised" not in s.metadata["cvbench_loader"]


def test_rle_as_string_and_as_list_and_missing_rle_fall_back_to_bbox(root: Path) -> None:
    rec = cvb_record(1, IMGS)
    rec["views"][0]["objects"] = [
        cvb_object(2, 2, 20, 20, rle="str"),
        cvb_object(2, 2, 20, 20, rle="list"),
        cvb_object(2, 2, 20, 20, rle="none"),
    ]
    s = only(load(root, [rec]))
    assert isinstance(s, Sample)
    regions = s.views[0].regions
    assert isinstance(regions[0].rle["counts"], str) and isinstance(regions[1].rle["counts"], list)
    assert regions[2].rle is None and regions[2].bbox_xyxy == (2.0, 2.0, 19.0, 19.0)
    masks = [decode_region(r, (H, W)) for r in regions]
    assert [m.source for m in masks] == ["rle", "rle", "bbox"]
    assert all((m.mask == masks[0].mask).all() for m in masks)
    assert [r.region_id for r in regions] == ["0", "1", "2"]  # no track_id: the object index


@pytest.mark.parametrize(
    ("bbox", "error"),
    [
        ([1, 2, 3], "'views[1].objects[1].bbox_xyxy' must be 4 numbers [x1, y1, x2, y2], got [1, 2, 3]"),
        ([1, 2, 3, True], "'views[1].objects[1].bbox_xyxy' must be 4 numbers [x1, y1, x2, y2], got [1, 2, 3, True]"),
        ([1, "2", 3, 4], "'views[1].objects[1].bbox_xyxy' must be 4 numbers"),
        ("1 2 3 4", "'views[1].objects[1].bbox_xyxy' must be 4 numbers"),
        ({"x": 1}, "'views[1].objects[1].bbox_xyxy' must be 4 numbers"),
    ],
)
def test_bad_bbox_is_invalid_naming_the_object(root: Path, bbox: object, error: str) -> None:
    rec = cvb_record(1, IMGS)
    rec["views"][1]["objects"][1]["bbox_xyxy"] = bbox
    item = only(load(root, [rec]))
    assert isinstance(item, InvalidSample) and error in item.reason


def test_objects_keep_their_numbers_labels_and_extra_fields(root: Path) -> None:
    """Integer and float boxes become float tuples; an unusable RLE, extra object keys and an
    object without any region are reported with the object's label."""
    rec = cvb_record(1, IMGS)
    objects = rec["views"][1]["objects"]
    objects[0]["bbox_xyxy"] = [2, 2.5, 19, 19.25]
    objects[0]["name"] = "mug"
    objects[0]["colour"] = "red"
    objects[1]["mask_rle"] = "not a dict"
    objects[1]["name"] = 5
    s = only(load(root, [rec]))
    assert isinstance(s, Sample)
    regions = s.views[1].regions
    assert regions[0].bbox_xyxy == (2.0, 2.5, 19.0, 19.25) and all(type(v) is float for v in regions[0].bbox_xyxy)
    assert regions[0].name == "mug" and regions[1].name is None and regions[1].rle is None
    notes = s.metadata["cvbench_loader"]
    assert notes["object_fields"] == {"views[1].objects[0]": {"colour": "red"}}
    assert notes["unusable_mask_rle"] == ["views[1].objects[1]"]
    bare = cvb_record(2, IMGS)
    bare["views"][0]["objects"][1] = {"track_id": "x"}
    bare["views"][1]["objects"][0] = "nope"
    reasons = [i.reason for i in load(root, [bare]) if isinstance(i, InvalidSample)]
    assert reasons == ["'views[0].objects[1]' has neither a 'mask_rle' nor a 'bbox_xyxy'"]
    only_bad = cvb_record(3, IMGS)
    only_bad["views"][1]["objects"][0] = "nope"
    item = only(load(root, [only_bad]))
    assert isinstance(item, InvalidSample) and item.reason == "'views[1].objects[0]' must be an object, got 'nope'"


@pytest.mark.parametrize(
    "refs",
    [
        [{"view_idx": 1, "obj_idx": 1}],
        [{"view": 1, "obj": 1}],
        [["cam1", 1]],
        [{"view": "cam1", "obj_idx": 1}],
    ],
)
def test_every_region_ref_form(root: Path, refs: list) -> None:
    s = only(load(root, [cvb_record(1, IMGS, region_refs=refs)]))
    assert isinstance(s, Sample), s
    assert [(r.view_index, r.region_index) for r in s.region_refs] == [(1, 1)]


def test_image_path_falls_back_to_the_parent_of_the_data_root(root: Path) -> None:
    write_image(root.parent / "shared" / "frame.jpg")
    s = only(load(root, [cvb_record(1, ["images/v0.jpg", "shared/frame.jpg"])]))
    assert isinstance(s, Sample), s
    assert s.views[1].image.path == (root.parent / "shared" / "frame.jpg").absolute()


def test_video_views_take_the_view_frame_or_the_record_frame(root: Path) -> None:
    (root / "clips").mkdir()
    (root / "clips" / "a.mp4").write_bytes(b"not decoded by the loader")
    rec = cvb_record(1, IMGS, frame_idx=12)
    del rec["views"][0]["image_path"]
    rec["views"][0]["video_path"] = "clips/a.mp4"
    del rec["views"][1]["image_path"]
    rec["views"][1].update(video_path="clips/a.mp4", frame_id=40)
    s = only(load(root, [rec]))
    assert isinstance(s, Sample), s
    assert (s.views[0].image.frame, s.views[1].image.frame) == (12, 40)
    del rec["frame_idx"]
    bad = only(load(root, [rec]))
    assert isinstance(bad, InvalidSample) and "no frame_id/frame_idx" in bad.reason


@pytest.mark.parametrize(
    "raw, letter, how",
    [
        ("B", "B", None),
        ("b", "B", "letter form"),
        ("B.", "B", "letter form"),
        ("the right one", "B", "option text"),
        ("B. the right one", "B", "option line"),
        ("2", "B", "1-based option number"),
        (2, "B", "1-based option number"),
    ],
)
def test_answer_normalisation_is_recorded(root: Path, raw: object, letter: str, how: str | None) -> None:
    s = only(load(root, [cvb_record(1, IMGS, answer=raw)]))
    assert isinstance(s, Sample), s
    assert s.answer == letter
    notes = s.metadata["cvbench_loader"]
    if how is None:
        assert "answer_normalised" not in notes
    else:
        assert notes["answer_normalised"] == {"from": raw, "to": letter, "how": how}


def test_ambiguous_answer_is_invalid_not_guessed() -> None:
    options = parse_option_lines(["A. 2", "B. 1"], "options")
    with pytest.raises(ValueError, match="ambiguous"):
        normalise_answer("1", options)  # option text of B, or the 1st option A
    assert normalise_answer("A", options) == ("A", None)


def test_open_ended_question_keeps_its_reference_answer(root: Path) -> None:
    s = only(load(root, [cvb_record(1, IMGS, options=[], answer="the mug")]))
    assert isinstance(s, Sample), s
    assert s.options == () and s.answer is None and s.metadata["answer"] == "the mug"


def test_cluster_falls_back_and_says_so(root: Path) -> None:
    rec = cvb_record(5, IMGS, take_name="take_9")
    del rec["scene"]
    s = only(load(root, [rec]))
    assert s.cluster == "take_9" and s.metadata["cvbench_loader"]["cluster_source"] == "take_name"
    del rec["take_name"]
    s = only(load(root, [rec]))
    assert s.cluster == "EgoHumans/5"
    assert s.metadata["cvbench_loader"]["cluster_source"].startswith("dataset+sample_id")


def test_bad_lines_are_reported_with_line_and_reason_and_nothing_is_substituted(root: Path) -> None:
    good = cvb_record("ok", IMGS)
    lines = [
        good,  # 1
        "",  # 2 blank: skipped
        cvb_record("ref-range", IMGS, region_refs=[[1, 5]]),  # 3
        cvb_record("view-range", IMGS, region_refs=[[2, 0]]),  # 4
        cvb_record("count", IMGS, question="<region> and <region>?"),  # 5
        cvb_record("ans", IMGS, answer="E"),  # 6
        cvb_record("ok", IMGS),  # 7 duplicate
        "{not json}",  # 8
        json.dumps(cvb_record("trunc", IMGS))[:60],  # 9 truncated
        cvb_record("escape", ["../../etc/passwd", "images/v1.jpg"]),  # 10
        cvb_record("missing", ["images/nope.jpg", "images/v1.jpg"]),  # 11
        cvb_record("qt", IMGS, question_type="reid"),  # 12
        cvb_record("view-name", IMGS, region_refs=[["cam9", 0]]),  # 13
        cvb_record("one-view", IMGS[:1]),  # 14
        cvb_record("opts", IMGS, options=["A. x", "C. y"]),  # 15
        cvb_record("tokens", IMGS, region_token_counts=[3, 4]),  # 16
        "[1, 2]",  # 17
        {"question_type": "Q1"},  # 18
    ]
    items = load(root, lines)
    assert isinstance(items[0], Sample)
    bad = {i.source.line: i for i in items if isinstance(i, InvalidSample)}
    expect = {
        3: "object index 5 out of range",
        4: "view index 2 out of range",
        5: "2 <region> placeholder(s) but 'region_refs' has 1",
        6: "'answer' 'E' is not among the options",
        7: "duplicate sample_id 'ok' (first used at line 1)",
        8: "invalid JSON",
        9: "truncated JSON line",
        10: "escapes the data folder",
        11: "file not found",
        12: "not a CrossViewBench task type",
        13: "no view has view_id 'cam9'",
        14: "at least 2 views",
        15: "expected option letter 'B'",
        16: "'region_token_counts' must be 1 positive integers",
        17: "JSON list, not an object",
        18: "missing 'sample_id'",
    }
    assert sorted(bad) == sorted(expect)
    for line, needle in expect.items():
        assert needle in bad[line].reason, (line, bad[line].reason)
    assert str(bad[7]).startswith(f"{root / 'crossviewbench.jsonl'}:7 [ok]: ")
    assert bad[3].sample_id == "ref-range"
    assert len(items) == 17  # the blank line is skipped; every other line yields exactly one item


def test_loader_is_lazy(root: Path) -> None:
    path = write_jsonl(root / "crossviewbench.jsonl", [cvb_record(i, IMGS) for i in range(3)])
    it = iter_crossviewbench(path, root)
    first = next(it)
    assert isinstance(first, Sample)
    with open(path, "a") as f:  # lines appended after the first was read are still seen: one line at a time
        f.write(json.dumps(cvb_record("late", IMGS)) + "\n")
    assert [s.sample_id for s in it] == ["1", "2", "late"]
