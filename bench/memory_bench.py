"""Peak memory of `cvbench run` as the sample count grows: it must stay flat (streaming).

    .venv/bin/python bench/memory_bench.py [--sizes 250,1000,4000] [--concurrency 8]

For each size N: the CrossViewBench-format bench set of N records (bench/common.py, built once
and reused), then `cvbench run --model random --task crossviewbench` as a subprocess with no
network, no response cache and `--save-images none`, so the figure is the harness itself:
streaming the loader, building every prompt (decode, overlay, PNG-encode), writing records,
computing results. Measured: peak RSS of the process tree (polled every 0.1 s) and the
kernel's own peak RSS of the process (wait4), wall and CPU time. The growth between the
smallest and the largest size, per 1,000 records, is the number that must stay near zero
(what remains: the records themselves, re-read once at the end for the metrics).

Rendering every prompt costs about 0.4 CPU-seconds per record here, so full-size runs (17k)
take hours on a small machine. The part of the run whose memory can grow with N is the end:
every record is read back and the metrics (cluster bootstrap per slice) are computed. That
phase is measured on its own for `--results-sizes` (default 1000,4000,17000) records made by
replicating the smallest run's records (each copy its own record id and cluster, the worst case
for the bootstrap), in a subprocess doing exactly what the runner does at the end
(`read_records` + `metrics.compute_results`, 2000 resamples).

`--keep` keeps the rows of sizes measured earlier (in bench/results/memory.json) that this
invocation does not measure again.

Writes bench/results/memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    PYTHON,
    REPO_ROOT,
    RESULTS_DIR,
    build_dataset,
    machine,
    run_measured,
    write_result,
)

MIB = 1024 * 1024


def measure(n: int, concurrency: int, work: Path) -> dict[str, Any]:
    data = build_dataset(n)
    out = work / f"run-{n}"
    argv = [
        PYTHON,
        "-m",
        "cvbench.cli",
        "run",
        "--model",
        "random",
        "--task",
        "crossviewbench",
        "--data-dir",
        str(data),
        "--out",
        str(out),
        "--no-cache",
        "--save-images",
        "none",
        "--concurrency",
        str(concurrency),
        "--no-progress",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "CVBENCH_CACHE_DIR": str(work / "user-cache")}
    stats = run_measured(argv, env=env, log=work / f"run-{n}.log", poll_s=0.1)
    if stats.returncode != 0:
        raise SystemExit(
            f"cvbench run failed for n={n}; see {work / f'run-{n}.log'}:\n"
            + (work / f"run-{n}.log").read_text()[-2000:]
        )
    with open(out / "samples.jsonl", encoding="utf-8") as fh:
        records = sum(1 for _ in fh)
    samples_bytes = (out / "samples.jsonl").stat().st_size
    shutil.copyfile(out / "samples.jsonl", work / f"samples-{n}.jsonl")  # template for the results phase
    shutil.rmtree(out)
    return {
        "n": n,
        "records": records,
        "peak_rss_mib": round(stats.peak_rss_bytes / MIB, 1),
        "max_rss_mib": round(stats.max_rss_bytes / MIB, 1),
        "wall_s": round(stats.wall_s, 1),
        "cpu_s": round(stats.cpu_s, 1),
        "samples_jsonl_mib": round(samples_bytes / MIB, 2),
    }


RESULTS_PHASE = """
import sys
from pathlib import Path
from cvbench.scoring import metrics
from cvbench.runner.writer import read_records
records = read_records(Path(sys.argv[1]))
metrics.compute_results(records, run_seed=0, model={"id": "baseline:random"}, status="complete",
                        ci_method="cluster_bootstrap", n_resamples=2000)
