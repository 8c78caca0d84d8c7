"""cvbench against lmms-eval on the same work: the bench set's CrossViewBench questions, exported with
`cvbench export-lmms`, answered by the same instant OpenAI-compatible server; lmms-eval with its
default settings (`--model openai`, images re-encoded as its LMMS_IMAGE_ENCODE_FORMAT default,
PNG) and `cvbench run --model openai-compatible` (PNG for a server without an image contract).
Runs alternate (cvbench, lmms-eval, cvbench, lmms-eval, ...) so the shared machine's load falls
on both alike; CPU seconds (wait4) and peak RSS of each process tree.

lmms-eval needs its own environment (requirements/lmms.lock; torch and friends): pass its
Python with --lmms-python. Both harnesses get a fresh render store per run (no reuse between
them or across rounds).

    python bench/vs_lmms.py --lmms-python /path/to/lmms-venv/bin/python [--n 204] [--rounds 2]
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

from common import BENCH_DIR, PYTHON, REPO_ROOT, InstantServer, build_dataset, machine, run_measured, write_result


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


def cvbench_argv(root: Path, out: Path, base_url: str) -> list[str]:
    return [
        PYTHON,
        "-m",
        "cvbench.cli",
        "run",
        "--model",
        "openai-compatible:bench",
        "--base-url",
        base_url,
        "--task",
        "crossviewbench",
        "--data-dir",
        str(root),
        "--out",
        str(out),
        "--cache",
        str(out.parent / f"{out.name}-cache.sqlite"),
        "--save-images",
        "none",
        "--no-progress",
    ]


def lmms_argv(python: str, tasks: Path, out: Path, base_url: str) -> list[str]:
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
    ]


def figures(stats: Any, n: int) -> dict[str, Any]:
    return {
        "cpu_s": round(stats.cpu_s, 3),
        "cpu_s_per_sample": round(stats.cpu_s / n, 5),
        "wall_s": round(stats.wall_s, 3),
        "peak_rss_mib_tree": round(stats.peak_rss_bytes / 2**20, 1),
        "returncode": stats.returncode,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lmms-python", required=True, help="the Python of an environment with lmms-eval")
    parser.add_argument("--n", type=int, default=204)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    from cvbench.integrations.lmms_export import LmmsExportOptions, export_lmms

    root = build_dataset(args.n)
    result: dict[str, Any] = {"machine": machine(), "n": args.n, "rounds": [], "vs_lmms_cpu_ratio": None}
    missing = lmms_available(args.lmms_python)
    work = Path(tempfile.mkdtemp(prefix="cvbench-vs-lmms-", dir=BENCH_DIR / ".data"))
    tasks = work / "tasks"
    export_lmms(LmmsExportOptions(tasks=("crossviewbench",), out=tasks, data_dir=root))
    with InstantServer() as server:
        for r in range(args.rounds):
            row: dict[str, Any] = {}
            env = dict(os.environ, CVBENCH_RENDER_STORE=str(work / f"renders-cvbench-{r}.sqlite"))
            stats = run_measured(cvbench_argv(root, work / f"cvbench-{r}", server.base_url), env=env)
            row["cvbench"] = figures(stats, args.n)
            if missing is None:
                env = dict(
                    os.environ,
                    PYTHONPATH=str(REPO_ROOT),
                    OPENAI_API_KEY="bench",
                    CVBENCH_RENDER_STORE=str(work / f"renders-lmms-{r}.sqlite"),
                )
                stats = run_measured(lmms_argv(args.lmms_python, tasks, work / f"lmms-{r}", server.base_url), env=env)
                row["lmms_eval"] = figures(stats, args.n)
            result["rounds"].append(row)
            print(json.dumps(row), flush=True)
    ok = [r for r in result["rounds"] if "lmms_eval" in r and r["lmms_eval"]["returncode"] == 0]
    if ok:
        cv = sum(r["cvbench"]["cpu_s"] for r in ok)
        lm = sum(r["lmms_eval"]["cpu_s"] for r in ok)
        result["vs_lmms_cpu_ratio"] = round(lm / cv, 3)
        result["vs_lmms_rss_ratio"] = round(
            max(r["lmms_eval"]["peak_rss_mib_tree"] for r in ok) / max(r["cvbench"]["peak_rss_mib_tree"] for r in ok),
            3,
        )
        print(f"lmms-eval / cvbench: CPU {result['vs_lmms_cpu_ratio']}x, peak RSS {result['vs_lmms_rss_ratio']}x")
    else:
        result["lmms_missing"] = missing or "lmms-eval runs failed (see their return codes)"
        print(f"lmms-eval not measured: {result['lmms_missing']}")
    shutil.rmtree(work, ignore_errors=True)
    print("written", write_result("vs-lmms", result))
    return 0 if ok else 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
