"""Overhead of the Ray executor of `cvbench sweep` against the local executor, side by side in
one invocation on this machine, and the driver's per-record cost of merging shards.

Workload: a sweep of 2 runs (seeds 0 and 1) of `openai-compatible:bench` on the synthetic
CrossViewBench set replicated to unique questions, against the instant server (answers at
once), no response cache, no saved images, concurrency 8. Each executor runs it at two sizes (N and 3N questions per
run); the difference gives the marginal cost per record apart from the fixed start-up costs
(Python imports, Ray's cluster and actors).

- local: `cvbench sweep S.toml` (shards = 1: exactly `cvbench run`, one run after the other);
- ray: `cvbench sweep S.toml --executor ray` on a Ray cluster this command starts for itself
  (2 shards per run, 2 actors of 1 CPU each), merging the shards at the end of each run.

CPU is the whole process tree's: the driver's (wait4) plus every descendant's (Ray's GCS,
raylet, workers), polled from /proc every 0.2 s (a process's last 0.2 s can be missed).

    .venv/bin/python bench/sweep_overhead.py            # N = 100 (about 5 minutes on 2 cores)
    .venv/bin/python bench/sweep_overhead.py --n 50     # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import PYTHON, REPO_ROOT, InstantServer, machine, write_result

TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu(root: int, seen: dict[int, float]) -> None:
    """Update `seen` (pid -> cumulative CPU s) with `root` and its descendants."""
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read().rsplit(b")", 1)[1].split()
            parent[int(entry.name)] = int(stat[1])
            cpu[int(entry.name)] = (int(stat[11]) + int(stat[12])) / TICK
        except (OSError, IndexError, ValueError):
            continue
    for pid in cpu:
        p, hops = pid, 0
        while p is not None and p != root and hops < 32:
            p, hops = parent.get(p), hops + 1
        if p == root:
            seen[pid] = max(seen.get(pid, 0.0), cpu[pid])


def measured(argv: list[str], env: dict[str, str], cwd: Path) -> dict[str, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen: dict[int, float] = {}
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            tree_cpu(proc.pid, seen)
            done.wait(0.2)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    poller.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{err[-3000:]}")
    # wait4 counts the driver with the children it reaped (Ray's processes are partly reaped by
    # others): the tree's figure is the polled one, the driver's own last poll included
    return {
        "wall_s": round(wall, 2),
        "driver_cpu_s": round(seen.get(proc.pid, 0.0), 2),
        "wait4_cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "tree_cpu_s": round(max(sum(seen.values()), usage.ru_utime + usage.ru_stime), 2),
    }


def build_data(root: Path, n: int) -> Path:
    """`n` CrossViewBench records (the procedural synthetic set, each record its own sample id
    and a unique question), images copied into the data folder. (bench/common.py's set links
    its images to a shared pool, which the loader refuses as outside the data folder.)"""
    from cvbench.tasks import synthetic

    base = root / "base" / "crossviewbench"
    lines = [ln for ln in synthetic.generate_crossviewbench(base, per_type=2, seed=0).read_text().splitlines() if ln]
    folder = root / "data" / "crossviewbench"
    folder.mkdir(parents=True)
    shutil.copytree(base / "images", folder / "images")
    with open(folder / "crossviewbench.jsonl", "w", encoding="utf-8") as fh:
        for k in range(n):
            record = json.loads(lines[k % len(lines)])
            record["sample_id"] = f"{record['sample_id']}-r{k // len(lines)}"
            record["question"] = f"[item {record['sample_id']}] {record['question']}"
            fh.write(json.dumps(record) + "\n")
    return root / "data"


def sweep_file(path: Path, data: Path, out: Path, base_url: str, n: int, shards: int) -> Path:
    path.write_text(
        f'out = "{out}"\ndata_dir = "{data}"\nlimit = {n}\nno_cache = true\nsave_images = false\n'
        f"concurrency = 8\nshards = {shards}\n"
        f'[[models]]\nspec = "openai-compatible:bench"\nbase_urls = ["{base_url}"]\nworkers = 2\n'
        f'[matrix]\ntasks = ["crossviewbench"]\nseeds = [0, 1]\n',
        encoding="utf-8",
    )
    return path


def merge_cost(run_dir_parent: Path) -> dict[str, Any]:
    """The driver's merge of one run's shards (merge_runs + job-order rewrite), timed and with
    its peak Python allocation, per record."""
    from cvbench.sweep.execute import finish_run
    from cvbench.sweep.plan import Unit
    from cvbench.sweep.spec import load_sweep

    sweep = load_sweep(run_dir_parent / "sweep.toml")
    run = sweep.runs[0]
    records = (run.run_dir / "samples.jsonl").read_bytes().count(b"\n")
    units = [Unit(run, (i, sweep.shards)) for i in range(sweep.shards)]
    shutil.rmtree(run.run_dir)  # merge again from the shards: timed plainly, then traced for memory
    t0, c0 = time.perf_counter(), time.process_time()
    finish_run(run, units)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    shutil.rmtree(run.run_dir)
    tracemalloc.start()
    finish_run(run, units)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "records": records,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "cpu_ms_per_record": round(1000 * cpu / records, 2),
        "records_per_s": round(records / wall, 1),
        "peak_alloc_bytes": peak,
        "peak_alloc_bytes_per_record": round(peak / records),
        "record_bytes_on_disk": round((run.run_dir / "samples.jsonl").stat().st_size / records),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100, help="questions per run at the small size (3x at the large)")
    args = ap.parse_args()
    measured_on = machine()  # the load average at the start (write_result adds the end's)
    tmp = Path(tempfile.mkdtemp(prefix="sweepbench"))
    data = build_data(tmp, 3 * args.n)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CVBENCH_")}
    env.update({"PYTHONPATH": str(REPO_ROOT), "CVBENCH_CACHE_DIR": str(tmp / "uc"), "RAY_USAGE_STATS_ENABLED": "0"})
    rows: dict[str, dict[str, Any]] = {}
    try:
        with InstantServer() as server:
            for n in (args.n, 3 * args.n):
                for executor, shards in (("local", 1), ("ray", 2)):
                    work = tmp / f"{executor}-{n}"
                    work.mkdir()
                    path = sweep_file(work / "sweep.toml", data, work / "runs", server.base_url, n, shards)
                    argv = [PYTHON, "-m", "cvbench.cli", "sweep", str(path)]
                    argv += ["--executor", "ray"] if executor == "ray" else []
                    load = os.getloadavg()[0]
                    m = measured(argv, env, work)
                    records = 2 * n
                    rows[f"{executor}-{n}"] = {
                        "executor": executor,
                        "records": records,
                        **m,
                        "records_per_s": round(records / m["wall_s"], 2),
                        "cpu_ms_per_record": round(1000 * m["tree_cpu_s"] / records, 2),
                        "loadavg_1m_before": round(load, 2),
                    }
                    print(json.dumps(rows[f"{executor}-{n}"]), flush=True)
        marginal = {}
        for executor in ("local", "ray"):
            small, large = rows[f"{executor}-{args.n}"], rows[f"{executor}-{3 * args.n}"]
            extra = large["records"] - small["records"]
            marginal[executor] = {
                "cpu_ms_per_record": round(1000 * (large["tree_cpu_s"] - small["tree_cpu_s"]) / extra, 2),
                "records_per_s": round(extra / max(large["wall_s"] - small["wall_s"], 1e-9), 2),
                "fixed_cpu_s": round(
                    small["tree_cpu_s"] - small["records"] * (large["tree_cpu_s"] - small["tree_cpu_s"]) / extra, 2
                ),
            }
        merge = merge_cost(tmp / f"ray-{3 * args.n}")
        result = {
            "benchmark": "sweep_overhead",
            "workload": "2 runs (seeds 0, 1) of openai-compatible:bench on the synthetic CrossViewBench set "
            "replicated (unique questions), "
            "instant server, no cache, no saved images, concurrency 8; local: shards 1; "
            "ray: 2 shards per run, 2 actors x 1 CPU, "
            "a Ray cluster started by the sweep",
            "runs": rows,
            "marginal": marginal,
            "ratio_ray_over_local_cpu_per_record": round(
                marginal["ray"]["cpu_ms_per_record"] / marginal["local"]["cpu_ms_per_record"], 3
            ),
            "driver_merge": merge,
            "machine": measured_on,
        }
        print(json.dumps({"marginal": marginal, "driver_merge": merge}, indent=2))
        print(write_result("sweep_overhead", result))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
