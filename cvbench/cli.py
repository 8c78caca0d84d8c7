"""The `cvbench` command line: the click group and thin commands that call into the packages.

Each command imports its package lazily inside the function, so `cvbench --help` stays fast
and the core install never imports an optional backend.
"""

from __future__ import annotations

import sys

import click

from cvbench import __version__


class CvbenchError(click.ClickException):
    """A user-facing error: printed as `Error: ...` with exit status 1, no traceback."""


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="cvbench")
def cli() -> None:
    """cvbench: cross-view correspondence evaluation for multimodal LLMs (CrossViewBench, MMVM)."""


# ==== data (cvbench.tasks) =================================================================


# ==== render (cvbench.harness.prompting) ===================================================


# ==== run / tasks / merge / cache (cvbench.harness.runner) =================================


# ==== models (cvbench.model_adapters) ======================================================


# ==== report / export / leaderboard (cvbench.reports, cvbench.leaderboard) =================


# ==== compare / regress (cvbench.harness.compare) ==========================================


def main() -> None:
    cli(prog_name="cvbench")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
