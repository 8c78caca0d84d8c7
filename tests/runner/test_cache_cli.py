from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from cvbench.cli import cli
from cvbench.core.types import Response
from cvbench.runner.cache import ResponseCache


def test_cache_stats_and_clear_commands(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with ResponseCache(path) as cache:
        cache.put("a", "model-a", Response(text="A"))
        cache.put("b", "model-b", Response(text="B"))
    runner = CliRunner()
    out = runner.invoke(cli, ["cache", "stats", "--cache", str(path)])
    assert out.exit_code == 0 and "2 entries" in out.output and "model-a: 1 entries" in out.output
    out = runner.invoke(cli, ["cache", "clear", "--cache", str(path), "--model", "model-a"])
    assert out.exit_code == 0 and "removed 1 entries" in out.output
    with ResponseCache(path) as cache:
        assert cache.get("a") is None and cache.get("b") is not None
    out = runner.invoke(cli, ["cache", "clear", "--cache", str(path)])
    assert "removed 1 entries" in out.output


def test_tasks_command_lists_slices(tiny_data: Any) -> None:
    out = CliRunner().invoke(cli, ["tasks"])
    assert out.exit_code == 0, out.output
    assert "synth-mmvm" in out.output and "tiny-cvb" in out.output
    assert "slices cue: CL, SP, TM, SZ, RP, OO, BR, OM" in out.output


def test_run_and_merge_commands(tiny_data: Any, tmp_path: Path) -> None:
    runner = CliRunner()
    base = [
        "run",
        "--model",
        "random",
        "--task",
        tiny_data.task,
        "--data-dir",
        str(tiny_data.root),
        "--no-cache",
        "--no-progress",
    ]
    for i in range(2):
        out = runner.invoke(cli, [*base, "--shard", f"{i}/2", "--out", str(tmp_path / f"s{i}")])
        assert out.exit_code == 0, out.output
        # the table: one row per evaluation (task@setting) with its slices; no pooled overall row
        assert f"{tiny_data.task}@all" in out.output and "category=correspondence" in out.output
        assert "\noverall " not in out.output
    out = runner.invoke(cli, ["merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "m")])
    assert out.exit_code == 0, out.output
    results = json.loads((tmp_path / "m" / "results.json").read_text())
    assert results["status"] == "complete" and results["overall"]["n"] == tiny_data.n_total
    out = runner.invoke(cli, ["merge", str(tmp_path / "s0"), str(tmp_path / "s0"), "--out", str(tmp_path / "m2")])
    assert out.exit_code == 1 and "twice" in out.output
    out = runner.invoke(cli, [*base, "--shard", "2/2"])
    assert out.exit_code != 0 and "--shard" in out.output
    out = runner.invoke(cli, [*base, "--cache", str(tmp_path / "c.sqlite")])
    assert out.exit_code != 0 and "exclude" in out.output
