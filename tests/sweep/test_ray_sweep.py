"""The Ray executor on a real local Ray cluster (`ray start --head`, 2 CPUs).

- a 4-run sweep, each run in 2 shards on 2 actors per model, gives the run folders of the same
  4 `cvbench run` commands (records in the same order, same metrics);
- a worker process killed (-9) mid-sweep: Ray restarts it, its shard resumes, nothing is lost
  and at most its in-flight requests are sent again (counted at the loopback OpenAI server);
- the driver killed (-9) mid-sweep and started again: the sweep resumes and ends with the
  records of an uninterrupted `cvbench run`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.reliability.conftest import ReplicatedData
from tests.sweep.conftest import (
    FourRuns,
    RayCluster,
    assert_same_runs,
    comparable_records,
    cvbench_cli,
    make_data,
    metrics_of,
    sweep_env,
    write_sweep,
)
from tests.wire.openai_wire import OpenAIWireServer
from tests.wire.server import ReceivedRequest

pytestmark = pytest.mark.slow

N = 40
CONCURRENCY = 2
WORKERS = 2
DELAY_S = 0.4  # per answer: a shard takes seconds, so the kills land while requests are in flight


RESUMED = re.compile(r"\(\d+ new, [1-9]\d* resumed\)")


def slow_answer(request: ReceivedRequest) -> str:
    time.sleep(DELAY_S)
    return "A"


def test_ray_sweep_equals_the_runs_done_one_by_one(
    four_runs: FourRuns, ray_cluster: RayCluster, tmp_path: Path
) -> None:
    out = tmp_path / "runs"
    sweep = four_runs.sweep_file(tmp_path / "four.toml", out, shards=2)
    done = cvbench_cli(
        ["sweep", str(sweep), "--executor", "ray", "--ray-address", ray_cluster.address], sweep_env(tmp_path), tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_runs(out, four_runs.runs_root)
    # each run was evaluated as two shards, in the folders `cvbench run --shard I/2` names
    assert len(list(out.glob("*/*_shard[01]of2/samples.jsonl"))) == 8


@dataclass(frozen=True)
class WireSetup:
    server: OpenAIWireServer
    data: ReplicatedData
    reference: Path  # an uninterrupted `cvbench run` of the same options (its own cache)
    relative: Path  # the run folder's path under a runs root


@pytest.fixture(scope="module")
def wire(sweep_base, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireSetup]:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("wire-ref")
    data = make_data(sweep_base, tmp / "data", N)
    with OpenAIWireServer(answer=slow_answer) as server:
        args = [
            "run",
            "--model",
            "openai-compatible:served",
            "--base-url",
            server.base_url(),
            "--task",
            "crossviewbench",
        ]
        args += ["--data-dir", str(data.root), "--cache", str(tmp / "cache.db"), "--concurrency", str(CONCURRENCY)]
        done = cvbench_cli([*args, "--no-progress"], sweep_env(tmp), tmp)
        assert done.returncode == 0, done.stderr[-2000:]
        (reference,) = [p.parent for p in (tmp / "runs").glob("*/*/results.json")]
        yield WireSetup(server, data, reference, reference.relative_to(tmp / "runs"))


def wire_sweep(setup: WireSetup, tmp: Path) -> Path:
    body = f"""
out = "{tmp / "runs"}"
data_dir = "{setup.data.root}"
cache = "{tmp / "cache.db"}"
shards = 2
concurrency = {CONCURRENCY}

[[models]]
spec = "openai-compatible:served"
base_urls = ["{setup.server.base_url()}"]
workers = {WORKERS}

[matrix]
tasks = ["crossviewbench"]
"""
    return write_sweep(tmp / "wire.toml", body)


def sweep_popen(args: list[str], tmp: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cvbench.cli", *args],
        env=sweep_env(tmp),
        cwd=tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(condition, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def running_worker_pid(status_file: Path) -> int | None:
    try:
        status = json.loads(status_file.read_text())
    except (OSError, ValueError):
        return None
    pids = [v["pid"] for v in status.get("running", {}).values() if "pid" in v]
    return pids[0] if pids else None


def assert_like_reference(setup: WireSetup, run_dir: Path) -> None:
    assert comparable_records(run_dir) == comparable_records(setup.reference)
    assert metrics_of(run_dir) == metrics_of(setup.reference)
    assert len(comparable_records(run_dir)) == N


def test_killed_worker_loses_nothing_and_resends_only_in_flight(
    wire: WireSetup, ray_cluster: RayCluster, tmp_path: Path
) -> None:
    sweep = wire_sweep(wire, tmp_path)
    start = len(wire.server.requests)
    args = ["sweep", str(sweep), "--executor", "ray", "--ray-address", ray_cluster.address]
    proc = sweep_popen(args, tmp_path)
    status_file = tmp_path / "runs" / ".sweep" / "wire.status.json"
    try:
        wait_for(lambda: len(wire.server.requests) - start >= 10 and running_worker_pid(status_file) is not None)
        os.kill(running_worker_pid(status_file) or 0, signal.SIGKILL)
        output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output[-3000:]
    assert RESUMED.search(output), output[-3000:]  # the killed worker's shard went on from its records
    assert_like_reference(wire, tmp_path / "runs" / wire.relative)
    sent = wire.server.requests[start:]
    assert len({r.text for r in sent}) == N  # every sample asked, each prompt is unique
    # the killed worker's shard resumed from its records and the cache: at most the requests it
    # had in flight went out twice
    assert len(sent) <= N + CONCURRENCY, len(sent)

    again = cvbench_cli(args, sweep_env(tmp_path), tmp_path)  # finished: a rerun sends nothing
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(wire.server.requests) == start + len(sent)


def test_driver_killed_then_restarted_resumes(wire: WireSetup, ray_cluster: RayCluster, tmp_path: Path) -> None:
    sweep = wire_sweep(wire, tmp_path)
    start = len(wire.server.requests)
    args = ["sweep", str(sweep), "--executor", "ray", "--ray-address", ray_cluster.address]
    proc = sweep_popen(args, tmp_path)
    try:
        wait_for(lambda: len(wire.server.requests) - start >= 10)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    shards = list((tmp_path / "runs").glob("*/*_shard*/samples.jsonl"))
    assert shards and not (tmp_path / "runs" / wire.relative / "results.json").exists()  # killed mid-sweep

    done = cvbench_cli(args, sweep_env(tmp_path), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert RESUMED.search(done.stderr), done.stderr[-3000:]
    assert_like_reference(wire, tmp_path / "runs" / wire.relative)
    sent = wire.server.requests[start:]
    assert len({r.text for r in sent}) == N
    # what was in flight on the two workers when the driver (and with it its actors) died
    assert len(sent) <= N + WORKERS * CONCURRENCY, len(sent)
