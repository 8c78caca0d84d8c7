"""The local executor: a 4-run sweep gives the run folders of the same 4 `cvbench run`
commands; a rerun has nothing left to do."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.sweep.conftest import (
    FourRuns,
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


def test_local_sweep_equals_the_runs_done_one_by_one(four_runs: FourRuns, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    sweep = four_runs.sweep_file(tmp_path / "four.toml", out, shards=1)
    env = sweep_env(tmp_path)
    done = cvbench_cli(["sweep", str(sweep)], env, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_runs(out, four_runs.runs_root)
    assert "[sweep] runs 4 done, 0 running, 0 left; 48 records" in done.stderr
    status = json.loads((out / ".sweep" / "four.status.json").read_text())
    assert status["done"] == 4 and status["left"] == 0 and status["records"] == 48

    again = cvbench_cli(["sweep", str(sweep)], env, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 records" in again.stderr.splitlines()[-1]  # every run was already complete
    assert_same_runs(out, four_runs.runs_root)


@pytest.mark.slow
def test_local_sweep_killed_then_rerun_resumes(sweep_base, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """kill -9 of a local sweep (2 shards per run) mid-run; the rerun finishes with the records of
    an uninterrupted `cvbench run` and sends again at most what was in flight."""
    n, concurrency = 30, 2

    def slow(request: ReceivedRequest) -> str:
        time.sleep(0.2)
        return "A"

    data = make_data(sweep_base, tmp_path / "data", n)
    env = sweep_env(tmp_path)
    with OpenAIWireServer(answer=slow) as server:
        ref_args = ["run", "--model", "openai-compatible:served", "--base-url", server.base_url()]
        ref_args += ["--task", "crossviewbench", "--data-dir", str(data.root), "--cache", str(tmp_path / "ref.db")]
        ref = cvbench_cli([*ref_args, "--concurrency", str(concurrency), "--no-progress"], env, tmp_path)
        assert ref.returncode == 0, ref.stderr[-2000:]
        (reference,) = [p.parent for p in (tmp_path / "runs").glob("*/*/results.json")]
        body = (
            f'out = "{tmp_path / "swept"}"\ndata_dir = "{data.root}"\ncache = "{tmp_path / "cache.db"}"\n'
            f"shards = 2\nconcurrency = {concurrency}\n"
            f'[[models]]\nspec = "openai-compatible:served"\nbase_urls = ["{server.base_url()}"]\n'
            '[matrix]\ntasks = ["crossviewbench"]\n'
        )
        sweep = write_sweep(tmp_path / "wire.toml", body)
        start = len(server.requests)
        proc = subprocess.Popen(
            [sys.executable, "-m", "cvbench.cli", "sweep", str(sweep)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while len(server.requests) - start < n // 2 + 3:  # into the second shard
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
        finally:
            proc.kill()
            proc.wait()
        again = cvbench_cli(["sweep", str(sweep)], env, tmp_path)
        assert again.returncode == 0, again.stderr[-3000:]
        sent = server.requests[start:]
    run_dir = tmp_path / "swept" / reference.relative_to(tmp_path / "runs")
    assert comparable_records(run_dir) == comparable_records(reference)
    assert metrics_of(run_dir) == metrics_of(reference)
    assert len({r.text for r in sent}) == n
    assert len(sent) <= n + concurrency, len(sent)
