"""One writer per run directory (cvbench/runner/runlock.py) and unique temp files.

Two real `cvbench run` processes on one `--out`: the second is refused while the first still
runs, naming the first's pid and host; the first finishes with every record once. A kill -9
leaves no lock behind (the kernel drops it)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cvbench.rundir.format import iter_records, unique_temp_path, write_bytes_atomic
from cvbench.runner.runlock import LOCK_FILE, RunDirBusyError, RunDirLock, read_holder
from tests.reliability.conftest import (
    SynthBase,
    cli_env,
    cli_run_args,
    cvbench,
    cvbench_popen,
    replicate,
)
from tests.wire.faults import FaultInjectingServer, FaultSchedule

HOLD = """
import sys, time
from cvbench.runner.runlock import RunDirLock
lock = RunDirLock.acquire(sys.argv[1])
print("locked", flush=True)
time.sleep(600)
"""


def run_args(server: FaultInjectingServer, root: Path, out: Path, cache: Path) -> list[str]:
    return cli_run_args("openai-compatible:locky", server.base_url(), root, out, cache, 2)


def wait_for_holder(run_dir: Path, proc: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        holder = read_holder(run_dir / LOCK_FILE)
        if holder.pid is not None:
            return holder.pid
        time.sleep(0.02)
    raise AssertionError("the first run never took the lock")


def test_lock_is_exclusive_across_processes_and_dies_with_its_holder(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirBusyError) as err:
            RunDirLock.acquire(run_dir)
        assert f"pid {holder.pid}" in str(err.value) and socket.gethostname() in str(err.value)
        assert str(run_dir) in str(err.value)
    finally:
        holder.kill()  # SIGKILL: no cleanup code runs in the holder
        holder.wait(timeout=30)
    assert (run_dir / LOCK_FILE).exists()  # the file stays; the lock went with the process
    with RunDirLock.acquire(run_dir) as lock:
        assert read_holder(lock.path).pid == os.getpid()
    assert read_holder(run_dir / LOCK_FILE).pid is None  # released: names nobody


def test_second_run_on_a_busy_directory_is_refused_at_once(synth_base: SynthBase, tmp_path: Path) -> None:
    data = replicate(synth_base, tmp_path / "data", 40)
    env = cli_env(tmp_path)
    out = tmp_path / "run"
    # every answer slow: the first run is still busy when the second starts (0.4 s: JPEG prompts
    # render fast, and the second process's start-up takes seconds on a loaded machine)
    with FaultInjectingServer(FaultSchedule(seed=1, rate=1.0, mix={"slow": 1.0}, slow_s=0.4)) as server:
        first = cvbench_popen(run_args(server, data.root, out, tmp_path / "a.db"), env, tmp_path)
        try:
            pid = wait_for_holder(out, first)
            assert pid == first.pid
            sent_before = len(server.requests)
            second = cvbench(run_args(server, data.root, out, tmp_path / "b.db"), env, tmp_path)
            assert first.poll() is None, "the first run ended before the second was tried"
            assert second.returncode != 0
            message = second.stdout + second.stderr
            assert f"pid {first.pid}" in message and socket.gethostname() in message, message[-2000:]
            assert "Traceback" not in message
            # the refused run sent nothing: every request came from the first (concurrency 2)
            assert not (tmp_path / "b.db").exists()
            assert len(server.requests) - sent_before <= 40
            text = first.communicate(timeout=300)[0]
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        assert first.returncode == 0, text[-3000:]
        ids = [r.record_id for r in iter_records(out)]
        assert len(ids) == len(set(ids)) == 40
        assert json.loads((out / "results.json").read_text())["status"] == "complete"
        assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))
        # once it has finished the directory is free again: a rerun resumes (nothing left to send)
        sent = len(server.requests)
        again = cvbench(run_args(server, data.root, out, tmp_path / "a.db"), env, tmp_path)
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
        assert len(server.requests) == sent


def test_temp_files_are_unique_per_writer_and_never_left_behind(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    names = {unique_temp_path(target).name for _ in range(20)}
    assert len(names) == 20 and all(n.startswith(f".results.json.{os.getpid()}.") for n in names)
    for p in tmp_path.glob(".*.tmp"):
        p.unlink()
    write_bytes_atomic(target, b"old")
    with pytest.raises(OSError) as err:  # a directory where the temp file must go: the write fails
        write_bytes_atomic(tmp_path / "missing" / "x.json", b"new")
    assert "x.json" in str(err.value)
    assert target.read_bytes() == b"old" and not list(tmp_path.glob(".*.tmp"))
