"""Cores and the serial part: CPU-s per sample of `cvbench run` with 1 and 2 prompt workers, the
event-loop (serial) CPU per sample, and the Amdahl bound that follows for 16 and 64 cores.

Each run executes in a child process (`Runner.execute()` on its main thread, which is the
asyncio loop's thread) against the instant server of bench/common.py. Worker counts are set with
the CPU affinity (the prompt pool has one worker per usable core). The serial CPU per sample is
the slope of the main thread's CPU time between two run sizes (start-up and results.json cancel).
The request-sender threads (`cvbench-send-*`, which send the prepared bodies off the loop) are
measured the same way (`sender_ms_per_sample`): their Python part holds the GIL, so the bounds
are also given with it counted as serial (`*_if_senders_serial`), the pessimistic reading.

`--baseline REV` measures an earlier revision side by side (a temporary `git worktree` of REV,
runs interleaved with the current tree's, same data, same server, same load) and reports the
ratios: before/after figures from one run, as the load on a shared machine moves.

    python bench/scaling.py [--n 34,102] [--image-format jpeg] [--workers 1,2] [--baseline REV] [--content noisy]

The bench set is the photo-like one unless `--content noisy` (the stress set; result file
`scaling-<format>-noisy.json`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import InstantServer, add_content_argument, build_dataset, machine, write_result

ROOT = Path(__file__).resolve().parents[1]


def one_run(data_root: Path, n: int, base_url: str, image_format: str, work: Path) -> dict[str, float]:
    from cvbench.runner.options import RunOptions
    from cvbench.runner.session import Runner

    options = RunOptions(
        tasks=("crossviewbench",),
        data_dir=data_root,
        out=work / f"run-{n}-{time.monotonic_ns()}",
        progress=False,
        model="openai-compatible:bench",
        base_urls=(base_url,),
        use_cache=True,
        cache=work / f"cache-{time.monotonic_ns()}.sqlite",  # fresh: every prompt rendered, every request sent
        save_images=False,
        limit=n,
        concurrency=8,
        image_format=image_format,
        n_resamples=200,
    )
    os.environ["CVBENCH_RENDER_STORE"] = "off"  # measure rendering, not the store
    senders = SenderCpu()
    main0, cpu0, wall0 = time.thread_time(), time.process_time(), time.perf_counter()
    with senders:
        outcome = Runner(options).execute()
    if outcome.status != "complete":
        raise SystemExit(f"run not complete: {outcome.status}")
    return {
        "main_thread_cpu_s": time.thread_time() - main0,
        "sender_threads_cpu_s": senders.total(),
        "process_cpu_s": time.process_time() - cpu0,
        "wall_s": time.perf_counter() - wall0,
    }


class SenderCpu:
    """CPU seconds of the request-sender threads (`cvbench-send-*`), read every 50 ms: they end
    with the run, so each one's last reading stands (idle at the end: nothing is lost)."""

    def __init__(self) -> None:
        self.last: dict[int, float] = {}
        self.stop = threading.Event()
        self.poller = threading.Thread(target=self.poll, daemon=True)

    def __enter__(self) -> None:
        self.poller.start()

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.poller.join()

    def poll(self) -> None:
        while not self.stop.wait(0.05):
            for thread in threading.enumerate():
                if thread.name.startswith("cvbench-send") and thread.ident is not None:
                    with contextlib.suppress(OSError, ValueError):
                        self.last[thread.ident] = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))

    def total(self) -> float:
        return sum(self.last.values())


def child_run(
    tree: Path, data_root: Path, n: int, base_url: str, image_format: str, work: Path, cores: list[int]
) -> Any:
    """`one_run` in a fresh process that imports cvbench from `tree`, pinned to `cores`."""
    code = (
        "import json, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import scaling; "
        "sys.path.insert(0, sys.argv[7]); import cvbench; assert cvbench.__file__.startswith(sys.argv[7]); "
        "a = sys.argv; print(json.dumps(scaling.one_run(Path(a[2]), int(a[3]), a[4], a[5], Path(a[6]))))"
    )
    env = {**os.environ, "PYTHONPATH": str(tree), "CVBENCH_RENDER_STORE": "off"}
    argv = [sys.executable, "-c", code, str(Path(__file__).parent), str(data_root), str(n), base_url, image_format]
    out = subprocess.run(
        [*argv, str(work), str(tree)],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=lambda: os.sched_setaffinity(0, cores),
    )
    if out.returncode != 0:
        raise SystemExit(f"run in {tree} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def worktree(rev: str | None) -> Any:
    """A checkout of `rev` in a temporary directory (`git archive`: no worktree metadata left behind)."""
    if rev is None:
        yield None
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / rev
        path.mkdir()
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(path)], input=archive, check=True)
        yield path


def figures(a: dict[str, float], b: dict[str, float], small: int, large: int) -> dict[str, Any]:
    serial = (b["main_thread_cpu_s"] - a["main_thread_cpu_s"]) / (large - small)
    per_sample = (b["process_cpu_s"] - a["process_cpu_s"]) / (large - small)
    sender = (b.get("sender_threads_cpu_s", 0.0) - a.get("sender_threads_cpu_s", 0.0)) / (large - small)
    return {
        "cpu_s_per_sample": round(per_sample, 5),
        "sender_ms_per_sample": round(sender * 1000, 3),
        "cpu_s_per_sample_incl_startup": round(b["process_cpu_s"] / large, 5),
        "serial_ms_per_sample": round(serial * 1000, 3),
        "samples_per_s_wall": round(large / b["wall_s"], 3),
        "runs": {"small": a, "large": b},
    }


