"""The built-in synthetic sets are the same files on every install: generated here with the
real generator, checked against the manifest shipped in the package (CI runs this under the
locked and under the lowest allowed library versions), and refused by name when edited."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cvbench.tasks.loading import DataFormatError, iter_task_samples, task_data_dir
from cvbench.tasks.registry import get_task
from cvbench.tasks.synthetic.manifest import _VERIFIED, manifest_for, shipped_manifest


@pytest.fixture(scope="module")
def generated_mmvm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("builtin")
    spec = get_task("synth-mmvm")
    list(iter_task_samples(spec, root))  # first use: generates, then verifies
    return task_data_dir(spec, root)


def test_generated_mmvm_set_equals_the_shipped_manifest_byte_for_byte(generated_mmvm: Path) -> None:
    assert manifest_for(generated_mmvm) == shipped_manifest()["synth-mmvm"]


@pytest.fixture(scope="module")
def generated_cvb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("builtin-cvb")
    spec = get_task("synth-crossviewbench")
    list(iter_task_samples(spec, root))
    return task_data_dir(spec, root)


def test_generated_crossviewbench_set_equals_the_shipped_manifest(generated_cvb: Path) -> None:
    assert manifest_for(generated_cvb) == shipped_manifest()["synth-crossviewbench"]


def _copy(generated: Path, tmp_path: Path, name: str = "synth-mmvm") -> Path:
    root = tmp_path / "data"
    shutil.copytree(generated, root / name)
    _VERIFIED.clear()
    return root


def test_an_edited_image_is_refused_naming_the_file(generated_mmvm: Path, tmp_path: Path) -> None:
    root = _copy(generated_mmvm, tmp_path)
    target = root / "synth-mmvm" / "match_bench" / "case_0003" / "FRAME01_ORI.jpg"
    pixels = np.asarray(Image.open(target).convert("RGB")).copy()
    pixels[0, 0] = 255 - pixels[0, 0]
    Image.fromarray(pixels).save(target, format="JPEG", quality=100)
    with pytest.raises(DataFormatError, match=r"case_0003/FRAME01_ORI\.jpg: pixels differ from the manifest"):
        list(iter_task_samples(get_task("synth-mmvm"), root))
    assert target.exists()  # never regenerated over the user's files


def test_an_edited_question_file_is_refused_naming_it(generated_mmvm: Path, tmp_path: Path) -> None:
    root = _copy(generated_mmvm, tmp_path)
    tsv = root / "synth-mmvm" / "mllm_match_eval_full.tsv"
    tsv.write_bytes(tsv.read_bytes().replace(b"\tA\t", b"\tB\t", 1))
    with pytest.raises(DataFormatError, match=r"mllm_match_eval_full\.tsv: content differs from the manifest"):
        list(iter_task_samples(get_task("synth-mmvm"), root))


def test_same_pixels_in_other_bytes_pass(generated_cvb: Path, tmp_path: Path) -> None:
    """A PNG written by another zlib build differs in bytes, not pixels: still the same set."""
    root = _copy(generated_cvb, tmp_path, "synth-crossviewbench")
    view = min((root / "synth-crossviewbench" / "images").rglob("*.png"))
    pixels = np.asarray(Image.open(view).convert("RGB"))
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    assert buf.getvalue() != view.read_bytes()
    view.write_bytes(buf.getvalue())
    assert len(list(iter_task_samples(get_task("synth-crossviewbench"), root))) == 102


def test_a_missing_file_is_named(generated_mmvm: Path, tmp_path: Path) -> None:
    root = _copy(generated_mmvm, tmp_path)
    (root / "synth-mmvm" / "match_bench" / "case_0001" / "FRAME00.json").unlink()
    with pytest.raises(DataFormatError, match=r"case_0001/FRAME00\.json: missing"):
        list(iter_task_samples(get_task("synth-mmvm"), root))


def test_a_set_generated_with_other_parameters_is_checked_against_its_own_manifest(tmp_path: Path) -> None:
    from cvbench.tasks import synthetic

    folder = tmp_path / "synth-crossviewbench"
    synthetic.generate_crossviewbench(folder, per_type=1, seed=7)
    spec = get_task("synth-crossviewbench")
    assert len(list(iter_task_samples(spec, tmp_path))) == 17
    _VERIFIED.clear()
    view = min((folder / "images").rglob("*.png"))
    pixels = np.asarray(Image.open(view).convert("RGB")).copy()
    pixels[3, 3] = 255 - pixels[3, 3]
    Image.fromarray(pixels).save(view)
    with pytest.raises(DataFormatError, match=rf"{view.name}: pixels differ from the manifest"):
        list(iter_task_samples(spec, tmp_path))


def test_a_set_without_manifest_is_refused_not_regenerated(generated_mmvm: Path, tmp_path: Path) -> None:
    root = _copy(generated_mmvm, tmp_path)
    (root / "synth-mmvm" / "MANIFEST.json").unlink()
    with pytest.raises(DataFormatError, match=r"MANIFEST\.json: missing.*Move the folder away"):
        list(iter_task_samples(get_task("synth-mmvm"), root))
    assert (root / "synth-mmvm" / "mllm_match_eval_full.tsv").is_file()
