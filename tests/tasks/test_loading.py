from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cvbench.core.types import InvalidSample, Sample
from cvbench.tasks.loading import DataNotFoundError, dataset_fingerprint, iter_task_samples, task_data_dir
from cvbench.tasks.registry import get_task
from tests.tasks.builders import cvb_record, make_case, mmvm_row, write_image, write_jsonl, write_tsv


def make_cvb(folder: Path, n: int = 3) -> Path:
    for i in range(2):
        write_image(folder / "img" / f"{i}.png", seed=i)
    return write_jsonl(folder / "crossviewbench.jsonl", [cvb_record(i, ["img/0.png", "img/1.png"]) for i in range(n)])


def make_mmvm(folder: Path) -> Path:
    make_case(folder, "case_1", [1, 2, 3])
    return write_tsv(folder / "mllm_match_eval_full.tsv", [mmvm_row(1, "case_1", [1, 2, 3], answer_id=3)])


def test_task_folder_is_the_subdir_or_a_root_holding_the_file(tmp_path: Path) -> None:
    cvb, synth = get_task("crossviewbench"), get_task("synth-crossviewbench")
    assert task_data_dir(cvb, tmp_path) == tmp_path / "crossviewbench"
    make_cvb(tmp_path)
    assert task_data_dir(cvb, tmp_path) == tmp_path
    # a root holding official data is never taken for the synthetic set
    assert task_data_dir(synth, tmp_path) == tmp_path / "synth-crossviewbench"
    make_cvb(tmp_path / "crossviewbench")
    assert task_data_dir(cvb, tmp_path) == tmp_path / "crossviewbench"


def test_iter_task_samples_from_data_dir_and_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_cvb(tmp_path / "crossviewbench", n=4)
    make_mmvm(tmp_path / "mmvm")
    items = list(iter_task_samples(get_task("crossviewbench"), tmp_path))
    assert [s.sample_id for s in items if isinstance(s, Sample)] == ["0", "1", "2", "3"]
    monkeypatch.setenv("CVBENCH_DATA", str(tmp_path))
    mm = list(iter_task_samples(get_task("mmvm")))
    assert len(mm) == 1 and isinstance(mm[0], Sample) and mm[0].answer == "C"


def test_missing_official_data_says_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError) as info:
        iter_task_samples(get_task("mmvm"), tmp_path)
    msg = str(info.value)
    assert str(tmp_path / "mmvm" / "mllm_match_eval_full.tsv") in msg
    assert "match_bench/case_*/FRAME00.jpg" in msg
    assert "cvbench data download mmvm" in msg and "by hand" in msg
    with pytest.raises(DataNotFoundError, match="cvbench data download crossviewbench --from-dir"):
        iter_task_samples(get_task("crossviewbench"), tmp_path)


def test_fingerprint_depends_on_content_and_names_only(tmp_path: Path) -> None:
    spec = get_task("mmvm")
    a, b = tmp_path / "a", tmp_path / "elsewhere" / "deeper"
    make_mmvm(a / "mmvm")
    shutil.copytree(a, b)
    fp = dataset_fingerprint(spec, a)
    assert fp.startswith("sha256:") and len(fp) == 7 + 64
    os.utime(b / "mmvm" / "mllm_match_eval_full.tsv", (1, 1))  # mtimes do not count
    (b / "mmvm" / ".DS_Store").write_text("x")  # hidden files do not count
    assert dataset_fingerprint(spec, b) == fp
    (b / "mmvm" / "match_bench" / "case_1" / "extra.jpg").write_bytes(b"")
    assert dataset_fingerprint(spec, b) != fp
    (b / "mmvm" / "match_bench" / "case_1" / "extra.jpg").unlink()
    tsv = b / "mmvm" / "mllm_match_eval_full.tsv"
    tsv.write_text(tsv.read_text().replace("[1, 5]", "[1, 6]"))
    assert dataset_fingerprint(spec, b) != fp


def test_fingerprint_of_data_in_the_root_ignores_other_tasks_folders(tmp_path: Path) -> None:
    spec = get_task("crossviewbench")
    make_cvb(tmp_path)
    fp = dataset_fingerprint(spec, tmp_path)
    make_mmvm(tmp_path / "mmvm")
    assert dataset_fingerprint(spec, tmp_path) == fp


def test_invalid_samples_flow_through(tmp_path: Path) -> None:
    folder = tmp_path / "crossviewbench"
    make_cvb(folder, n=1)
    with open(folder / "crossviewbench.jsonl", "a") as f:
        f.write('{"sample_id": "x"\n')
    items = list(iter_task_samples(get_task("crossviewbench"), tmp_path))
    assert isinstance(items[0], Sample) and isinstance(items[1], InvalidSample)
    assert items[1].source.line == 2
