"""Disk full, I/O errors and read-only file systems while `cvbench run` writes its directory.

The run directory lives on a small tmpfs (mounted here when the tests run as root; skipped
otherwise): the disk fills mid-run, the run stops naming samples.jsonl and the error, keeps every
committed record, leaves no torn line, no half JSON and no temp file; after the tmpfs grows, the
same command completes with records and metrics identical to an uninterrupted run. The writer's
own failure path is also driven by /dev/full (ENOSPC from the kernel, no mount needed)."""

from __future__ import annotations

import errno
import json
import math
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cvbench.runner.writer import SamplesWriter
from tests.reliability.conftest import SynthBase, cli_env, cli_run_args, cvbench, replicate
from tests.reliability.test_crash_resume import comparable_records, metrics_of
from tests.wire.faults import FaultInjectingServer, item_marker

N_SAMPLES = 60
PAGE = 4096


class Tmpfs:
    def __init__(self, path: Path) -> None:
        self.path = path

    def resize(self, size: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True, capture_output=True)

    def read_only(self) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(self.path)], check=True, capture_output=True)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Tmpfs]:
    path = tmp_path / "small-fs"
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={64 * PAGE}", "tmpfs", str(path)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here (test_writer_on_dev_full covers the writer)")
    try:
        yield Tmpfs(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def run_args(server: FaultInjectingServer, root: Path, out: Path, cache: Path) -> list[str]:
    return cli_run_args("openai-compatible:fully", server.base_url(), root, out, cache, 4)


def assert_whole_lines(path: Path) -> list[dict[str, object]]:
    raw = path.read_bytes()
    assert not raw or raw.endswith(b"\n"), f"{path} ends in a torn line"
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def test_writer_on_dev_full_stops_and_names_the_file() -> None:
    calls: list[bool] = []
    writer = SamplesWriter(Path("/dev/full"), [], on_error=lambda: calls.append(True))
    writer.put_many([(0, ('{"record_id": "a"}', None))])  # type: ignore[list-item]
    assert writer.error is not None and writer.error.errno == errno.ENOSPC
    assert writer.error.filename == "/dev/full" and calls == [True]
    assert writer.written == 0 and writer.scored == []
    writer.put_many([(1, ('{"record_id": "b"}', None))])  # type: ignore[list-item]
    assert calls == [True] and writer.written == 0  # nothing more is tried after the first failure
    writer.close()


@pytest.mark.slow
def test_disk_full_mid_run_then_rerun_after_space_is_freed(synth_base: SynthBase, tmp_path: Path, tmpfs: Tmpfs) -> None:
    data = replicate(synth_base, tmp_path / "data", N_SAMPLES)
    env = cli_env(tmp_path)
    with FaultInjectingServer(None) as server:
        ref = tmp_path / "ref"
        done = cvbench(run_args(server, data.root, ref, tmp_path / "ref.db"), env, tmp_path)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        config_pages = math.ceil((ref / "config.json").stat().st_size / PAGE)
        samples_pages = math.ceil((ref / "samples.jsonl").stat().st_size / PAGE)
        # the lock file, config.json and its temp copy, and about half of samples.jsonl
        tmpfs.resize(PAGE * (1 + 2 * config_pages + samples_pages // 2))

        out, cache = tmpfs.path / "run", tmp_path / "cache.db"
        full = cvbench(run_args(server, data.root, out, cache), env, tmp_path)
        message = full.stdout + full.stderr
        assert full.returncode != 0, message[-2000:]
        assert "No space left on device" in message and str(out / "samples.jsonl") in message, message[-2000:]
        assert "Traceback" not in message
        kept = assert_whole_lines(out / "samples.jsonl")
        assert 0 < len(kept) < N_SAMPLES
        json.loads((out / "config.json").read_text())
        assert not (out / "results.json").exists()
        assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]

        tmpfs.resize(PAGE * 4096)  # space freed
        answered = {item_marker(str(r["prompt_text"])) for r in kept}
        sent = len(server.requests)
        again = cvbench(run_args(server, data.root, out, cache), env, tmp_path)
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
        resent = [m for r in server.requests[sent:] if (m := item_marker(r.text)) in answered]
        assert not resent, f"answered samples were sent again: {resent[:5]}"
    assert comparable_records(out) == comparable_records(ref)
    assert metrics_of(out) == metrics_of(ref)


def test_read_only_file_system_is_refused_naming_the_path(synth_base: SynthBase, tmp_path: Path, tmpfs: Tmpfs) -> None:
    data = replicate(synth_base, tmp_path / "data", 4)
    tmpfs.read_only()
    with FaultInjectingServer(None) as server:
        out = tmpfs.path / "run"
        result = cvbench(run_args(server, data.root, out, tmp_path / "cache.db"), cli_env(tmp_path), tmp_path)
        assert len(server.requests) == 0
    message = result.stdout + result.stderr
    assert result.returncode != 0 and "Read-only file system" in message and str(out) in message, message[-2000:]
    assert "Traceback" not in message
