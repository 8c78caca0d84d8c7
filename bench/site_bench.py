"""Benchmark: build the leaderboard site for many runs (default 100 runs x 2 benchmarks).

    .venv/bin/python bench/site_bench.py [--runs 100] [--cvb-per-type 6] [--mmvm-n 30] [--samples-per-evaluation 200]

Runs are generated with the test run factory (tests/reports/run_factory.py): CrossViewBench
(17 types) and MMVM (4 candidate settings) records, images, results.json with intervals.
Prints the time and size of the build and writes bench/results/site.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cvbench.core.seeding import rng_for
from cvbench.leaderboard.site import build_site
from tests.reports.run_factory import FakeModel, write_run

ACCESSES = ("api", "open", "native", "baseline")


def fake_models(n: int, seed: int) -> list[FakeModel]:
    models = []
    for i in range(n):
        rng = rng_for(seed, i, "bench-model")
        access = ACCESSES[i % len(ACCESSES)]
        params = None if access in ("api", "baseline") else float(rng.choice([2, 4, 8, 13, 34, 72]))
        models.append(
            FakeModel(
                f"bench:model-{i:03d}",
                f"Model {i:03d}",
                access,
                params,
                skill=float(rng.uniform(0.05, 0.9)),
                unparsed_p=float(rng.uniform(0, 0.1)),
                error_p=float(rng.uniform(0, 0.03)),
            )
        )
    return models


def dir_size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--cvb-per-type", type=int, default=6)
    parser.add_argument("--mmvm-n", type=int, default=30)
    parser.add_argument("--samples-per-evaluation", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "site.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cvbench-site-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        store: dict = {}
        runs = [
            write_run(
                root / "runs",
                m,
                name=f"run-{i:03d}",
                cvb_per_type=args.cvb_per_type,
                mmvm_n=args.mmvm_n,
                seed=args.seed,
                image_store=store,
            )
            for i, m in enumerate(fake_models(args.runs, args.seed))
        ]
        generate_s = time.perf_counter() - t0
        records = sum(len((r / "samples.jsonl").read_text(encoding="utf-8").splitlines()) for r in runs)

        t1 = time.perf_counter()
        site = build_site(runs, root / "site", samples_per_evaluation=args.samples_per_evaluation, seed=args.seed)
        build_s = time.perf_counter() - t1
        n_files, n_bytes = dir_size(root / "site")
        html_bytes = sum(p.stat().st_size for p in (root / "site").rglob("*.html"))
        largest_path = max((root / "site").rglob("*.html"), key=lambda p: p.stat().st_size)
        largest: dict[str, Any] = {"name": largest_path.name, "bytes": largest_path.stat().st_size}

    result = {
        "benchmark": "site_build",
        "runs": args.runs,
        "benchmarks_per_run": 2,
        "records": records,
        "generate_runs_s": round(generate_s, 3),
        "build_s": round(build_s, 3),
        "build_ms_per_run": round(1000 * build_s / max(args.runs, 1), 2),
        "pages": site.pages,
        "tables": site.tables,
        "samples_in_browsers": site.samples,
        "images_copied": site.images,
        "site_files": n_files,
        "site_bytes": n_bytes,
        "html_bytes": html_bytes,
        "largest_page": largest,
        "settings": {
            "cvb_per_type": args.cvb_per_type,
            "mmvm_n": args.mmvm_n,
            "samples_per_evaluation": args.samples_per_evaluation,
            "seed": args.seed,
        },
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.machine(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"{args.runs} runs x 2 benchmarks ({records} records): generated in {generate_s:.1f} s, "
        f"site built in {build_s:.1f} s ({result['build_ms_per_run']} ms/run)"
    )
    print(
        f"site: {site.pages} pages, {n_files} files, {n_bytes / 1e6:.1f} MB "
        f"(HTML {html_bytes / 1e6:.1f} MB; largest page {largest['name']} {largest['bytes'] / 1e3:.0f} kB)"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
