"""Cores and the serial part: CPU-s per sample of `cvbench run` with 1 and 2 prompt workers, the
event-loop (serial) CPU per sample, and the Amdahl bound that follows for 16 and 64 cores.

The run executes in this process (`Runner.execute()` on the main thread, which is the asyncio
loop's thread) against the instant server of bench/common.py. Worker counts are set with the
CPU affinity (the prompt pool has one worker per usable core). The serial CPU per sample is the
slope of the main thread's CPU time between two run sizes (start-up and results.json cancel).

    python bench/scaling.py [--n 34,102] [--image-format jpeg] [--compare-sdk-body]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import InstantServer, build_dataset, machine, write_result


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
    main0, cpu0, wall0 = time.thread_time(), time.process_time(), time.perf_counter()
    outcome = Runner(options).execute()
    if outcome.status != "complete":
        raise SystemExit(f"run not complete: {outcome.status}")
    return {
        "main_thread_cpu_s": time.thread_time() - main0,
        "process_cpu_s": time.process_time() - cpu0,
        "wall_s": time.perf_counter() - wall0,
    }


def amdahl(total: float, serial: float, cores: int) -> float:
    """Amdahl: samples/s on `cores` when `serial` of the `total` CPU-s per sample runs on one
    thread and the rest spreads over every core (no overlap assumed between the two: a lower
    bound; the pipelined ceiling is 1 / max(serial, total / cores))."""
    return 1.0 / (serial + (total - serial) / cores)


def serial_and_total(
    root: Path, small: int, large: int, base_url: str, image_format: str, work: Path
) -> dict[str, float]:
    a = one_run(root, small, base_url, image_format, work)
    b = one_run(root, large, base_url, image_format, work)
    return {
        "serial_ms_per_sample": round((b["main_thread_cpu_s"] - a["main_thread_cpu_s"]) / (large - small) * 1000, 3),
        "cpu_s_per_sample": round((b["process_cpu_s"] - a["process_cpu_s"]) / (large - small), 5),
    }


def sdk_body_side_by_side(
    root: Path, small: int, large: int, base_url: str, args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    """The same runs with the request body prepared in the prompt pool and spliced (today) and with
    the SDK serialising the whole body on the event loop (`chat.completions.create`, as before),
    alternated twice so load changes hit both alike."""
    from cvbench.model_adapters import openai_api

    prepared_check = openai_api.takes_raw_body
    figures: dict[str, list[dict[str, float]]] = {"prepared": [], "sdk": []}
    for _ in range(2):
        for variant in ("prepared", "sdk"):
            openai_api.takes_raw_body = prepared_check if variant == "prepared" else (lambda client: False)
            try:
                figures[variant].append(serial_and_total(root, small, large, base_url, args.image_format, work))
            finally:
                openai_api.takes_raw_body = prepared_check
    best = {v: {k: min(f[k] for f in runs) for k in runs[0]} for v, runs in figures.items()}
    print(f"side by side: prepared {best['prepared']}, sdk {best['sdk']}", flush=True)
    return {
        "runs": figures,
        "best": best,
        "serial_ratio_sdk_over_prepared": round(
            best["sdk"]["serial_ms_per_sample"] / best["prepared"]["serial_ms_per_sample"], 3
        ),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", default="34,102")
    parser.add_argument("--image-format", default="jpeg", choices=("jpeg", "png"))
    parser.add_argument(
        "--compare-sdk-body",
        action="store_true",
        help="also run prepared request bodies against SDK-serialised ones, alternated, at all cores",
    )
    args = parser.parse_args(argv)
    small, large = (int(x) for x in args.n.split(","))
    root = build_dataset(large)
    all_cores = sorted(os.sched_getaffinity(0))
    result: dict[str, Any] = {"machine": machine(), "image_format": args.image_format, "sizes": [small, large]}
    with tempfile.TemporaryDirectory() as tmp, InstantServer() as server:
        work = Path(tmp)
        one_run(root, small, server.base_url, args.image_format, work)  # imports and first-use costs
        per_workers: dict[str, Any] = {}
        for workers in (1, 2):
            if workers > len(all_cores):
                continue
            os.sched_setaffinity(0, all_cores[:workers])
            try:
                a = one_run(root, small, server.base_url, args.image_format, work)
                b = one_run(root, large, server.base_url, args.image_format, work)
            finally:
                os.sched_setaffinity(0, all_cores)
            serial = (b["main_thread_cpu_s"] - a["main_thread_cpu_s"]) / (large - small)
            per_sample = (b["process_cpu_s"] - a["process_cpu_s"]) / (large - small)
            per_workers[str(workers)] = {
                "cpu_s_per_sample": round(per_sample, 5),
                "cpu_s_per_sample_incl_startup": round(b["process_cpu_s"] / large, 5),
                "serial_ms_per_sample": round(serial * 1000, 3),
                "samples_per_s_wall": round(large / b["wall_s"], 3),
                "runs": {"small": a, "large": b},
            }
            print(
                f"{workers} worker(s): {per_sample:.4f} CPU-s/sample (marginal), serial {serial * 1000:.2f} ms/sample, "
                f"{large / b['wall_s']:.2f} samples/s wall",
                flush=True,
            )
        if args.compare_sdk_body:
            result["sdk_body_side_by_side"] = sdk_body_side_by_side(root, small, large, server.base_url, args, work)
    result["workers"] = per_workers
    best = per_workers[max(per_workers)]
    total, serial = best["cpu_s_per_sample"], best["serial_ms_per_sample"] / 1000
    result["cpu_s_per_sample"] = total
    result["serial_ms_per_sample"] = best["serial_ms_per_sample"]
    result["amdahl_samples_per_s"] = {str(c): round(amdahl(total, serial, c), 1) for c in (16, 64)}
    result["pipelined_ceiling_samples_per_s"] = {str(c): round(1.0 / max(serial, total / c), 1) for c in (16, 64)}
    result["serial_ceiling_samples_per_s"] = round(1 / serial, 1) if serial > 0 else None
    print(
        f"Amdahl bound: {result['amdahl_samples_per_s']} samples/s; "
        f"serial ceiling {result['serial_ceiling_samples_per_s']}"
    )
    print("written", write_result(f"scaling-{args.image_format}", result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
