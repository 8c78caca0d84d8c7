"""The example GitHub workflow: valid YAML, the steps docs/ci.md promises, and cvbench commands
that the real command line accepts (a renamed option would otherwise break users' CI silently)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest

from cvbench.cli import cli

yaml = pytest.importorskip("yaml")

WORKFLOW = Path(__file__).resolve().parents[2] / "docs" / "examples" / "cvbench-gpu-runner.yml"


def load_workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def steps() -> list[dict[str, Any]]:
    jobs = load_workflow()["jobs"]
    assert list(jobs) == ["evaluate"]
    return jobs["evaluate"]["steps"]


def cvbench_commands() -> list[list[str]]:
    """Every `cvbench ...` shell command in the workflow's run blocks, continuation lines joined."""
    env = {k: str(v) for k, v in load_workflow()["env"].items()}
    commands = []
    for step in steps():
        script = step.get("run", "")
        script = re.sub(r"\\\n\s*", " ", script)
        for line in script.splitlines():
            line = line.strip()
            if line.startswith("cvbench "):
                # shell variables -> the workflow's env values, or a placeholder (runner-provided paths)
                line = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), f"VAR_{m.group(1)}"), line)
                commands.append(shlex.split(line)[1:])
    return commands


def test_workflow_triggers_and_permissions() -> None:
    wf = load_workflow()
    triggers = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads a bare `on` as True
    assert set(triggers) >= {"push", "pull_request"}
    assert triggers["push"]["branches"] == ["main"]
    assert wf["permissions"]["actions"] == "read"


def test_workflow_has_the_documented_steps() -> None:
    all_steps = steps()
    uses = [s.get("uses", "") for s in all_steps]
    scripts = "\n".join(s.get("run", "") for s in all_steps)
    assert any(u.startswith("actions/checkout@") for u in uses)
    cache_steps = [s for s in all_steps if s.get("uses", "").startswith("actions/cache@")]
    response_cache = [s for s in cache_steps if "responses" in s["with"]["path"]]
    assert len(response_cache) == 1 and "restore-keys" in response_cache[0]["with"]
    assert "github.run_id" in response_cache[0]["with"]["key"]  # a fresh key each run: caches are immutable
    assert load_workflow()["env"]["CVBENCH_RESPONSE_CACHE"].endswith("responses.sqlite")
    assert re.search(r"nohup vllm serve .*&\s*$", re.sub(r"\\\n\s*", " ", scripts), re.M)
    assert "/health" in scripts and "kill -0" in scripts
    assert "gh run download" in scripts and "cvbench-run-main" in scripts
    uploads = [s for s in all_steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert {u["with"]["name"] for u in uploads} >= {"cvbench-run-main"}
    assert any("compare.json" in u["with"]["path"] for u in uploads)


def test_workflow_cvbench_commands_parse_with_the_real_cli() -> None:
    commands = cvbench_commands()
    names = [c[0] for c in commands]
    assert "run" in names and "compare" in names
    for args in commands:
        name, rest = args[0], args[1:]
        command = cli.get_command(click.Context(cli), name)
        assert command is not None, f"the workflow calls an unknown command: cvbench {name}"
        ctx = command.make_context(name, list(rest), resilient_parsing=False)  # raises on unknown options
        if name == "run":
            assert ctx.params["model"].startswith("openai-compatible:")
            assert ctx.params["base_urls"] and ctx.params["out"] == "runs/this"
        if name == "compare":
            assert ctx.params["run_a"] == "runs/main" and ctx.params["run_b"] == "runs/this"
            assert ctx.params["fail_on_regression"] is True
            assert ctx.params["report_path"] and ctx.params["markdown_path"]