"""


def measure_results_phase(template: Path, n: int, work: Path) -> dict[str, Any]:
    """Peak memory of reading `n` records back and computing results.json from them."""
    lines = [ln for ln in template.read_text(encoding="utf-8").splitlines() if ln.strip()]
    run = work / f"records-{n}"
    run.mkdir()
    with open(run / "samples.jsonl", "w", encoding="utf-8") as fh:
        for k in range(n):
            record = json.loads(lines[k % len(lines)])
            copy = f"~{k // len(lines)}"
            record["record_id"] += copy
            record["sample_id"] += copy
            record["cluster"] = f"{record['cluster']}{copy}"
            fh.write(json.dumps(record, sort_keys=True) + "\n")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    stats = run_measured([PYTHON, "-c", RESULTS_PHASE, str(run)], env=env, log=work / f"records-{n}.log", poll_s=0.05)
    if stats.returncode != 0:
        raise SystemExit(f"results phase failed for n={n}:\n" + (work / f"records-{n}.log").read_text()[-2000:])
    size = (run / "samples.jsonl").stat().st_size
    shutil.rmtree(run)
    return {
        "n": n,
        "peak_rss_mib": round(stats.peak_rss_bytes / MIB, 1),
        "max_rss_mib": round(stats.max_rss_bytes / MIB, 1),
        "wall_s": round(stats.wall_s, 1),
        "cpu_s": round(stats.cpu_s, 1),
        "samples_jsonl_mib": round(size / MIB, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="250,1000,4000", help="comma-separated record counts")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--results-sizes", default="1000,4000,17000", help="record counts for the end-of-run phase alone ('' to skip)"
    )
    parser.add_argument("--keep", action="store_true", help="keep earlier rows of sizes not measured now")
    args = parser.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    results_sizes = sorted({int(s) for s in args.results_sizes.split(",") if s.strip()})
    started = machine()
    rows = []
    phase_rows = []
    with tempfile.TemporaryDirectory(prefix="cvbench-memory-") as tmp:
        for n in sizes:
            row = measure(n, args.concurrency, Path(tmp))
            rows.append(row)
            print(
                f"run     n={n:>6}  peak RSS {row['peak_rss_mib']:>7.1f} MiB (process {row['max_rss_mib']:.1f})  "
                f"wall {row['wall_s']:>6.1f} s  cpu {row['cpu_s']:>6.1f} s",
                flush=True,
            )
        for n in results_sizes:
            row = measure_results_phase(Path(tmp) / f"samples-{sizes[0]}.jsonl", n, Path(tmp))
            phase_rows.append(row)
            print(
                f"results n={n:>6}  peak RSS {row['peak_rss_mib']:>7.1f} MiB (process {row['max_rss_mib']:.1f})  "
                f"wall {row['wall_s']:>6.1f} s",
                flush=True,
            )
    previous = RESULTS_DIR / "memory.json"
    if args.keep and previous.exists():
        old = json.loads(previous.read_text(encoding="utf-8"))
        measured = {r["n"] for r in rows}
        rows = sorted([*rows, *(r for r in old.get("sizes", []) if r["n"] not in measured)], key=lambda r: r["n"])
        measured = {r["n"] for r in phase_rows}
        phase_rows = sorted(
            [*phase_rows, *(r for r in old.get("results_phase", []) if r["n"] not in measured)], key=lambda r: r["n"]
        )
    first, last = rows[0], rows[-1]
    per_1k = (
        (last["max_rss_mib"] - first["max_rss_mib"]) / ((last["n"] - first["n"]) / 1000)
        if last["n"] > first["n"]
        else None
    )
    result = {
        "benchmark": "memory",
        "command": "cvbench run --model random --task crossviewbench --no-cache --save-images none",
        "concurrency": args.concurrency,
        "sizes": rows,
        "growth_mib_per_1k_records": None if per_1k is None else round(per_1k, 2),
        "results_phase": phase_rows,
        "machine": started,
    }
    path = write_result("memory", result)
    print(f"growth {result['growth_mib_per_1k_records']} MiB per 1,000 records; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