def median_figures(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    keys = (
        "cpu_s_per_sample",
        "cpu_s_per_sample_incl_startup",
        "serial_ms_per_sample",
        "sender_ms_per_sample",
        "samples_per_s_wall",
    )
    out: dict[str, Any] = {k: round(float(statistics.median(r[k] for r in rounds)), 5) for k in keys}
    out["rounds"] = rounds
    return out


def amdahl(total: float, serial: float, cores: int) -> float:
    """Amdahl: samples/s on `cores` when `serial` of the `total` CPU-s per sample runs on one
    thread and the rest spreads over every core (no overlap assumed between the two: a lower
    bound; the pipelined ceiling is 1 / max(serial, total / cores))."""
    return 1.0 / (serial + (total - serial) / cores)


def bounds(total: float, serial: float) -> dict[str, Any]:
    return {
        "amdahl_samples_per_s": {str(c): round(amdahl(total, serial, c), 1) for c in (16, 64)},
        "pipelined_ceiling_samples_per_s": {str(c): round(1.0 / max(serial, total / c), 1) for c in (16, 64)},
        "serial_ceiling_samples_per_s": round(1 / serial, 1) if serial > 0 else None,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", default="34,102")
    parser.add_argument("--image-format", default="jpeg", choices=("jpeg", "png"))
    parser.add_argument("--workers", default="1,2")
    add_content_argument(parser)
    parser.add_argument("--rounds", type=int, default=3, help="(small, large) pairs per tree; medians reported")
    parser.add_argument("--baseline", default=None, help="an earlier revision measured side by side")
    parser.add_argument(
        "--current", default=None, help="measure this revision (a worktree) instead of the working tree"
    )
    args = parser.parse_args(argv)
    small, large = (int(x) for x in args.n.split(","))
    root = build_dataset(large, content=args.content)
    all_cores = sorted(os.sched_getaffinity(0))
    result: dict[str, Any] = {
        "machine": machine(),
        "image_format": args.image_format,
        "content": args.content,
        "sizes": [small, large],
    }
    variants: dict[str, dict[str, Any]] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        InstantServer() as server,
        worktree(args.baseline) as base,
        worktree(args.current) as pinned,
    ):
        work = Path(tmp)
        current = pinned or ROOT
        trees = {"current": current} if base is None else {"baseline": base, "current": current}
        result["current"] = args.current or "working tree"
        if base is not None:
            result["baseline"] = args.baseline
        for workers in (int(w) for w in args.workers.split(",")):
            if workers > len(all_cores):
                continue
            cores = all_cores[:workers]
            rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
            for tree in trees.values():  # warm-up (page cache, first imports)
                child_run(tree, root, small, server.base_url, args.image_format, work, cores)
            for _ in range(args.rounds):
                for name, tree in trees.items():  # interleaved: both see the same load
                    a = child_run(tree, root, small, server.base_url, args.image_format, work, cores)
                    b = child_run(tree, root, large, server.base_url, args.image_format, work, cores)
                    rounds[name].append(figures(a, b, small, large) | {"loadavg": list(os.getloadavg())})
            for name in trees:
                fig = median_figures(rounds[name])
                variants.setdefault(name, {})[str(workers)] = fig
                print(
                    f"{name}, {workers} worker(s): {fig['cpu_s_per_sample']:.4f} CPU-s/sample (marginal), serial "
                    f"{fig['serial_ms_per_sample']:.2f} ms/sample (senders {fig['sender_ms_per_sample']:.2f}), "
                    f"{fig['samples_per_s_wall']:.2f} samples/s wall",
                    flush=True,
                )
    result["variants"] = variants
    current = variants["current"]
    best = current[max(current, key=int)]
    total, serial = best["cpu_s_per_sample"], best["serial_ms_per_sample"] / 1000
    result["workers"] = current
    result["cpu_s_per_sample"] = total
    result["serial_ms_per_sample"] = best["serial_ms_per_sample"]
    result["sender_ms_per_sample"] = best["sender_ms_per_sample"]
    result.update(bounds(total, serial))
    pessimistic = bounds(total, serial + best["sender_ms_per_sample"] / 1000)
    result.update({f"{k}_if_senders_serial": v for k, v in pessimistic.items()})
    if "baseline" in variants:
        before = variants["baseline"][max(current, key=int)]
        result["baseline_figures"] = {
            "cpu_s_per_sample": before["cpu_s_per_sample"],
            "serial_ms_per_sample": before["serial_ms_per_sample"],
            **bounds(before["cpu_s_per_sample"], before["serial_ms_per_sample"] / 1000),
        }
        result["ratios_current_over_baseline"] = {
            "cpu_s_per_sample": round(total / before["cpu_s_per_sample"], 3),
            "serial_ms_per_sample": round(best["serial_ms_per_sample"] / before["serial_ms_per_sample"], 3),
        }
        print("current / baseline:", result["ratios_current_over_baseline"])
    ceiling = result["serial_ceiling_samples_per_s"]
    print(f"Amdahl bound: {result['amdahl_samples_per_s']} samples/s; serial ceiling {ceiling}")
    suffix = "-noisy" if args.content == "noisy" else ""
    print("written", write_result(f"scaling-{args.image_format}{suffix}", result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
