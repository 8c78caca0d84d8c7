"""Issue 19 item 9: third-party adapters and tasks register through entry points, found by a real
importlib.metadata lookup: the example plugin (tests/cli/plugin_example, walked through in
docs/plugins.md) is made visible as an installed distribution (a .dist-info folder on the path,
written from its own pyproject.toml), exactly what `pip install` leaves behind."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import Cli

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

EXAMPLE = Path(__file__).with_name("plugin_example")


def install_as_distribution(site: Path) -> Path:
    """Put the example package and its dist-info (METADATA, entry_points.txt) into `site`."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    shutil.copytree(EXAMPLE / "cvbench_last_option", site / "cvbench_last_option")
    info = site / f"cvbench_last_option-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n", encoding="utf-8"
    )
    groups = [
        f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in entries.items())
        for group, entries in project["entry-points"].items()
    ]
    (info / "entry_points.txt").write_text("\n".join(groups), encoding="utf-8")
    return site


@pytest.fixture
def site(tmp_path: Path) -> str:
    return str(install_as_distribution(tmp_path / "site"))


def test_an_installed_plugin_adds_a_provider_and_a_task(tmp_path: Path, run_cli: Cli, site: str) -> None:
    models = run_cli("models", extra_path=site)
    assert models.returncode == 0, models.stderr
    assert any(
        line.startswith("  yes last-option") and "plugin from cvbench-last-option 0.1.0" in line
        for line in models.stdout.splitlines()
    ), models.stdout
    tasks = run_cli("tasks", extra_path=site)
    assert "synth-mmvm-4  [mmvm; official data; settings 4]" in tasks.stdout
    assert run_cli("samples", "synth-mmvm", extra_path=site).returncode == 0  # the data the plugin task reads
    proc = run_cli(
        "run", "--model", "last-option", "--task", "synth-mmvm-4", "--candidates", "4", "--limit", "3",
        "--out", "run", "--no-progress", extra_path=site,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"]["id"] == "last-option:default" and config["tasks"] == ["synth-mmvm-4"]
    records = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert len(records) == 3
    assert all(r["parsed"] == r["options"][-1][0] for r in records)  # the plugin's own rule answered


def test_a_factory_by_module_path_needs_no_entry_point(tmp_path: Path, run_cli: Cli) -> None:
    code = str(EXAMPLE)  # importable, but not installed: no dist-info, no entry point
    proc = run_cli(
        "run", "--model", "cvbench_last_option:make_adapter", "--task", "synth-mmvm", "--limit", "2",
        "--out", "run", "--no-progress", extra_path=code,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"]["id"] == "last-option:default"
    missing = run_cli(
        "run", "--model", "cvbench_last_option:nope", "--task", "synth-mmvm", "--limit", "1", extra_path=code
    )
    assert missing.returncode == 1 and "cvbench_last_option:nope does not exist" in missing.stderr


def test_without_the_plugin_its_names_are_unknown(run_cli: Cli) -> None:
    proc = run_cli("run", "--model", "last-option", "--task", "synth-mmvm", "--limit", "1", "--no-progress")
    assert proc.returncode == 1 and "no provider 'last-option' and no alias of that name" in proc.stderr
    assert "Did you mean 'first-option'" in proc.stderr
    assert "synth-mmvm-4" not in run_cli("tasks").stdout
