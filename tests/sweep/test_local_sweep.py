"""The local executor: a 4-run sweep gives the run folders of the same 4 `cvbench run`
commands; a rerun has nothing left to do."""

from __future__ import annotations

import json
from pathlib import Path

from tests.sweep.conftest import FourRuns, assert_same_runs, cvbench_cli, sweep_env


def test_local_sweep_equals_the_runs_done_one_by_one(four_runs: FourRuns, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    sweep = four_runs.sweep_file(tmp_path / "four.toml", out, shards=1)
    env = sweep_env(tmp_path)
    done = cvbench_cli(["sweep", str(sweep)], env, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_runs(out, four_runs.runs_root)
    assert "[sweep] runs 4 done, 0 running, 0 left; 48 records" in done.stderr
    status = json.loads((out / "four.status.json").read_text())
    assert status["done"] == 4 and status["left"] == 0 and status["records"] == 48

    again = cvbench_cli(["sweep", str(sweep)], env, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 records" in again.stderr.splitlines()[-1]  # every run was already complete
    assert_same_runs(out, four_runs.runs_root)
