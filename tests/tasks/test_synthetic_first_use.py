"""First use of a synthetic task generates it (with the real generator) into the data root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cvbench.core.types import Sample
from cvbench.tasks.loading import DataFormatError, dataset_fingerprint, iter_task_samples, task_data_dir
from cvbench.tasks.registry import get_task
from cvbench.tasks.synthetic.manifest import MANIFEST_NAME, MANIFEST_SCHEMA, builtin_generators
from cvbench.tasks.verify import verify_path


def test_synthetic_crossviewbench_is_generated_once_atomically(tmp_path: Path) -> None:
    from cvbench.tasks import synthetic

    spec = get_task("synth-crossviewbench")
    items = list(iter_task_samples(spec, tmp_path))
    assert len(items) == 17 * synthetic.BUILTIN_CVB_PER_TYPE
    assert all(isinstance(s, Sample) for s in items)
    assert {s.task_type for s in items if isinstance(s, Sample)} == {f"Q{i}" for i in range(1, 18)}
    folder = task_data_dir(spec, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["synth-crossviewbench"]  # no staging folder left
    assert folder.stat().st_mode & 0o777 == 0o755
    stamp = (folder / spec.data_file).stat().st_mtime_ns
    fp = dataset_fingerprint(spec, tmp_path)
    assert [s.sample_id for s in iter_task_samples(spec, tmp_path)] == [s.sample_id for s in items]
    assert (folder / spec.data_file).stat().st_mtime_ns == stamp  # not generated twice
    assert dataset_fingerprint(spec, tmp_path) == fp
    assert verify_path(folder).passed


def test_a_foreign_folder_in_the_way_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "synth-mmvm").mkdir()
    (tmp_path / "synth-mmvm" / "notes.txt").write_text("mine")
    with pytest.raises(DataFormatError, match="exists but holds no mllm_match_eval_full.tsv; move it away"):
        iter_task_samples(get_task("synth-mmvm"), tmp_path)
    assert (tmp_path / "synth-mmvm" / "notes.txt").read_text() == "mine"


def test_a_built_in_set_from_another_generator_version_is_kept_aside_and_generated_afresh(tmp_path: Path) -> None:
    """After an upgrade the built-in set on disk is an earlier generator's: it is renamed beside
    the new one, untouched, and this version's set is generated in its place (no step by hand)."""
    spec = get_task("synth-mmvm")
    folder = tmp_path / "synth-mmvm"
    folder.mkdir()
    (folder / spec.data_file).write_text("index\tquestion\n0\told\n")
    generator = {k: v for k, v in builtin_generators()["synth-mmvm"].items() if k != "version"}
    (folder / MANIFEST_NAME).write_text(json.dumps({"schema": MANIFEST_SCHEMA, "generator": generator, "files": {}}))
    items = list(iter_task_samples(spec, tmp_path))
    assert items and all(isinstance(s, Sample) for s in items)
    kept = tmp_path / "synth-mmvm.unversioned"
    assert (kept / spec.data_file).read_text() == "index\tquestion\n0\told\n"
    assert json.loads((folder / MANIFEST_NAME).read_text())["generator"] == builtin_generators()["synth-mmvm"]
    assert verify_path(folder).passed


def test_a_set_of_other_parameters_or_edited_files_is_never_moved(tmp_path: Path) -> None:
    spec = get_task("synth-mmvm")
    folder = tmp_path / "synth-mmvm"
    folder.mkdir()
    (folder / spec.data_file).write_text("edited\n")
    generator = builtin_generators()["synth-mmvm"]  # this version's parameters: files were edited
    (folder / MANIFEST_NAME).write_text(json.dumps({"schema": MANIFEST_SCHEMA, "generator": generator, "files": {}}))
    with pytest.raises(DataFormatError, match="does not match the built-in set's manifest"):
        list(iter_task_samples(spec, tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth-mmvm"]
    assert (folder / spec.data_file).read_text() == "edited\n"
