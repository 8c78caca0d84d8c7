from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from cvbench.core.types import Sample
from cvbench.tasks.hub import (
    DownloadError,
    UnsafeArchiveError,
    download_crossviewbench,
    download_mmvm,
    safe_extract_tar,
    safe_extract_zip,
    unpack_archives,
)
from cvbench.tasks.loading import iter_task_samples
from cvbench.tasks.registry import get_task
from cvbench.tasks.verify import verify_path
from tests.tasks.builders import cvb_record, make_case, mmvm_row, write_image, write_jsonl, write_tsv
from tests.tasks.hub_server import hub_server


def mmvm_release(tmp_path: Path) -> dict[str, bytes]:
    """The MMVM repo as published: the TSV, and the case folders inside a tar.gz."""
    src = tmp_path / "release"
    make_case(src, "case_001", [2, 1, 3])
    make_case(src, "case_002", [1, 2])
    tsv = write_tsv(
        src / "mllm_match_eval_full.tsv",
        [mmvm_row(1, "case_001", [2, 1, 3], answer_id=3), mmvm_row(2, "case_002", [1, 2], answer_id=None)],
    )
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(src / "match_bench", arcname="match_bench")
    return {"mllm_match_eval_full.tsv": tsv.read_bytes(), "match_bench.tar.gz": buf.getvalue(), "README.md": b"# MMVM"}


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cvbench.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


