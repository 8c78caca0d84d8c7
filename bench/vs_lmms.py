"""cvbench against lmms-eval on the same work: the bench set's CrossViewBench questions, exported with
`cvbench export-lmms`, answered by the same instant OpenAI-compatible server; lmms-eval with its
default settings (`--model openai`, images re-encoded as its LMMS_IMAGE_ENCODE_FORMAT default,
PNG; the export at its defaults) and `cvbench run --model openai-compatible` at its defaults (the
openai-compatible image contract: JPEG q90 4:4:4). Runs alternate (cvbench, lmms-eval, cvbench,
lmms-eval, ...) so the shared machine's load falls on both alike; CPU seconds (wait4) and peak RSS
of each process tree.

`--n SMALL,LARGE` runs both harnesses at two sizes in each round: the ratio of the per-sample
slopes, (CPU at LARGE - CPU at SMALL) / (LARGE - SMALL), is the ratio of a long run, where
start-up (lmms-eval imports torch and friends: seconds of CPU) is amortised
(`vs_lmms_cpu_ratio`); the ratio at LARGE with start-up included is reported beside it
(`vs_lmms_cpu_ratio_incl_startup`). A single `--n N` gives only the latter.

lmms-eval needs its own environment (requirements/lmms.lock; torch and friends): pass its
Python with --lmms-python. Both harnesses get a fresh render store per run (no reuse between
them or across rounds).

    python bench/vs_lmms.py --lmms-python /path/to/lmms-venv/bin/python [--n 34,204] [--rounds 2] [--content noisy]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import (
    BENCH_DIR,
    REPO_ROOT,
    InstantServer,
    add_content_argument,
    build_dataset,
    cvbench_run_argv,
    machine,
    run_measured,
    write_result,
)


def lmms_available(python: str) -> str | None:
    """None when `python` imports lmms_eval, else why not."""
    try:
        proc = subprocess.run(
            [python, "-c", "import lmms_eval, cvbench"],
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        )
    except OSError as exc:
        return f"{python}: {exc}"
    return None if proc.returncode == 0 else f"{python}: {proc.stderr.strip().splitlines()[-1:]}"


def lmms_argv(python: str, tasks: Path, out: Path, base_url: str, n: int) -> list[str]:
    return [
        python,
        "-m",
        "lmms_eval",
        "--include_path",
        str(tasks),
        "--tasks",
        "cvbench_suite",
        "--model",
        "openai",
        "--model_args",
        f"model_version=bench,base_url={base_url},api_key=bench,max_retries=1",
        "--output_path",
        str(out),
        "--limit",
        str(n),
    ]


def figures(stats: Any, n: int) -> dict[str, Any]:
    return {
        "cpu_s": round(stats.cpu_s, 3),
        "cpu_s_per_sample": round(stats.cpu_s / n, 5),
        "wall_s": round(stats.wall_s, 3),
        "peak_rss_mib_tree": round(stats.peak_rss_bytes / 2**20, 1),
        "returncode": stats.returncode,
    }


def one_round(
    r: int, n: int, root: Path, tasks: Path, work: Path, server: InstantServer, lmms_python: str | None
) -> dict[str, Any]:
    """cvbench, then lmms-eval (when available), on the first `n` samples; fresh render stores."""
    row: dict[str, Any] = {"n": n}
    env = dict(os.environ, CVBENCH_RENDER_STORE=str(work / f"renders-cvbench-{r}-{n}.sqlite"))
    out = work / f"cvbench-{r}-{n}"
    argv = cvbench_run_argv(root, out, out.parent / f"{out.name}-cache.sqlite", server.base_url, limit=n)
    stats = run_measured(argv, env=env)
    row["cvbench"] = figures(stats, n)
    if lmms_python is not None:
        env = dict(
            os.environ,
            PYTHONPATH=str(REPO_ROOT),
            OPENAI_API_KEY="bench",
            CVBENCH_RENDER_STORE=str(work / f"renders-lmms-{r}-{n}.sqlite"),
        )
        stats = run_measured(lmms_argv(lmms_python, tasks, work / f"lmms-{r}-{n}", server.base_url, n), env=env)
        row["lmms_eval"] = figures(stats, n)
    print(json.dumps(row), flush=True)
    return row


def ratios(rows: list[dict[str, Any]], small: int | None, large: int) -> dict[str, Any]:
    ok = [r for r in rows if "lmms_eval" in r and r["lmms_eval"]["returncode"] == 0 and r["cvbench"]["returncode"] == 0]
    at_large = [r for r in ok if r["n"] == large]
    if not at_large:
        return {}

    def total(rs: list[dict[str, Any]], who: str) -> float:
        return sum(float(r[who]["cpu_s"]) for r in rs)

    out: dict[str, Any] = {
        "vs_lmms_cpu_ratio_incl_startup": round(total(at_large, "lmms_eval") / total(at_large, "cvbench"), 3),
        "vs_lmms_rss_ratio": round(
            max(r["lmms_eval"]["peak_rss_mib_tree"] for r in at_large)
            / max(r["cvbench"]["peak_rss_mib_tree"] for r in at_large),
            3,
        ),
    }
    at_small = [r for r in ok if r["n"] == small]
    if small is not None and at_small:
        k = len(at_small) / len(at_large)  # rounds at each size (equal unless one failed)
        per_sample = {}
        for who in ("cvbench", "lmms_eval"):
            slope = (total(at_large, who) / len(at_large) - total(at_small, who) / len(at_small)) / (large - small)
            startup = total(at_small, who) / len(at_small) - slope * small
            per_sample[who] = {"cpu_s_per_sample": round(slope, 5), "startup_cpu_s": round(startup, 2)}
        out["marginal"] = per_sample
        out["rounds_ratio"] = k
        out["vs_lmms_cpu_ratio"] = round(
            per_sample["lmms_eval"]["cpu_s_per_sample"] / per_sample["cvbench"]["cpu_s_per_sample"], 3
        )
    else:
        out["vs_lmms_cpu_ratio"] = out["vs_lmms_cpu_ratio_incl_startup"]
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lmms-python", required=True, help="the Python of an environment with lmms-eval")
    parser.add_argument("--n", default="34,204", help="N, or SMALL,LARGE for the per-sample slope")
    parser.add_argument("--rounds", type=int, default=2)
    add_content_argument(parser)
    args = parser.parse_args(argv)
    from cvbench.integrations.lmms_export import LmmsExportOptions, export_lmms

    sizes = [int(x) for x in str(args.n).split(",")]
    small, large = (sizes[0], sizes[-1]) if len(sizes) > 1 else (None, sizes[0])
    root = build_dataset(large, content=args.content)
    result: dict[str, Any] = {
        "machine": machine(),
        "n": large,
        "sizes": sizes,
        "content": args.content,
        "rounds": [],
        "vs_lmms_cpu_ratio": None,
    }
    missing = lmms_available(args.lmms_python)
    work = Path(tempfile.mkdtemp(prefix="cvbench-vs-lmms-", dir=BENCH_DIR / ".data"))
    tasks = work / "tasks"
    export_lmms(LmmsExportOptions(tasks=("crossviewbench",), out=tasks, data_dir=root))
    with InstantServer() as server:
        for r in range(args.rounds):
            for n in sizes:
                row = one_round(r, n, root, tasks, work, server, None if missing else args.lmms_python)
                row["loadavg"] = list(os.getloadavg())
                result["rounds"].append(row)
    result.update(ratios(result["rounds"], small, large))
    ok = result.get("vs_lmms_cpu_ratio") is not None
    if ok:
        print(
            f"lmms-eval / cvbench: CPU per sample {result['vs_lmms_cpu_ratio']}x "
            f"(at {large} incl. start-up {result['vs_lmms_cpu_ratio_incl_startup']}x), "
            f"peak RSS {result['vs_lmms_rss_ratio']}x"
        )
    else:
        result["lmms_missing"] = missing or "lmms-eval runs failed (see their return codes)"
        print(f"lmms-eval not measured: {result['lmms_missing']}")
    shutil.rmtree(work, ignore_errors=True)
    suffix = "-noisy" if args.content == "noisy" else ""
    print("written", write_result(f"vs-lmms{suffix}", result))
    return 0 if ok else 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
