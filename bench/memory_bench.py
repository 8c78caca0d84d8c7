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

Writes bench/results/memory.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PYTHON, REPO_ROOT, build_dataset, machine, run_measured, write_result  # noqa: E402

MIB = 1024 * 1024


def measure(n: int, concurrency: int, work: Path) -> dict[str, Any]:
    data = build_dataset(n)
    out = work / f"run-{n}"
    argv = [PYTHON, "-m", "cvbench.cli", "run", "--model", "random", "--task", "crossviewbench", "--data-dir",
            str(data), "--out", str(out), "--no-cache", "--save-images", "none", "--concurrency", str(concurrency),
            "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "CVBENCH_CACHE_DIR": str(work / "user-cache")}
    stats = run_measured(argv, env=env, log=work / f"run-{n}.log", poll_s=0.1)
    if stats.returncode != 0:
        raise SystemExit(f"cvbench run failed for n={n}; see {work / f'run-{n}.log'}:\n"
                         + (work / f"run-{n}.log").read_text()[-2000:])
    records = sum(1 for _ in open(out / "samples.jsonl", encoding="utf-8"))
    samples_bytes = (out / "samples.jsonl").stat().st_size
    shutil.rmtree(out)
    return {"n": n, "records": records, "peak_rss_mib": round(stats.peak_rss_bytes / MIB, 1),
            "max_rss_mib": round(stats.max_rss_bytes / MIB, 1), "wall_s": round(stats.wall_s, 1),
            "cpu_s": round(stats.cpu_s, 1), "samples_jsonl_mib": round(samples_bytes / MIB, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="250,1000,4000", help="comma-separated record counts")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    started = machine()
    rows = []
    with tempfile.TemporaryDirectory(prefix="cvbench-memory-") as tmp:
        for n in sizes:
            row = measure(n, args.concurrency, Path(tmp))
            rows.append(row)
            print(f"n={n:>6}  peak RSS {row['peak_rss_mib']:>7.1f} MiB (process {row['max_rss_mib']:.1f})  "
                  f"wall {row['wall_s']:>6.1f} s  cpu {row['cpu_s']:>6.1f} s", flush=True)
    first, last = rows[0], rows[-1]
    per_1k = ((last["max_rss_mib"] - first["max_rss_mib"]) / ((last["n"] - first["n"]) / 1000)
              if last["n"] > first["n"] else None)
    result = {"benchmark": "memory", "command": "cvbench run --model random --task crossviewbench --no-cache "
                                                "--save-images none", "concurrency": args.concurrency,
              "sizes": rows, "growth_mib_per_1k_records": None if per_1k is None else round(per_1k, 2),
              "machine": started}
    path = write_result("memory", result)
    print(f"growth {result['growth_mib_per_1k_records']} MiB per 1,000 records; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
