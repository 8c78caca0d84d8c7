"""Shared data for the reliability tests: one procedural synthetic CrossViewBench set
(generated once per session with the synthetic generator), replicated into datasets of any
size whose questions carry an `[item <id>]` marker, so each record's prompt is unique and the
fault server's deterministic answer can be recomputed from the record."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SynthBase:
    folder: Path  # holds crossviewbench.jsonl and images/
    lines: tuple[str, ...]


@dataclass(frozen=True)
class ReplicatedData:
    root: Path  # --data-dir; the task is `crossviewbench`
    sample_ids: tuple[str, ...]


@pytest.fixture(scope="session")
def synth_base(tmp_path_factory: pytest.TempPathFactory) -> SynthBase:
    from cvbench.tasks import synthetic

    folder = tmp_path_factory.mktemp("synth") / "crossviewbench"
    path = synthetic.generate_crossviewbench(folder, per_type=2, seed=0)
    lines = tuple(ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip())
    return SynthBase(folder=folder, lines=lines)


def replicate(base: SynthBase, root: Path, n_samples: int) -> ReplicatedData:
    """`n_samples` CrossViewBench records cycling over the synthetic ones, each with its own id
    and an `[item <id>]` marker at the start of its question."""
    folder = root / "crossviewbench"
    folder.mkdir(parents=True)
    shutil.copytree(base.folder / "images", folder / "images")
    ids: list[str] = []
    with open(folder / "crossviewbench.jsonl", "w", encoding="utf-8") as fh:
        for k in range(n_samples):
            record = json.loads(base.lines[k % len(base.lines)])
            sid = f"{record['sample_id']}-r{k // len(base.lines)}"
            record["sample_id"] = sid
            record["question"] = f"[item {sid}] {record['question']}"
            ids.append(sid)
            fh.write(json.dumps(record) + "\n")
    return ReplicatedData(root=root, sample_ids=tuple(ids))


def cli_env(tmp: Path, **extra: str) -> dict[str, str]:
    """Environment for a `cvbench` subprocess: this checkout importable, a private user cache,
    no API keys or endpoints inherited from the developer's shell."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("CVBENCH_") or k.endswith("_API_KEY") or k in ("GOOGLE_API_KEY",))
    }
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "CVBENCH_CACHE_DIR": str(tmp / "user-cache"),
            "NO_COLOR": "1",
            "COLUMNS": "200",
            **extra,
        }
    )
    return env


def cvbench(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cvbench.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        check=False,
        text=True,
        timeout=timeout,
    )


def cvbench_popen(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cvbench.cli", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def cli_run_args(model: str, base_url: str, root: Path, out: Path, cache: Path, concurrency: int) -> list[str]:
    """`cvbench run` against a loopback server on the replicated CrossViewBench data, no images saved."""
    return [
        "run",
        "--model",
        model,
        "--base-url",
        base_url,
        "--task",
        "crossviewbench",
        "--data-dir",
        str(root),
        "--out",
        str(out),
        "--cache",
        str(cache),
        "--save-images",
        "none",
        "--concurrency",
        str(concurrency),
        "--no-progress",
    ]


def write_two_view_crossviewbench(data: Path, rows: Callable[[list[str]], list[dict[str, Any]]]) -> None:
    """A CrossViewBench folder `data/crossviewbench` with two generated views; `rows(images)` gives
    its JSONL records (tests.tasks.builders.cvb_record)."""
    from tests.tasks.builders import write_image, write_jsonl

    folder = data / "crossviewbench"
    images = ["images/a.png", "images/b.png"]
    write_image(folder / images[0], seed=1)
    write_image(folder / images[1], seed=2)
    write_jsonl(folder / "crossviewbench.jsonl", rows(images))


def run_on_crossviewbench(
    model: str, base_url: str, data: Path, run_dir: Path, env: dict[str, str], cwd: Path, *extra: str
) -> None:
    """`cvbench run` (no cache, no progress) on the CrossViewBench task under `data`; it must succeed."""
    args = ["run", "--model", model, "--base-url", base_url, "--task", "crossviewbench", "--data-dir", str(data)]
    done = cvbench([*args, "--out", str(run_dir), "--no-cache", "--no-progress", *extra], env, cwd)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
