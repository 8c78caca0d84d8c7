"""Issue 19 item 5: terminal output readable at 80 columns that uses the full width when there is
more; percentages everywhere; settings in one order; resume and next steps said; generation shown."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.cli.conftest import Cli

RUN = (
    "run",
    "--model",
    "random",
    "--task",
    "synth-crossviewbench,synth-mmvm",
    "--candidates",
    "all,8,4",
    "--limit",
    "3",
)


def numbers_of(metric: dict) -> list[str]:
    lo, hi = metric["ci"]
    return [f"{100 * metric['accuracy']:.1f}", f"[{100 * lo:.1f}, {100 * hi:.1f}]", str(metric["n"])]


def check_table(stdout: str, results: dict) -> None:
    """Every number of results.json is printed whole, on its row."""
    assert "…" not in stdout and "..." not in stdout
    lines = stdout.splitlines()
    for key, ev in results["evaluations"].items():
        rows = [line for line in lines if line.startswith(key)]
        assert rows, f"no row for {key}"
        assert all(n in rows[0] for n in numbers_of(ev["overall"])), (key, rows[0])
        for name, metric in ev["slices"].items():
            assert any(all(n in line for n in numbers_of(metric)) for line in lines if name in line), name


@pytest.mark.parametrize("columns", [80, 200])
def test_run_output_fits_the_terminal_and_never_cuts_a_number(tmp_path: Path, run_cli: Cli, columns: int) -> None:
    proc = run_cli(*RUN, "--out", "run", "--no-progress", columns=columns)
    assert proc.returncode == 0, proc.stderr
    widths = [len(line) for line in proc.stdout.splitlines()]
    assert max(widths) <= columns
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    check_table(proc.stdout, results)
    if columns == 80:
        assert "unp/err/inv" in proc.stdout
    else:  # the room is used: a column per failure kind, the long lines unbroken
        assert re.search(r"unparsed\s+errors\s+invalid", proc.stdout) and max(widths) > 80
    order = [proc.stdout.index(f"synth-mmvm@{s} ") for s in ("4", "8", "all")]
    assert order == sorted(order)  # settings in the one order, whatever order they were given in
    assert "cvbench report run" in proc.stdout and "cvbench view run" in proc.stdout


def test_resume_says_how_many_samples_were_already_done(tmp_path: Path, run_cli: Cli) -> None:
    first = run_cli(*RUN, "--out", "run", "--no-progress")
    assert first.returncode == 0 and "resumed" not in first.stdout
    records = len((tmp_path / "run" / "samples.jsonl").read_text().splitlines())
    again = run_cli(*RUN, "--out", "run", "--no-progress")
    assert again.returncode == 0
    assert f"resumed: {records} samples were already done (kept, not sent again); 0 new this session" in again.stdout


def test_progress_bars_show_percentages_including_first_use_generation(tmp_path: Path, run_cli: Cli) -> None:
    # its own data root: the synthetic set is generated here, on first use, under a bar
    proc = run_cli(*RUN[:4], "synth-mmvm", "--limit", "3", "--data-dir", str(_made(tmp_path / "d")), "--progress")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    generation = [line for line in lines if line.startswith("generating synth-mmvm (first use)")]
    assert generation and "100%" in generation[-1]
    bar = [line for line in lines if line.startswith("baseline:random")]
    assert bar and re.search(r"100% +3/3 +acc \d+\.\d%", bar[-1]), bar
    assert all(len(line) <= 80 for line in lines)


def _made(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.mark.parametrize("columns", [80, 200])
def test_models_is_one_line_per_provider_and_alias(run_cli: Cli, columns: int) -> None:
    proc = run_cli("models", "--base-url", "http://127.0.0.1:9/v1", columns=columns)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    listed = json.loads(run_cli("models", "--json").stdout)
    names = [row["name"] for row in listed["providers"] + listed["aliases"]]
    assert len(lines) == len(names) + 3  # two titles and the hint line
    assert all(len(line) <= columns for line in lines)
    for name in names:
        shown = sum(1 for line in lines if re.match(rf"  (yes|no ) {re.escape(name)} ", line))
        assert shown == names.count(name), name  # crossviewer is a provider and an alias
    verbose = run_cli("models", "--verbose", columns=columns)
    assert "pip install" in verbose.stdout and len(verbose.stdout.splitlines()) > len(lines)
