"""Chaos campaigns against `cvbench run` (a benchmark script, not a test): figures a user can trust.

    .venv/bin/python bench/chaos.py [--n 500] [--kills 10]      # writes bench/results/chaos.json

Every campaign runs the real CLI in subprocesses against the loopback fault-injecting
OpenAI-compatible server of tests/wire (deterministic answer per sample, seeded faults), on a
replicated synthetic CrossViewBench set whose questions carry an `[item <id>]` marker, and
compares the final run directory with one uninterrupted, fault-free run of the same command:

    faults-20 / faults-50   20% and 50% of requests faulted (the tests/wire mix: 429 with and
                            without Retry-After, 500/502/503, hangs past the timeout, resets,
                            truncated and malformed JSON, empty choices, slow), then reruns until
                            no error record is left
    kill-9                  SIGKILL at seeded random moments, concurrency 8, a rerun after each
    sigint                  one SIGINT mid-run (exit 130, status cancelled), then the same command
    two-runs-one-dir        a second `cvbench run` on a busy --out
    disk-full               the run directory on a small tmpfs that fills mid-run (needs root to
                            mount; reported as not run otherwise), then the tmpfs grows and the
                            command is rerun
    corrupt-cache           garbage pages written over the response cache, `cvbench cache repair`,
                            then the command is rerun

Each reports records, duplicate records, errors scored as answers, requests re-sent for samples
already answered (recorded) before that session, requests in flight at each kill and whether the
final records and metrics equal the uninterrupted run's.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import socketserver
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH_DIR))

from common import machine, write_result

from tests.reliability.conftest import SynthBase, cli_env, replicate
from tests.wire.faults import (
    DEFAULT_MIX,
    FaultInjectingServer,
    FaultSchedule,
    item_marker,
)

RETRY_ENV = {
    "CVBENCH_TIMEOUT_S": "1.5",
    "CVBENCH_MAX_RETRIES": "4",
    "CVBENCH_RETRY_BASE_DELAY_S": "0.05",
    "CVBENCH_RETRY_MAX_DELAY_S": "0.4",
}
TIMINGS = ("latency_s", "cached", "attempts", "usage")
CONCURRENCY = 8
MAX_RERUNS = 6


class Bench:
    def __init__(self, tmp: Path, data_root: Path) -> None:
        self.tmp = tmp
        self.data_root = data_root
        self.env = cli_env(tmp, **RETRY_ENV)

    def args(self, server: FaultInjectingServer, out: Path, cache: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "cvbench.cli",
            "run",
            "--model",
            "openai-compatible:chaos",
            "--base-url",
            server.base_url(),
            "--task",
            "crossviewbench",
            "--data-dir",
            str(self.data_root),
            "--out",
            str(out),
            "--cache",
            str(cache),
            "--save-images",
            "none",
            "--concurrency",
            str(CONCURRENCY),
            "--no-progress",
        ]

    def run(self, server: FaultInjectingServer, out: Path, cache: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.args(server, out, cache),
            env=self.env,
            cwd=self.tmp,
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )

    def popen(self, server: FaultInjectingServer, out: Path, cache: Path) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.args(server, out, cache),
            env=self.env,
            cwd=self.tmp,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )


# ------------------------------------------------------------------------------ reading a run


def lines(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "samples.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def recorded(run_dir: Path) -> set[str]:
    """Markers of the samples answered (not error records) in the run directory."""
    return {m for r in lines(run_dir) if r.get("parse_status") != "error" and (m := item_marker(r["prompt_text"]))}


def comparable(run_dir: Path) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in TIMINGS} for r in lines(run_dir)]


def metrics(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "results.json"
    if not path.exists():
        return None
    results = json.loads(path.read_text())
    return {
        "status": results["status"],
        "overall": results["overall"],
        "slices": results["slices"],
        "evaluations": {k: {"overall": v["overall"], "slices": v["slices"]} for k, v in results["evaluations"].items()},
    }


def summary(run_dir: Path, ref: Path, resent: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    records = lines(run_dir)
    ids = [r["record_id"] for r in records]
    scored_errors = sum(1 for r in records if (r.get("error") or r.get("parse_status") == "error") and r.get("correct"))
    return {
        "records": len(records),
        "duplicates": len(ids) - len(set(ids)),
        "error_records_left": sum(1 for r in records if r.get("parse_status") == "error"),
        "errors_scored_as_answers": scored_errors,
        "resent_for_answered": resent,
        "identical_to_uninterrupted": comparable(run_dir) == comparable(ref) and metrics(run_dir) == metrics(ref),
        **(extra or {}),
    }


def resent_since(server: FaultInjectingServer, start: int, answered: set[str]) -> int:
    return sum(1 for r in server.requests[start:] if item_marker(r.text) in answered)


def rerun_until_clean(bench: Bench, server: FaultInjectingServer, out: Path, cache: Path) -> tuple[int, int]:
    """Rerun the command until no error record is left; (reruns, requests re-sent for answered samples)."""
    resent = 0
    for k in range(MAX_RERUNS):
        if not any(r.get("parse_status") == "error" for r in lines(out)) and (out / "results.json").exists():
            return k, resent
        answered, start = recorded(out), len(server.requests)
        bench.run(server, out, cache)
        resent += resent_since(server, start, answered)
    return MAX_RERUNS, resent


# ------------------------------------------------------------------------------ campaigns


def campaign_faults(bench: Bench, ref: Path, rate: float, seed: int) -> dict[str, Any]:
    mix = {k: w for k, w in DEFAULT_MIX.items() if w > 0}
    out, cache = bench.tmp / f"faults-{int(rate * 100)}", bench.tmp / f"faults-{int(rate * 100)}.db"
    with FaultInjectingServer(FaultSchedule(seed=seed, rate=rate, mix=mix, hang_s=3.0, slow_s=0.2)) as server:
        first = bench.run(server, out, cache)
        first_records = lines(out)
        errors_first = sum(1 for r in first_records if r.get("parse_status") == "error")
        scored_first = sum(1 for r in first_records if r.get("parse_status") == "error" and r.get("correct"))
        server.set_schedule(FaultSchedule(seed=seed + 1, rate=rate, mix=mix, hang_s=3.0, slow_s=0.2))
        reruns, resent = rerun_until_clean(bench, server, out, cache)
        faults = dict(server.fault_counts())
        n_requests = len(server.requests)
    return summary(
        out,
        ref,
        resent,
        {
            "fault_rate": rate,
            "requests": n_requests,
            "faults_injected": faults,
            "first_run_exit": first.returncode,
            "error_records_after_first_run": errors_first,
            "errors_scored_in_first_run": scored_first,
            "reruns": reruns,
        },
    )


def wait_requests(server: FaultInjectingServer, start: int, k: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 300
    while len(server.requests) - start < k and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)


def campaign_kills(bench: Bench, ref: Path, n: int, kills: int) -> dict[str, Any]:
    out, cache = bench.tmp / "kill", bench.tmp / "kill.db"
    rng = np.random.default_rng(2026)
    per_session = max(4, n // (kills + 1))
    sessions = []
    resent_total = 0
    with FaultInjectingServer(FaultSchedule(seed=3, rate=0.5, mix={"slow": 1.0}, slow_s=0.3)) as server:
        previous_requested: set[str] = set()
        for _ in range(kills):
            answered, start = recorded(out), len(server.requests)
            proc = bench.popen(server, out, cache)
            wait_requests(server, start, int(rng.integers(CONCURRENCY, per_session)), proc)
            time.sleep(float(rng.uniform(0.0, 0.3)))  # a random moment, not only right after a request
            proc.kill()
            proc.wait(timeout=60)
            requested = {m for r in server.requests[start:] if (m := item_marker(r.text))}
            after = recorded(out)
            resent = resent_since(server, start, answered)
            resent_total += resent
            sessions.append(
                {
                    "requests": len(server.requests) - start,
                    "recorded_after": len(after),
                    "in_flight_at_kill": len(requested - after),
                    "resent_for_answered": resent,
                    "resent_in_flight_of_previous": len(requested & (previous_requested - answered)),
                }
            )
            previous_requested = requested - after
        answered, start = recorded(out), len(server.requests)
        final = bench.run(server, out, cache)
        resent_total += resent_since(server, start, answered)
        final_resent_inflight = len(
            {m for r in server.requests[start:] if (m := item_marker(r.text))} & previous_requested
        )
    resends = [s["resent_in_flight_of_previous"] for s in sessions[1:]] + [final_resent_inflight]
    within = all(r <= s["in_flight_at_kill"] for r, s in zip(resends, sessions))
    return summary(
        out,
        ref,
        resent_total,
        {
            "kills": kills,
            "final_exit": final.returncode,
            "sessions": sessions,
            "final_resent_in_flight_of_previous": final_resent_inflight,
            "max_in_flight_at_kill": max(s["in_flight_at_kill"] for s in sessions),
            "max_resent_after_kill": max(resends),
            "resends_within_in_flight_at_each_kill": within,
        },
    )


def campaign_sigint(bench: Bench, ref: Path, n: int) -> dict[str, Any]:
    out, cache = bench.tmp / "sigint", bench.tmp / "sigint.db"
    with FaultInjectingServer(FaultSchedule(seed=4, rate=0.5, mix={"slow": 1.0}, slow_s=0.2)) as server:
        proc = bench.popen(server, out, cache)
        wait_requests(server, 0, n // 3, proc)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=300)
        status = (metrics(out) or {}).get("status")
        answered, start = recorded(out), len(server.requests)
        final = bench.run(server, out, cache)
        resent = resent_since(server, start, answered)
    return summary(
        out,
        ref,
        resent,
        {
            "exit_after_sigint": proc.returncode,
            "status_after_sigint": status,
            "recorded_at_sigint": len(answered),
            "final_exit": final.returncode,
        },
    )


def campaign_two_runs(bench: Bench, ref: Path) -> dict[str, Any]:
    out = bench.tmp / "two"
    with FaultInjectingServer(FaultSchedule(seed=5, rate=1.0, mix={"slow": 1.0}, slow_s=0.3)) as server:
        first = bench.popen(server, out, bench.tmp / "two-a.db")
        wait_requests(server, 0, 1, first)  # it holds the lock from before its first request
        second = bench.run(server, out, bench.tmp / "two-b.db")
        first_running = first.poll() is None
        first.communicate(timeout=600)
    refused = second.returncode != 0 and f"pid {first.pid}" in (second.stdout + second.stderr)
    return summary(
        out,
        ref,
        0,
        {
            "second_refused_naming_pid": refused,
            "first_still_running_when_refused": first_running,
            "second_exit": second.returncode,
            "first_exit": first.returncode,
            "second_message": (second.stdout + second.stderr).strip().splitlines()[-1:],
        },
    )


def campaign_disk_full(bench: Bench, ref: Path) -> dict[str, Any]:
    mount = bench.tmp / "small-fs"
    mount.mkdir()
    page = 4096
    size = page * (
        1
        + 2 * math.ceil((ref / "config.json").stat().st_size / page)
        + math.ceil((ref / "samples.jsonl").stat().st_size / page) // 2
    )
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True, check=False
        ).returncode
        != 0
    ):
        return {"not_run": "mounting a tmpfs is not permitted on this machine"}
    try:
        out, cache = mount / "run", bench.tmp / "full.db"
        with FaultInjectingServer(None) as server:
            full = bench.run(server, out, cache)
            message = (full.stdout + full.stderr).strip().splitlines()[-1:]
            raw = (out / "samples.jsonl").read_bytes()
            torn = bool(raw) and not raw.endswith(b"\n")
            kept = len(lines(out))
            temps = [p.name for p in out.rglob("*.tmp")]
            subprocess.run(["mount", "-o", f"remount,size={page * 8192}", str(mount)], check=True)
            answered, start = recorded(out), len(server.requests)
            final = bench.run(server, out, cache)
            resent = resent_since(server, start, answered)
        return summary(
            out,
            ref,
            resent,
            {
                "exit_when_full": full.returncode,
                "message": message,
                "records_kept_when_full": kept,
                "torn_line": torn,
                "temp_files_left": temps,
                "final_exit": final.returncode,
            },
        )
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def campaign_corrupt_cache(bench: Bench, ref: Path) -> dict[str, Any]:
    out, cache = bench.tmp / "corrupt", bench.tmp / "corrupt.db"
    with FaultInjectingServer(None) as server:
        bench.run(server, bench.tmp / "corrupt-seed", cache)  # fills the cache
        import sqlite3

        con = sqlite3.connect(cache)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        rng = np.random.default_rng(20)
        n_pages = cache.stat().st_size // 4096
        with open(cache, "r+b") as fh:
            for p in rng.choice(np.arange(2, n_pages), size=3, replace=False):
                fh.seek(int(p) * 4096)
                fh.write(rng.integers(0, 256, size=4096, dtype=np.uint8).tobytes())
        start = len(server.requests)
        refused = bench.run(server, out, cache)
        sent_when_refused = len(server.requests) - start
        text = refused.stdout + refused.stderr
        repair = subprocess.run(
            [sys.executable, "-m", "cvbench.cli", "cache", "repair", "--cache", str(cache)],
            env=bench.env,
            cwd=bench.tmp,
            capture_output=True,
            text=True,
            check=False,
        )
        start = len(server.requests)
        final = bench.run(server, out, cache)
        refetched = len(server.requests) - start
    return summary(
        out,
        ref,
        0,
        {
            "exit_on_damaged_cache": refused.returncode,
            "requests_sent_when_refused": sent_when_refused,
            "traceback": "Traceback" in text,
            "names_path_and_repair": str(cache) in text and "cache repair" in text,
            "repair": repair.stdout.strip(),
            "refetched_after_repair": refetched,
            "final_exit": final.returncode,
        },
    )


def main() -> None:
    # a client killed mid-answer makes the loopback server's handler print a broken-pipe traceback: expected here
    socketserver.BaseServer.handle_error = lambda self, request, client_address: None  # type: ignore[method-assign]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    from cvbench.tasks import synthetic

    info = machine()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cvbench-chaos-") as tmp_name:
        tmp = Path(tmp_name)
        folder = tmp / "synth" / "crossviewbench"
        path = synthetic.generate_crossviewbench(folder, per_type=2, seed=0)
        base = SynthBase(folder, tuple(ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()))
        data = replicate(base, tmp / "data", args.n)
        bench = Bench(tmp, data.root)
        ref = tmp / "ref"
        with FaultInjectingServer(None) as server:
            done = bench.run(server, ref, tmp / "ref.db")
            if done.returncode != 0:
                raise SystemExit(f"the uninterrupted reference run failed:\n{done.stderr[-3000:]}")
        campaigns: dict[str, Any] = {}
        plan = {
            "faults-20": lambda: campaign_faults(bench, ref, 0.2, 20),
            "faults-50": lambda: campaign_faults(bench, ref, 0.5, 50),
            "kill-9": lambda: campaign_kills(bench, ref, args.n, args.kills),
            "sigint": lambda: campaign_sigint(bench, ref, args.n),
            "two-runs-one-dir": lambda: campaign_two_runs(bench, ref),
            "disk-full": lambda: campaign_disk_full(bench, ref),
            "corrupt-cache": lambda: campaign_corrupt_cache(bench, ref),
        }
        for name, fn in plan.items():
            if args.only and name not in args.only:
                continue
            started = time.monotonic()
            campaigns[name] = {**fn(), "seconds": round(time.monotonic() - started, 1)}
            print(f"{name}: {json.dumps(campaigns[name])[:400]}", flush=True)
    result = {
        "benchmark": "chaos",
        "n": args.n,
        "concurrency": CONCURRENCY,
        "retry_env": RETRY_ENV,
        "campaigns": campaigns,
        "seconds": round(time.monotonic() - t0, 1),
        "machine": info,
    }
    print(write_result("chaos", result))


if __name__ == "__main__":
    main()
