"""Warm rerun of `cvbench run` over the 17,000-record set, the current tree against a baseline
revision, side by side.

    .venv/bin/python bench/warm_rerun.py --baseline 40942c5 [--n 17000] [--rounds 3] [--work DIR]
                                        [--no-bytecode-cache]

A warm rerun: the same command with a new `--out` and a response cache that holds every answer
(and the prompt digests): nothing is rendered and nothing is sent. The set is `build_dataset(n,
thumbnails=True)` (bench/common.py: the same JSONL as the full-size set over 128x72 images, so
that the cold runs that fill the caches take minutes, not an hour; a warm rerun reads no pixels).

Each tree (the baseline as a `git archive` checkout, the current working tree) has its own cache
under `--work` (default bench/.data/warm-<n>/), kept between invocations: the prompt digests are
keyed by the prompt code, so each tree's first run fills its cache (the cold run, reported) and
later runs are warm. Then `--rounds` warm reruns per tree, alternating which tree goes first,
each a fresh process under the instant server (bench/common.py; it is never asked). Per run:
wall, CPU (user + sys, wait4), the kernel's peak RSS, the load average before it. The result
holds the medians per tree and current/baseline ratios, and checks that the warm records equal
the first run's and the other tree's apart from `latency_s` and `cached` (each cache holds the
latencies of its own cold run), and that results.json is identical across trees.

Bytecode: installed packages carry their compiled modules; this shell may set
PYTHONDONTWRITEBYTECODE, which makes every process compile cvbench and its imports again (~1 s
of a warm rerun). By default each tree gets its own PYTHONPYCACHEPREFIX, filled by its first
run; `--no-bytecode-cache` measures without. Writes bench/results/warm-<n>.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    DATA_DIR,
    REPO_ROOT,
    InstantServer,
    ProcessStats,
    build_dataset,
    cvbench_run_argv,
    machine,
    run_measured,
    write_result,
)

TIMINGS = ("latency_s", "cached")


def checkout(rev: str, dest: Path) -> Path:
    """`rev`'s tree under `dest` (git archive; kept for the next invocation)."""
    stamp = dest / ".bench-rev"
    full = subprocess.run(["git", "rev-parse", rev], cwd=REPO_ROOT, check=True, capture_output=True, text=True)
    sha = full.stdout.strip()
    if stamp.exists() and stamp.read_text() == sha:
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", sha], cwd=REPO_ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    stamp.write_text(sha)
    return dest


def run_argv(data_root: Path, out: Path, cache: Path, base_url: str) -> list[str]:
    """Both trees' run: the tree comes from PYTHONPATH (`python -P`), not from the working directory."""
    return cvbench_run_argv(
        data_root, out, cache, base_url, concurrency=8, image_format="png", tree_from_pythonpath=True
    )


def same_without_timings(a: Path, b: Path) -> bool:
    """Two samples.jsonl files hold the same records apart from `latency_s` and `cached`
    (streamed: this process stays small, see `measure`)."""

    def strip(line: str) -> dict[str, Any]:
        data = json.loads(line)
        for key in TIMINGS:
            data.pop(key, None)
        return data

    with open(a, encoding="utf-8") as fa, open(b, encoding="utf-8") as fb:
        for x, y in zip(fa, fb, strict=False):
            if strip(x) != strip(y):
                return False
        return fa.readline() == fb.readline() == ""


