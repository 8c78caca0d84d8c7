"""The `cvbench` command line (entry point `cvbench.cli:main`).

Each command group lives in its own module and registers on the click group in `app.py`; a new command
(e.g. `cvbench sweep`) is a new module listed in COMMAND_MODULES.
"""

from __future__ import annotations

import importlib

from cvbench.cli.app import CvbenchError, cli

COMMAND_MODULES: tuple[str, ...] = (
    "data",
    "render",
    "run",
    "tasks",
    "cache",
    "models",
    "reports",
    "compare",
    "lmms",
    "view",
    "sweep",
)

for _name in COMMAND_MODULES:
    importlib.import_module(f"cvbench.cli.{_name}")


def main() -> None:
    cli(prog_name="cvbench")


__all__ = ["CvbenchError", "cli", "main"]
