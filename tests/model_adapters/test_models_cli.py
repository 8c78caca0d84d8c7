"""`cvbench models`: providers and aliases, whether each runs here, and how to fix it when not."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from cvbench.cli import cli
from tests.model_adapters.api_helpers import TEST_KEYS, isolate_keys


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    isolate_keys(monkeypatch, tmp_path)


def test_models_json_reports_keys_servers_and_fixes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEYS["OPENAI_API_KEY"])
    result = CliRunner().invoke(cli, ["models", "--json", "--base-url", "http://127.0.0.1:8000/v1"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    providers = {row["name"]: row for row in document["providers"]}
    aliases = {row["name"]: row for row in document["aliases"]}
    assert providers["openai"]["can_run"] and providers["random"]["can_run"]
    assert providers["openai-compatible"]["can_run"]
    assert not providers["anthropic"]["can_run"]
    assert any("ANTHROPIC_API_KEY" in p for p in providers["anthropic"]["problems"])
    assert aliases["gpt-4o"]["can_run"] and aliases["gpt-4o"]["runs_as"] == "openai:gpt-4o"
    assert aliases["qwen3-vl-8b"]["runs_as"] == "openai-compatible:Qwen/Qwen3-VL-8B-Instruct"
    assert aliases["qwen3-vl-8b"]["metadata"]["hf_repo"] == "Qwen/Qwen3-VL-8B-Instruct"
    assert not aliases["gemini-pro"]["can_run"]
    assert document["environment"]["keys"] == ["OPENAI_API_KEY"]
    assert TEST_KEYS["OPENAI_API_KEY"] not in result.output


def test_models_table_names_every_alias() -> None:
    result = CliRunner().invoke(cli, ["models"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in (
        "qwen3-vl-8b",
        "gpt-4o",
        "claude-sonnet",
        "gemini-flash",
        "crossviewer",
        "openai-compatible",
        "mask-heuristic",
    ):
        assert name in result.output
    assert "pip install 'cvbench[" in result.output or "export OPENAI_API_KEY" in result.output


@pytest.mark.parametrize(
    ("entries", "visible"),
    [
        ((), False),
        (("dev/nvidiactl", "dev/nvidia-uvm"), False),  # control nodes without a GPU node
        (("dev/nvidia0",), True),
        (("proc/driver/nvidia/version",), True),
        (("dev/dxg",), True),  # WSL2
    ],
)
def test_nvidia_driver_visible_decides_whether_torch_is_imported(
    tmp_path: Any, entries: tuple[str, ...], visible: bool
) -> None:
    from cvbench.model_adapters.availability import nvidia_driver_visible

    (tmp_path / "proc").mkdir()
    (tmp_path / "dev").mkdir()
    for entry in entries:
        (tmp_path / entry).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / entry).touch()
    assert nvidia_driver_visible(tmp_path) is visible
    assert nvidia_driver_visible(tmp_path / "elsewhere") is True  # no /proc or /dev: cannot tell, ask torch
