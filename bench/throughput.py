"""End-to-end throughput of `cvbench run` against an instant OpenAI-compatible server, and the cost floor.

    .venv/bin/python bench/throughput.py [--n 17000 | --quick] [--concurrency 8] [--floor-n N]
                                         [--save-images none|all] [--skip-floor] [--skip-warm]

What it measures (all on the same generated CrossViewBench-format set, see bench/common.py):

1. cold run: `cvbench run --model openai-compatible:bench --task crossviewbench` as a subprocess,
   with a fresh response cache (every request goes to the server). Wall time, samples/s, CPU
   seconds per sample of the harness process (and any workers it reaps), peak RSS of the
   harness process tree (polled every 0.25 s).
2. warm rerun: the same command with a NEW `--out` and the same cache: every answer is a cache
   hit; time to finish.
3. the floor: the unavoidable work for the first `--floor-n` samples in a tight loop in this
   process: stream the samples from the loader, then per sample in a pool of the same size as
   the harness's prompt pool (threads, one per usable core): `build_prompt` (decode the
   view images, decode the referenced masks, draw the overlays, PNG-encode every view, hash
   it), build the OpenAI chat body (base64 data URLs) and POST it on a keep-alive connection,
   read the answer. Nothing else: no cache, no records, no parsing, no run directory.

The instant server runs in its own process; it reads each body and answers A or B at once
without decoding anything. Prints the figures and writes bench/results/throughput[-quick].json.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    BENCH_DIR,
    BENCH_MODEL,
    InstantServer,
    ProcessStats,
    add_content_argument,
    build_dataset,
    cvbench_run_argv,
    machine,
    run_measured,
    write_result,
)

MODEL = BENCH_MODEL


def run_figures(stats: ProcessStats, n: int) -> dict[str, Any]:
    return {
        "samples": n,
        "wall_s": round(stats.wall_s, 3),
        "samples_per_s": round(n / stats.wall_s, 3),
        "cpu_s": round(stats.cpu_s, 3),
        "cpu_s_per_sample": round(stats.cpu_s / n, 5),
        "user_s": round(stats.user_s, 3),
        "sys_s": round(stats.sys_s, 3),
        "peak_rss_mib_tree": round(stats.peak_rss_bytes / 2**20, 1),
        "max_rss_mib_process": round(stats.max_rss_bytes / 2**20, 1),
        "returncode": stats.returncode,
    }


def check_run(out: Path, n: int, allow_invalid: bool = False) -> dict[str, Any]:
    """The run finished every sample with an answer (else the figures mean nothing). With
    thumbnails a few masks vanish when shrunk to 128x72: those samples are invalid, reported."""
    results = json.loads((out / "results.json").read_text())
    overall = results["overall"]
    if (
        results["status"] != "complete"
        or overall["n"] != n
        or overall["errors"]
        or (overall["invalid"] and not allow_invalid)
    ):
        raise SystemExit(
            f"{out}: run not clean: status={results['status']} n={overall['n']} "
            f"errors={overall['errors']} invalid={overall['invalid']}"
        )
    return {
        "status": results["status"],
        "n": overall["n"],
        "invalid": overall["invalid"],
        "cached": results["usage"]["cached"],
    }


# ------------------------------------------------------------------------------ the floor


def measure_floor(data_root: Path, n: int, workers: int, base_url: str, image_format: str = "png") -> dict[str, Any]:
    from cvbench.core.types import Capabilities, GenerationConfig, Request, Sample
    from cvbench.model_adapters.openai_api import chat_messages, sampling_arguments
    from cvbench.prompting.build import PromptSettings, build_prompt
    from cvbench.prompting.encoding import ImagePolicy
    from cvbench.tasks.loading import iter_task_samples
    from cvbench.tasks.registry import get_task

    # the adapter's capabilities, so the floor renders exactly what the harness renders
    capabilities = Capabilities(max_images=None, option_logprobs=True, system_prompt=True)
    settings = PromptSettings(image=ImagePolicy(format=image_format))
    generation = GenerationConfig(temperature=0.0, max_tokens=1024, seed=0)
    host, port = base_url.split("//", 1)[1].split("/", 1)[0].split(":")
    local = threading.local()

    def one(sample: Sample) -> int:
        prompt = build_prompt(sample, settings, capabilities).prompt  # what the model receives
        request = Request(MODEL, prompt, generation)
        body = json.dumps(
            {"model": "bench", "messages": chat_messages(prompt, None), **sampling_arguments(request, "max_tokens")}
        ).encode()
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(host, int(port))
        conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        answer = conn.getresponse().read()
        return len(answer)

    spec = get_task("crossviewbench")
    cpu0 = time.process_time()
    start = time.perf_counter()
    done = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        pending: set[concurrent.futures.Future[int]] = set()
        for item, _ in zip(iter_task_samples(spec, data_root), range(n)):
            assert isinstance(item, Sample)
            if len(pending) >= 2 * workers:  # stream: never more than a few prompts alive
                finished, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
                for f in finished:
                    f.result()
                    done += 1
            pending.add(pool.submit(one, item))
        for f in concurrent.futures.as_completed(pending):
            f.result()
            done += 1
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    return {
        "samples": done,
        "workers": workers,
        "wall_s": round(wall, 3),
        "samples_per_s": round(done / wall, 3),
        "cpu_s_per_sample": round(cpu / done, 5),
        "includes": "loader streaming + build_prompt (image decode, mask decode, overlays, PNG encode, sha256) "
        "+ OpenAI chat body (base64) + HTTP POST/answer on a keep-alive connection, "
        f"{workers} threads",
    }


# ------------------------------------------------------------------------------ main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=17000, help="questions in the set (default 17000)")
    parser.add_argument("--quick", action="store_true", help="1,000 questions, for a fast check")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--floor-n", type=int, default=None, help="samples for the floor (default: min(n, 1000))")
    parser.add_argument(
        "--save-images",
        choices=("none", "all"),
        default="none",
        help="the run's --save-images (all writes every PNG: ~2 MB per view)",
    )
    parser.add_argument("--image-format", choices=("png", "jpeg"), default="png", help="the run's --image-format")
    add_content_argument(parser)
    parser.add_argument("--skip-floor", action="store_true")
    parser.add_argument("--skip-warm", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the run directories (printed)")
    parser.add_argument(
        "--thumbnails",
        action="store_true",
        help="the same records over 128x72 images: measures the warm rerun and per-record "
        "overheads at full size without the hour of PNG encoding (not a throughput figure)",
    )
    args = parser.parse_args()
    n = 1000 if args.quick else args.n
    floor_n = args.floor_n if args.floor_n is not None else min(n, 1000)
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, load {info['loadavg_start']}", flush=True)
    t = time.perf_counter()
    data_root = build_dataset(n, thumbnails=args.thumbnails, content=args.content)
    print(f"data: {data_root} ({time.perf_counter() - t:.1f} s)", flush=True)
    work = Path(tempfile.mkdtemp(prefix="cvbench-throughput-", dir=BENCH_DIR / ".data"))
    cache = work / "cache.sqlite"
    result: dict[str, Any] = {
        "benchmark": "throughput",
        "n": n,
        "thumbnails": args.thumbnails,
        "content": args.content,
        "concurrency": args.concurrency,
        "save_images": args.save_images,
        "image_format": args.image_format,
        "machine": info,
    }
    try:
        with InstantServer() as server:

            def run_argv(out: Path) -> list[str]:
                return cvbench_run_argv(
                    data_root,
                    out,
                    cache,
                    server.base_url,
                    concurrency=args.concurrency,
                    save_images=args.save_images,
                    image_format=args.image_format,
                )

            cold_out = work / "cold"
            stats = run_measured(
                run_argv(cold_out),
                log=work / "cold.log",
            )
            if stats.returncode:
                print((work / "cold.log").read_text()[-3000:])
                raise SystemExit(f"cold run failed ({stats.returncode})")
            result["cold"] = {**run_figures(stats, n), **check_run(cold_out, n, args.thumbnails)}
            print(f"cold run: {json.dumps(result['cold'])}", flush=True)
            result["load_after_cold"] = list(os.getloadavg())
            if not args.skip_warm:
                warm_out = work / "warm"
                stats = run_measured(
                    run_argv(warm_out),
                    log=work / "warm.log",
                )
                if stats.returncode:
                    print((work / "warm.log").read_text()[-3000:])
                    raise SystemExit(f"warm run failed ({stats.returncode})")
                result["warm"] = {**run_figures(stats, n), **check_run(warm_out, n, args.thumbnails)}
                identical = _same_records(cold_out, warm_out)
                result["warm"]["records_identical_to_cold"] = identical
                print(f"warm rerun: {json.dumps(result['warm'])}", flush=True)
            if not args.skip_floor:
                workers = max(1, len(os.sched_getaffinity(0)))  # the harness's pool: one worker per core
                result["floor"] = measure_floor(data_root, floor_n, workers, server.base_url, args.image_format)
                print(f"floor: {json.dumps(result['floor'])}", flush=True)
                ratio = result["cold"]["samples_per_s"] / result["floor"]["samples_per_s"]
                result["throughput_ratio_harness_over_floor"] = round(ratio, 3)
                result["cpu_s_per_sample"] = result["cold"]["cpu_s_per_sample"]
                # CPU ratio: robust on a shared machine (wall-clock rates move with the load)
                result["harness_over_floor"] = round(
                    result["cold"]["cpu_s_per_sample"] / result["floor"]["cpu_s_per_sample"], 3
                )
                print(f"harness / floor throughput: {ratio:.3f}", flush=True)
        result["server"] = server.stats
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    name = "throughput-quick" if args.quick else f"throughput-{n}"
    name += "-jpeg" if args.image_format == "jpeg" else ""
    name += "-noisy" if args.content == "noisy" else ""
    path = write_result(name + ("-thumbnails" if args.thumbnails else ""), result)
    print(f"wrote {path}")
    return 0


def _same_records(a: Path, b: Path) -> bool:
    """Records identical line by line apart from latency_s and cached (the run-format promise)."""

    def strip(line: str) -> dict[str, Any]:
        data = json.loads(line)
        data.pop("latency_s", None)
        data.pop("cached", None)
        return data

    with open(a / "samples.jsonl") as fa, open(b / "samples.jsonl") as fb:
        return all(strip(x) == strip(y) for x, y in zip(fa, fb, strict=True))


if __name__ == "__main__":
    sys.exit(main())
