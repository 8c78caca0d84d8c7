from __future__ import annotations

from pathlib import Path

import pytest

from cvbench.core.types import CATEGORY_NAMES, CUE_CODES, TASK_TYPES, Option, Sample, SourceLocation
from cvbench.tasks.registry import TaskSpecError, UnknownTaskError, get_task, load_task_specs, parse_task_spec
from cvbench.tasks.slices import SliceError, candidate_bucket, sample_slices, slice_labels

GOOD = """
name = "mmvm-mini"
benchmark = "mmvm"
description = "a variant"
source = "mmvm-tsv"
data_file = "mini.tsv"
data_subdir = "mmvm-mini"
synthetic = false
slice_dims = ["cue", "bucket"]
candidate_settings = ["4", "all"]
"""


def test_builtin_specs() -> None:
    specs = load_task_specs()
    assert set(specs) == {"crossviewbench", "mmvm", "synth-crossviewbench", "synth-mmvm"}
    cvb, mmvm = specs["crossviewbench"], specs["mmvm"]
    assert (cvb.benchmark, cvb.source, cvb.data_file, cvb.data_subdir) == (
        "crossviewbench",
        "crossviewbench-jsonl",
        "crossviewbench.jsonl",
        "crossviewbench",
    )
    assert cvb.slice_dims == ("category", "task_type") and cvb.candidate_settings == ("all",)
    assert mmvm.slice_dims == ("cue", "bucket") and mmvm.candidate_settings == ("4", "8", "12", "all")
    assert mmvm.data_file == "mllm_match_eval_full.tsv" and not mmvm.synthetic
    assert specs["synth-mmvm"].synthetic and specs["synth-crossviewbench"].synthetic
    assert "zhouyik/MMVMBench" in mmvm.obtain_hint  # the source only: the download command is said once, by loading
    assert mmvm.spec_file.endswith("mmvm.toml")


def test_get_task_unknown_lists_known() -> None:
    assert get_task("mmvm").name == "mmvm"
    with pytest.raises(UnknownTaskError, match="unknown task 'mmv'.*crossviewbench, mmvm, synth-crossviewbench"):
        get_task("mmv")


def test_a_new_variant_is_a_new_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mini.toml").write_text(GOOD)
    monkeypatch.setenv("CVBENCH_TASK_DIRS", str(tmp_path))
    spec = get_task("mmvm-mini")
    assert spec.candidate_settings == ("4", "all") and spec.data_file == "mini.tsv"
    (tmp_path / "clash.toml").write_text(GOOD)
    with pytest.raises(TaskSpecError, match=r"mini.toml: field 'name': task 'mmvm-mini' is already defined in .*clash"):
        load_task_specs()


@pytest.mark.parametrize(
    "change, message",
    [
        (("synthetic = false", ""), "field 'synthetic': missing"),
        (('benchmark = "mmvm"', 'benchmark = "blink"'), "field 'benchmark': 'blink' is not one of"),
        (
            ('source = "mmvm-tsv"', 'source = "crossviewbench-jsonl"'),
            "field 'source': 'crossviewbench-jsonl' holds crossviewbench",
        ),
        (
            ('slice_dims = ["cue", "bucket"]', 'slice_dims = ["cue", "task_type"]'),
            "'task_type' is not a slice dimension of mmvm",
        ),
        (
            ('candidate_settings = ["4", "all"]', 'candidate_settings = ["4", "three"]'),
            "'three' must be 'all' or a whole number",
        ),
        (("synthetic = false", "synthetic = 'no'"), "field 'synthetic': must be a bool"),
        (('data_subdir = "mmvm-mini"', 'data_subdir = "../x"'), "field 'data_subdir'"),
        (("synthetic = false", "synthetic = false\nslices = []"), "unknown field(s) 'slices'"),
        (('name = "mmvm-mini"', 'name = "a b"'), "field 'name'"),
        (("synthetic = false", "synthetic = false\ndefault_mode = 'fancy'"), "field 'default_mode'"),
        (("synthetic = false", "synthetic = [[["), "not valid TOML"),
    ],
)
def test_bad_spec_names_file_and_field(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace(*change))
    with pytest.raises(TaskSpecError) as info:
        parse_task_spec(path)
    assert str(info.value).startswith(str(path)) and message in str(info.value), str(info.value)


def _sample(**kw: object) -> Sample:
    base: dict = {
        "sample_id": "s",
        "benchmark": "mmvm",
        "question": "q",
        "options": (Option("A", "1"),),
        "answer": "A",
        "views": (),
        "cluster": "c",
        "source": SourceLocation("f", 1),
    }
    base.update(kw)
    return Sample(**base)  # type: ignore[arg-type]


def test_slices_multi_label_cues_and_native_bucket() -> None:
    mmvm = get_task("mmvm")
    s = _sample(cues=("CL", "RP", "CL"), candidate_count=13)
    for setting in ("4", "all"):
        assert sample_slices(s, mmvm, setting) == {"cue": ["CL", "RP"], "bucket": ["13+"]}
    with pytest.raises(SliceError, match="no candidate setting '5'"):
        sample_slices(s, mmvm, "5")
    cvb = get_task("crossviewbench")
    q = _sample(benchmark="crossviewbench", task_type="Q7", category="visibility_occlusion")
    assert sample_slices(q, cvb, "all") == {"category": ["visibility_occlusion"], "task_type": ["Q7"]}
    with pytest.raises(SliceError, match="no candidate_count"):
        sample_slices(_sample(cues=("CL",)), mmvm, "all")


@pytest.mark.parametrize(
    "n, bucket", [(2, "2-4"), (4, "2-4"), (5, "5-8"), (8, "5-8"), (9, "9-12"), (12, "9-12"), (13, "13+"), (37, "13+")]
)
def test_candidate_bucket(n: int, bucket: str) -> None:
    assert candidate_bucket(n) == bucket


def test_slice_labels_in_display_order() -> None:
    assert slice_labels(get_task("mmvm")) == {"cue": list(CUE_CODES), "bucket": ["2-4", "5-8", "9-12", "13+"]}
    assert slice_labels(get_task("crossviewbench")) == {"category": list(CATEGORY_NAMES), "task_type": list(TASK_TYPES)}
    with pytest.raises(SliceError):
        candidate_bucket(1)
