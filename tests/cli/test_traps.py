"""Issue 19 item 8: the small traps a new user falls into are closed, each with a message that says
what to do."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from cvbench.cli import cli
from cvbench.model_adapters.registry import PROVIDERS
from tests.cli.conftest import REPO, Cli


def test_a_data_dir_that_does_not_exist_is_an_error_naming_the_fix(tmp_path: Path, run_cli: Cli) -> None:
    missing = tmp_path / "nowhere"
    for args in (["run", "--limit", "1"], ["render", "--task", "synth-mmvm", "--sample", "x", "--out", "o"]):
        proc = run_cli(*args, "--data-dir", str(missing))
        assert proc.returncode == 1, proc.stderr
        assert f"{missing} does not exist" in proc.stderr
        assert f"mkdir -p {missing}" in proc.stderr and f"cvbench data download mmvm --dir {missing}" in proc.stderr
        assert not missing.exists()  # nothing created, nothing generated


def test_options_that_apply_to_no_given_task_are_errors(tmp_path: Path, run_cli: Cli) -> None:
    proc = run_cli("run", "--task", "synth-crossviewbench", "--candidates", "4", "--limit", "1")
    assert proc.returncode == 1
    assert "--candidates 4 does not apply to 'synth-crossviewbench'" in proc.stderr
    proc = run_cli("run", "--task", "synth-crossviewbench", "--style", "upstream", "--limit", "1")
    assert proc.returncode == 1 and "--style upstream is MMVM's own drawing rule" in proc.stderr
    proc = run_cli("render", "--task", "synth-crossviewbench", "--sample", "x", "--out", "o", "--candidates", "4")
    assert proc.returncode == 1 and "does not apply to 'synth-crossviewbench'" in proc.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "o").exists()


def test_did_you_mean_for_commands_tasks_and_models(tmp_path: Path, run_cli: Cli) -> None:
    proc = run_cli("run", "--task", "synth-mmv")
    assert proc.returncode == 1 and "unknown task 'synth-mmv'. Did you mean 'synth-mmvm'?" in proc.stderr
    proc = run_cli("run", "--model", "gpt4o", "--task", "synth-mmvm", "--limit", "1", "--no-progress")
    assert proc.returncode == 1 and "Did you mean 'gpt-4o'" in proc.stderr, proc.stderr
    proc = run_cli("run", "--model", "mask-heuristc", "--task", "synth-mmvm", "--limit", "1", "--no-progress")
    assert "Did you mean 'mask-heuristic'" in proc.stderr
    proc = run_cli("rnu")
    assert proc.returncode == 2 and "Did you mean 'run'?" in proc.stderr


def test_the_shard_base_is_stated_in_help_and_error(run_cli: Cli) -> None:
    proc = run_cli("run", "--shard", "4/4", "--limit", "1")
    assert proc.returncode == 1 and "0 <= I < N" in proc.stderr and "counted from 0" in proc.stderr
    result = CliRunner().invoke(cli, ["run", "--help"])
    assert "counted from 0" in " ".join(result.output.split())


def test_samples_lists_ids_with_their_slices_and_filters(tmp_path: Path, run_cli: Cli) -> None:
    proc = run_cli("samples", "synth-mmvm")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines and all(re.fullmatch(r"\S+\tcue=\S+  bucket=\S+", line) for line in lines), lines[:3]
    total = len(lines)
    assert f"{total} of {total} samples of synth-mmvm" in proc.stderr
    cl = run_cli("samples", "synth-mmvm", "--filter", "cue=CL")
    assert cl.returncode == 0
    assert 0 < len(cl.stdout.splitlines()) < total
    assert all("CL" in line.split("\t")[1].split("  ")[0] for line in cl.stdout.splitlines())
    sample_id = cl.stdout.split("\t", 1)[0]
    render = run_cli("render", "--task", "synth-mmvm", "--sample", sample_id, "--out", "r", "--candidates", "4")
    assert render.returncode == 0, render.stderr  # the listed id is the id render takes
    bad = run_cli("samples", "synth-mmvm", "--filter", "colour=red")
    assert bad.returncode == 1 and "slice dimensions are cue, bucket" in bad.stderr


def test_the_mmvm_missing_data_message_says_each_thing_once(tmp_path: Path, run_cli: Cli) -> None:
    (tmp_path / "empty").mkdir()
    proc = run_cli("samples", "mmvm", "--data-dir", str(tmp_path / "empty"))
    assert proc.returncode == 1
    assert "zhouyik/MMVMBench" in proc.stderr
    for phrase in ("cvbench data download mmvm", "by hand", "Expected:"):
        assert proc.stderr.count(phrase) == 1, (phrase, proc.stderr)


def test_models_and_docs_agree_about_each_baseline() -> None:
    running = (REPO / "docs" / "running.md").read_text(encoding="utf-8")
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([a-z-]+)` \| (.+) \|$", running, re.M)}
    for name in ("random", "first-option", "mask-heuristic"):
        assert name in rows, f"docs/running.md has no row for {name}"
    heuristic = PROVIDERS["mask-heuristic"].description
    assert "colour histograms" in heuristic and "colour histogram" in rows["mask-heuristic"]
    assert "without looking at pixels" not in heuristic
    assert "uniformly random" in PROVIDERS["random"].description and "uniformly random" in rows["random"]
    assert "option A" in PROVIDERS["first-option"].description and "option A" in rows["first-option"]
