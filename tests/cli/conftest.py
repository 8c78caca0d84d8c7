"""Shared helpers of the CLI tests: run `python -m cvbench.cli` in a subprocess at a fixed width."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

Cli = Callable[..., subprocess.CompletedProcess[str]]


def cli_env(
    tmp_path: Path, columns: int = 80, extra_path: str | None = None, data: Path | None = None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k not in ("COLUMNS", "LINES")}
    env.update(
        COLUMNS=str(columns),
        CVBENCH_CACHE_DIR=str(tmp_path / "cache"),
        PYTHONPATH=os.pathsep.join(p for p in (extra_path, str(REPO)) if p),
        NO_COLOR="1",
        TERM="dumb",
    )
    env.pop("CVBENCH_DATA", None)
    if data is not None:
        env["CVBENCH_DATA"] = str(data)
    env.pop("CVBENCH_RESPONSE_CACHE", None)
    env.pop("CVBENCH_TASK_DIRS", None)
    return env


@pytest.fixture(scope="session")
def shared_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data root for the session: the synthetic sets are generated once, on first use."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture
def run_cli(tmp_path: Path, shared_data: Path) -> Cli:
    """run_cli(*args, columns=80, cwd=tmp_path, extra_path=None, timeout=300)."""

    def call(
        *args: str, columns: int = 80, cwd: Path | None = None, extra_path: str | None = None, timeout: int = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cvbench.cli", *args],
            cwd=cwd or tmp_path,
            env=cli_env(tmp_path, columns, extra_path, shared_data),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return call