def figures(stats: ProcessStats, n: int, load: list[float]) -> dict[str, Any]:
    return {
        "wall_s": round(stats.wall_s, 3),
        "cpu_s": round(stats.cpu_s, 3),
        "user_s": round(stats.user_s, 3),
        "sys_s": round(stats.sys_s, 3),
        "cpu_ms_per_sample": round(stats.cpu_s / n * 1000, 4),
        "peak_rss_mib": round(stats.peak_rss_bytes / 2**20, 1),
        "loadavg_before": [round(x, 2) for x in load],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="git revision to compare against")
    parser.add_argument("--n", type=int, default=17000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None, help="caches and run dirs (kept; default bench/.data)")
    parser.add_argument("--no-bytecode-cache", action="store_true")
    args = parser.parse_args()
    n = args.n
    work = (args.work or DATA_DIR / f"warm-{n}").absolute()
    work.mkdir(parents=True, exist_ok=True)
    # the set warm-17000.json was measured on (the JSONL of the noisy views; a warm rerun reads no pixels)
    data_root = build_dataset(n, thumbnails=True, content="noisy")
    base_sha = subprocess.run(
        ["git", "rev-parse", "--short", args.baseline], cwd=REPO_ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    trees = {"baseline": checkout(args.baseline, work / f"tree-{base_sha}"), "current": REPO_ROOT}
    caches = {"baseline": work / f"cache-{base_sha}.sqlite", "current": work / "cache-current.sqlite"}
    info = machine()
    result: dict[str, Any] = {
        "benchmark": "warm rerun side by side",
        "n": n,
        "data": "build_dataset(n, thumbnails=True, content='noisy')",
        "command": " ".join(run_argv(data_root, Path("OUT"), Path("CACHE"), "INSTANT")[1:]),
        "bytecode_cache": not args.no_bytecode_cache,
        "machine": info,
        "revisions": {"baseline": base_sha, "current": info.get("git")},
        "cold": {},
        "runs": [],
    }

    def env_for(name: str) -> dict[str, str]:
        env = {**os.environ, "PYTHONPATH": str(trees[name])}
        if not args.no_bytecode_cache:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(work / "pycache" / name)
        return env

    reference: dict[str, Path] = {}
    with InstantServer() as server:

        def run_tree(name: str, out: Path, kind: str) -> ProcessStats:
            """One `cvbench run` of tree `name` into `out`, measured; a failed run stops the bench."""
            log = work / f"{name}-{kind}.log"
            argv = run_argv(data_root, out, caches[name], server.base_url)
            stats = run_measured(argv, env=env_for(name), log=log, poll_s=0.1, cwd=trees[name])
            if stats.returncode:
                print(log.read_text()[-3000:])
                raise SystemExit(f"{name}: {kind} run failed ({stats.returncode})")
            return stats

        for name in trees:  # fill each cache (a cold run) or check it is warm, and write the bytecode
            out = work / f"{name}-first"
            shutil.rmtree(out, ignore_errors=True)
            load = list(os.getloadavg())
            stats = run_tree(name, out, "first")
            usage = json.loads((out / "results.json").read_text())["usage"]
            result["cold"][name] = {**figures(stats, n, load), "cached": usage["cached"]}
            reference[name] = out
            print(f"{name} first run: {json.dumps(result['cold'][name])}", flush=True)
        answered = json.loads((reference["current"] / "results.json").read_text())["overall"]["n_answered"]
        for r in range(args.rounds):
            order = list(trees) if r % 2 == 0 else list(reversed(trees))
            for name in order:
                out = work / f"{name}-warm"
                shutil.rmtree(out, ignore_errors=True)
                load = list(os.getloadavg())
                stats = run_tree(name, out, "warm")
                results = json.loads((out / "results.json").read_text())
                if results["usage"]["cached"] != answered:
                    raise SystemExit(f"{name}: not warm ({results['usage']['cached']} of {answered} cached)")
                row = {"tree": name, "round": r, **figures(stats, n, load)}
                first = reference[name] / "samples.jsonl"
                row["records_equal_to_first_run"] = same_without_timings(out / "samples.jsonl", first)
                shutil.copyfile(out / "samples.jsonl", work / f"{name}-warm-samples.jsonl")
                shutil.copyfile(out / "results.json", work / f"{name}-warm-results.json")
                result["runs"].append(row)
                print(json.dumps(row), flush=True)
    result["server"] = server.stats  # requests the instant server got (known once it has stopped)
    same_lines = same_without_timings(work / "baseline-warm-samples.jsonl", work / "current-warm-samples.jsonl")
    same_results = json.loads((work / "baseline-warm-results.json").read_text()) == json.loads(
        (work / "current-warm-results.json").read_text()
    )
    result["records_identical_across_trees"] = same_lines
    result["results_identical_across_trees"] = same_results
    medians: dict[str, dict[str, float]] = {}
    for name in trees:
        rows = [row for row in result["runs"] if row["tree"] == name]
        medians[name] = {
            key: round(statistics.median(row[key] for row in rows), 4)
            for key in ("wall_s", "cpu_s", "cpu_ms_per_sample", "peak_rss_mib")
        }
    result["baseline"], result["current"] = medians["baseline"], medians["current"]
    result["ratio_current_over_baseline"] = {
        key: round(medians["current"][key] / medians["baseline"][key], 3) for key in ("wall_s", "cpu_s", "peak_rss_mib")
    }
    result["machine"]["loadavg_end"] = list(os.getloadavg())
    path = write_result(f"warm-{n}" + ("-no-bytecode" if args.no_bytecode_cache else ""), result)
    print(
        json.dumps(
            {
                "baseline": medians["baseline"],
                "current": medians["current"],
                "ratio": result["ratio_current_over_baseline"],
                "identical": [same_lines, same_results],
            }
        )
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
