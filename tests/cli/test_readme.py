"""Issue 19 item 8: every command in README.md's code blocks runs as written, against the built-in data,
through a real shell (globs included). The one that needs a network, a served model at
http://localhost:8000/v1, gets an OpenAI-compatible server on loopback (tests/wire) in its place;
`cvbench view` is checked while it serves, then stopped. Set-up steps (venv, pip, pytest) are what
`.ci/run` itself does, so they are not repeated here."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.cli.conftest import REPO, cli_env
from tests.wire.openai_wire import OpenAIWireServer

SERVED = "http://localhost:8000/v1"
SETUP = ("python3 -m venv", ". .venv/bin/activate", "pip install", "python -m pytest")


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            for part in line.split("&&"):
                command = part.split("  #", 1)[0].strip()
                if command and not command.startswith(SETUP):
                    commands.append(command)
    return commands


def test_the_readme_names_the_commands_it_shows() -> None:
    commands = readme_commands()
    assert commands[0] == "cvbench run"  # the quick start's offline default
    assert all(c.startswith("cvbench ") for c in commands), commands
    assert any(SERVED in c for c in commands) and any(c.startswith("cvbench view") for c in commands)


def test_every_readme_command_runs_as_written(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "cvbench").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m cvbench.cli "$@"\n')
    (bin_dir / "cvbench").chmod(0o755)
    env = cli_env(tmp_path, 100) | {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    with OpenAIWireServer(answer="B") as server:
        for command in readme_commands():
            shell = command.replace(SERVED, server.base_url())
            if command.startswith("cvbench view"):
                check_view(shell, tmp_path, env)
                continue
            proc = subprocess.run(
                ["bash", "-c", shell], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
            )
            assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
        assert server.requests  # the served model was asked
    assert (tmp_path / "runs" / "qwen3-vl-8b" / "synth-mmvm_c4-8-12-all_limit20" / "report.html").is_file()
    assert (tmp_path / "site" / "index.html").is_file()


def check_view(shell: str, cwd: Path, env: dict[str, str]) -> None:
    viewer = subprocess.Popen(
        ["bash", "-c", f"exec {shell} --port 0"], cwd=cwd, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert viewer.stdout is not None
        url = None
        for line in viewer.stdout:
            match = re.search(r"viewer: (http://127\.0\.0\.1:\d+/)", line)
            if match:
                url = match.group(1)
                break
        assert url, "cvbench view printed no URL"
        with urllib.request.urlopen(url + "api/runs", timeout=30) as response:
            runs = json.load(response)["runs"]
        assert {Path(r["path"]).parent.name for r in runs} >= {"mask-heuristic", "qwen3-vl-8b"}
    finally:
        viewer.terminate()
        viewer.wait(10)
