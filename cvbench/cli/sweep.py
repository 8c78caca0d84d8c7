"""`cvbench sweep`: the command lives in its own package (cvbench/sweep/cli.py); registered here."""

from __future__ import annotations

from cvbench.cli.app import cli
from cvbench.sweep.cli import sweep_command

cli.add_command(sweep_command)