def test_download_mmvm_from_a_loopback_hub(tmp_path: Path) -> None:
    files = mmvm_release(tmp_path)
    root = tmp_path / "data"
    with hub_server("zhouyik/MMVMBench", files) as (endpoint, log):
        env = {"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"}
        done = cli("data", "download", "mmvm", "--dir", str(root), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(root / "mmvm")
    assert any(line.startswith("GET /datasets/zhouyik/MMVMBench/resolve/") for line in log)
    assert sorted(p.name for p in (root / "mmvm").iterdir()) == ["match_bench", "mllm_match_eval_full.tsv"]
    assert [p.name for p in root.iterdir()] == ["mmvm"]  # no staging folder left behind
    samples = list(iter_task_samples(get_task("mmvm"), root))
    assert [s.answer_region_id for s in samples if isinstance(s, Sample)] == ["3", None]
    assert verify_path(root / "mmvm").passed


def test_offline_download_explains_manual_placement(tmp_path: Path) -> None:
    root = tmp_path / "data"
    env = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    done = cli("data", "download", "mmvm", "--dir", str(root), env=env)
    assert done.returncode == 1
    assert "could not download dataset 'zhouyik/MMVMBench'" in done.stderr
    assert f"{root / 'mmvm'}/mllm_match_eval_full.tsv" in done.stderr
    assert f"{root / 'mmvm'}/match_bench/case_*/FRAME00.jpg" in done.stderr
    assert not (root / "mmvm").exists() and list(root.iterdir()) == []


def test_mmvm_from_a_local_copy_with_a_zip_of_cases(tmp_path: Path) -> None:
    files = mmvm_release(tmp_path)
    local = tmp_path / "copy"
    local.mkdir()
    (local / "mllm_match_eval_full.tsv").write_bytes(files["mllm_match_eval_full.tsv"])
    with zipfile.ZipFile(local / "cases.zip", "w") as zf:  # the case folders without their parent
        for path in sorted((tmp_path / "release" / "match_bench").rglob("*")):
            zf.write(path, path.relative_to(tmp_path / "release" / "match_bench").as_posix())
    root = tmp_path / "data"
    target = download_mmvm(root, from_dir=local)
    assert (target / "match_bench" / "case_001" / "FRAME01_CAND.json").is_file()
    assert (local / "cases.zip").is_file()  # the source folder is never modified
    assert verify_path(target).passed
    with pytest.raises(DownloadError, match="already holds data; pass --force"):
        download_mmvm(root, from_dir=local)
    assert download_mmvm(root, from_dir=local, force=True) == target


def test_crossviewbench_from_dir_copy_rename_and_link(tmp_path: Path) -> None:
    src = tmp_path / "cvb_release"
    write_image(src / "frames" / "a.jpg")
    write_image(src / "frames" / "b.jpg", seed=1)
    write_jsonl(src / "CrossViewBench_test.jsonl", [cvb_record(1, ["frames/a.jpg", "frames/b.jpg"])])
    root = tmp_path / "data"
    target = download_crossviewbench(root, from_dir=src)
    assert (target / "crossviewbench.jsonl").is_file() and not (target / "CrossViewBench_test.jsonl").exists()
    assert verify_path(target).passed
    with pytest.raises(DownloadError, match="--link needs --from-dir FOLDER holding crossviewbench.jsonl"):
        download_crossviewbench(root, from_dir=src, link=True, force=True)
    (src / "CrossViewBench_test.jsonl").rename(src / "crossviewbench.jsonl")
    linked = download_crossviewbench(root, from_dir=src, link=True, force=True)
    assert linked.is_symlink() and linked.resolve() == src.resolve()
    assert [s.sample_id for s in iter_task_samples(get_task("crossviewbench"), root)] == ["1"]
    with pytest.raises(DownloadError, match="exactly one source"):
        download_crossviewbench(root)


def test_crossviewbench_several_jsonl_need_a_name(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_jsonl(src / "a.jsonl", [])
    write_jsonl(src / "b.jsonl", [])
    with pytest.raises(DownloadError, match="found a.jsonl, b.jsonl; name it with --file") as info:
        download_crossviewbench(tmp_path / "data", from_dir=src)
    assert "To place CrossViewBench by hand" in str(info.value)
    assert not (tmp_path / "data" / "crossviewbench").exists()
    target = download_crossviewbench(tmp_path / "data", from_dir=src, file_name="b.jsonl")
    assert (target / "crossviewbench.jsonl").is_file() and (target / "a.jsonl").is_file()


@pytest.mark.parametrize("name", ["../evil.txt", "/abs/evil.txt", "ok/../../evil.txt", "C:/evil.txt"])
def test_zip_members_escaping_are_refused_before_writing(tmp_path: Path, name: str) -> None:
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("fine.txt", "x")
        zf.writestr(name, "evil")
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match="outside"):
        safe_extract_zip(archive, dest)
    assert list(dest.iterdir()) == [] and not (tmp_path / "evil.txt").exists()


def test_tar_links_and_escapes_are_refused(tmp_path: Path) -> None:
    def tar_with(member: tarfile.TarInfo, data: bytes = b"") -> Path:
        path = tmp_path / f"t{len(list(tmp_path.iterdir()))}.tar"
        with tarfile.open(path, "w") as tf:
            member.size = len(data)
            tf.addfile(member, io.BytesIO(data))
        return path

    link = tarfile.TarInfo("match_bench/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match="is a link"):
        safe_extract_tar(tar_with(link), dest)
    with pytest.raises(UnsafeArchiveError, match="outside"):
        safe_extract_tar(tar_with(tarfile.TarInfo("../up.txt"), b"x"), dest)
    assert list(dest.iterdir()) == []


def test_nested_archives_are_unpacked(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("deep/file.txt", "hi")
    with tarfile.open(tmp_path / "outer.tar.gz", "w:gz") as tf:
        info = tarfile.TarInfo("inner.zip")
        info.size = len(inner.getvalue())
        tf.addfile(info, io.BytesIO(inner.getvalue()))
    done = unpack_archives(tmp_path)
    assert [p.name for p in done] == ["outer.tar.gz", "inner.zip"]
    assert (tmp_path / "deep" / "file.txt").read_text() == "hi"


def test_download_crossviewbench_from_a_loopback_hub_repo(tmp_path: Path) -> None:
    src = tmp_path / "release"
    write_image(src / "frames" / "a.jpg")
    write_image(src / "frames" / "b.jpg", seed=1)
    write_jsonl(src / "bench.jsonl", [cvb_record(i, ["frames/a.jpg", "frames/b.jpg"]) for i in range(3)])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(src.rglob("*")):
            zf.write(path, "CrossViewBench/" + path.relative_to(src).as_posix())
    root = tmp_path / "data"
    with hub_server("someone/CrossViewBench", {"CrossViewBench.zip": buf.getvalue()}) as (endpoint, _):
        env = {"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"}
        done = cli(
            "data", "download", "crossviewbench", "--repo", "someone/CrossViewBench", "--dir", str(root), env=env
        )
    assert done.returncode == 0, done.stderr
    target = root / "crossviewbench"
    assert sorted(p.name for p in target.iterdir()) == ["crossviewbench.jsonl", "frames"]
    assert [s.sample_id for s in iter_task_samples(get_task("crossviewbench"), root)] == ["0", "1", "2"]
