"""Shared pieces of the sweep tests: a small replicated CrossViewBench set (its questions carry
an `[item <id>]` marker, so every prompt is unique), sweep files, record comparison, and a real
local Ray cluster (`ray start --head --block` in a temporary folder, ended with its children)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import REPO, ReplicatedData, SynthBase, cli_env, replicate

TIMINGS = ("latency_s", "cached", "attempts")


@pytest.fixture(scope="session")
def sweep_base(tmp_path_factory: pytest.TempPathFactory) -> SynthBase:
    from cvbench.tasks import synthetic

    folder = tmp_path_factory.mktemp("sweep-synth") / "crossviewbench"
    path = synthetic.generate_crossviewbench(folder, per_type=2, seed=0)
    lines = tuple(ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip())
    return SynthBase(folder=folder, lines=lines)


def make_data(base: SynthBase, root: Path, n: int) -> ReplicatedData:
    return replicate(base, root, n)


def write_sweep(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def comparable_records(run_dir: Path) -> list[dict[str, Any]]:
    """samples.jsonl in file order, without the timing fields (latency, cache hit, attempts)."""
    out = []
    for line in (run_dir / "samples.jsonl").read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        for key in TIMINGS:
            data.pop(key, None)
        out.append(data)
    return out


def metrics_of(run_dir: Path) -> dict[str, Any]:
    results = json.loads((run_dir / "results.json").read_text())
    return {"status": results["status"], "overall": results["overall"], "slices": results["slices"]}


def sweep_env(tmp: Path, **extra: str) -> dict[str, str]:
    return cli_env(tmp, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled", **extra)


def cvbench_cli(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cvbench.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        check=False,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class RayCluster:
    address: str
    temp_dir: Path


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    """A head node with 2 CPUs; its temporary folder is short (Ray's socket paths are limited)."""
    pytest.importorskip("ray", reason="the Ray executor tests need cvbench[ray]")
    temp_dir = Path(tempfile.mkdtemp(prefix="cvr", dir="/tmp"))
    port = free_port()
    env = sweep_env(tmp_path_factory.mktemp("ray-env"))
    ray_bin = Path(sys.executable).parent / "ray"
    proc = subprocess.Popen(
        [
            str(ray_bin),
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=2",
            "--num-gpus=0",
            f"--temp-dir={temp_dir}",
            "--include-dashboard=false",
            "--disable-usage-stats",
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start failed: {proc.stdout.read() if proc.stdout else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError("ray start: the head node did not come up in 120 s")
    try:
        yield RayCluster(address, temp_dir)
    finally:
        # --block ends the processes it started when it is interrupted
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        shutil.rmtree(temp_dir, ignore_errors=True)


FOUR_MODELS = ("first-option", "random")
FOUR_STYLES = ("mask", "contour")


@dataclass(frozen=True)
class FourRuns:
    """The same 4 runs done one by one with `cvbench run` (folders named by cvbench run)."""

    data: ReplicatedData
    runs_root: Path  # <cwd>/runs of those commands

    def sweep_file(self, path: Path, out: Path, shards: int) -> Path:
        models = "".join(f'[[models]]\nspec = "{m}"\nworkers = 2\nunits_per_worker = 2\n' for m in FOUR_MODELS)
        styles = ", ".join(f'"{s}"' for s in FOUR_STYLES)
        body = (
            f'out = "{out}"\ndata_dir = "{self.data.root}"\ncache = "{out.parent / "cache.db"}"\n'
            f"shards = {shards}\nconcurrency = 2\n{models}"
            f'[matrix]\ntasks = ["crossviewbench"]\nstyles = [{styles}]\n'
        )
        return write_sweep(path, body)


@pytest.fixture(scope="session")
def four_runs(sweep_base: SynthBase, tmp_path_factory: pytest.TempPathFactory) -> FourRuns:
    tmp = tmp_path_factory.mktemp("four-direct")
    data = make_data(sweep_base, tmp / "data", 12)
    env = sweep_env(tmp)
    for model in FOUR_MODELS:
        for style in FOUR_STYLES:
            args = ["run", "--model", model, "--task", "crossviewbench", "--data-dir", str(data.root)]
            args += ["--style", style, "--cache", str(tmp / "cache.db"), "--concurrency", "2", "--no-progress"]
            done = cvbench_cli(args, env, tmp)
            assert done.returncode == 0, done.stderr[-2000:]
    return FourRuns(data, tmp / "runs")


def assert_same_runs(sweep_root: Path, direct_root: Path) -> None:
    """Every run folder of the direct commands exists under the sweep's root, with the same
    records in the same order and the same metrics."""
    direct = sorted(p.parent.relative_to(direct_root) for p in direct_root.glob("*/*/results.json"))
    assert len(direct) == 4
    swept = sorted(p.parent.relative_to(sweep_root) for p in sweep_root.glob("*/*/results.json"))
    assert [d for d in swept if "shard" not in d.name] == direct
    for rel in direct:
        assert comparable_records(sweep_root / rel) == comparable_records(direct_root / rel), rel
        assert metrics_of(sweep_root / rel) == metrics_of(direct_root / rel), rel
