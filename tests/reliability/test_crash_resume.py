"""Crash safety of `cvbench run`: SIGKILL at seeded random points, then the same command.

(`tests/runner/test_runner.py::test_kill_9_mid_run_then_resume` kills once, without faults;
this kills repeatedly at seeded points while the server injects faults and the response cache
is shared, and adds two concurrent runs on one cache.)
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cvbench.rundir.format import iter_records
from tests.reliability.conftest import (
    ReplicatedData,
    SynthBase,
    cli_env,
    cli_run_args,
    cvbench,
    cvbench_popen,
    replicate,
)
from tests.wire.faults import FaultInjectingServer, FaultSchedule, item_marker

N_SAMPLES = 90
KILLS = 3
TIMINGS = ("latency_s", "cached", "attempts")
RETRY_ENV = {
    "CVBENCH_TIMEOUT_S": "2",
    "CVBENCH_MAX_RETRIES": "8",
    "CVBENCH_RETRY_BASE_DELAY_S": "0.05",
    "CVBENCH_RETRY_MAX_DELAY_S": "0.3",
}
# only retryable faults (with 8 retries nothing ends as an error), plus slow answers so that the
# kills land while requests are in flight
CRASH_MIX = {"http_429_retry_after": 1.0, "http_503": 1.0, "reset": 1.0, "slow": 3.0}


def run_args(server: FaultInjectingServer, data: ReplicatedData, out: Path, cache: Path) -> list[str]:
    return cli_run_args("openai-compatible:crashy", server.base_url(), data.root, out, cache, 4)


def comparable_records(run_dir: Path) -> list[dict[str, Any]]:
    out = []
    for line in (run_dir / "samples.jsonl").read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        for key in TIMINGS:
            data.pop(key, None)
        out.append(data)
    return out


def metrics_of(run_dir: Path) -> dict[str, Any]:
    results = json.loads((run_dir / "results.json").read_text())
    evaluations = {k: {"overall": v["overall"], "slices": v["slices"]} for k, v in results["evaluations"].items()}
    return {
        "status": results["status"],
        "overall": results["overall"],
        "evaluations": evaluations,
        "slices": results["slices"],
    }


def integrity(db: Path) -> str:
    con = sqlite3.connect(db)
    try:
        return str(con.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        con.close()


def recorded_markers(run_dir: Path) -> set[str]:
    if not (run_dir / "samples.jsonl").exists():
        return set()
    return {m for r in iter_records(run_dir) if r.parse_status == "parsed" and (m := item_marker(r.prompt_text))}


@pytest.mark.slow
def test_kill_9_at_seeded_points_then_resume(synth_base: SynthBase, tmp_path: Path) -> None:
    data = replicate(synth_base, tmp_path / "data", N_SAMPLES)
    env = cli_env(tmp_path, **RETRY_ENV)
    with FaultInjectingServer(FaultSchedule(seed=5, rate=0.3, mix=CRASH_MIX, slow_s=0.3)) as server:
        ref = tmp_path / "ref"
        done = cvbench(run_args(server, data, ref, tmp_path / "ref-cache.db"), env, tmp_path)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

        out, cache = tmp_path / "run", tmp_path / "cache.db"
        # requests each session may send before its kill; together well under N_SAMPLES, so no
        # session can finish first
        kill_points = np.random.default_rng(2026).integers(3, N_SAMPLES // (KILLS + 1), size=KILLS).tolist()
        sessions: list[tuple[int, int, set[str]]] = []  # (first request index, end index, markers recorded before)
        for k in kill_points:
            before = recorded_markers(out)
            start = len(server.requests)
            proc = cvbench_popen(run_args(server, data, out, cache), env, tmp_path)
            deadline = time.monotonic() + 120
            while len(server.requests) - start < k and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            proc.kill()  # SIGKILL: no handler runs, nothing is flushed on the way out
            proc.wait(timeout=30)
            sessions.append((start, len(server.requests), before))
            assert not (out / "results.json").exists(), f"the run finished before the kill after {k} requests"
            if cache.exists():
                assert integrity(cache) == "ok"
        assert recorded_markers(out), "nothing was recorded before the kills"

        before = recorded_markers(out)
        start = len(server.requests)
        final = cvbench(run_args(server, data, out, cache), env, tmp_path)
        assert final.returncode == 0, final.stdout[-2000:] + final.stderr[-2000:]
        sessions.append((start, len(server.requests), before))

        requests = server.requests
        for first, end, recorded in sessions:
            resent = [m for r in requests[first:end] if (m := item_marker(r.text)) in recorded]
            assert not resent, f"requests for already recorded samples were sent again: {resent[:5]}"
        assert integrity(cache) == "ok"
        assert comparable_records(out) == comparable_records(ref)
        assert metrics_of(out) == metrics_of(ref)
        results = json.loads((out / "results.json").read_text())
        assert results["status"] == "complete" and results["run"]["resumed_records"] > 0
        config = json.loads((out / "config.json").read_text())
        assert len(config["resumed"]) == KILLS


@pytest.mark.slow
def test_two_runs_share_one_cache_at_the_same_time(synth_base: SynthBase, tmp_path: Path) -> None:
    data = replicate(synth_base, tmp_path / "data", 60)
    env = cli_env(tmp_path, **RETRY_ENV)
    cache = tmp_path / "shared.db"
    with FaultInjectingServer(FaultSchedule(seed=9, rate=0.3, mix={"slow": 1.0}, slow_s=0.05)) as server:
        a, b = tmp_path / "a", tmp_path / "b"
        procs = [cvbench_popen(run_args(server, data, d, cache), env, tmp_path) for d in (a, b)]
        outputs = [p.communicate(timeout=300)[0] for p in procs]
        for p, text in zip(procs, outputs):
            assert p.returncode == 0, text[-3000:]
        assert integrity(cache) == "ok"
        assert comparable_records(a) == comparable_records(b)
        assert metrics_of(a) == metrics_of(b)
        ids = [r.record_id for r in iter_records(a)]
        assert len(ids) == len(set(ids)) == 60
        # whatever one run fetched, the other may have taken from the cache; nothing is fetched thrice
        sent: dict[str, int] = {}
        for r in server.requests:
            sent[item_marker(r.text) or ""] = sent.get(item_marker(r.text) or "", 0) + 1
        assert max(sent.values()) <= 2
        # a third run on the same cache sends nothing at all
        before = len(server.requests)
        third = cvbench(run_args(server, data, tmp_path / "c", cache), env, tmp_path)
        assert third.returncode == 0, third.stdout[-2000:] + third.stderr[-2000:]
        assert len(server.requests) == before
        assert all(r.cached for r in iter_records(tmp_path / "c"))
        assert comparable_records(tmp_path / "c") == comparable_records(a)
