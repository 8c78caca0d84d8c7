"""The click group `cvbench` and the one error type every command raises.

Commands live in their own modules (cvbench/cli/<topic>.py) and register on `cli`; cvbench/cli/__init__.py
imports them. Each command imports its package lazily inside the function, so `cvbench --help` stays
fast and the core install never imports an optional backend.
"""

from __future__ import annotations

import click

from cvbench.core.version import __version__


class CvbenchError(click.ClickException):
    """A user-facing error: printed as `Error: ...` with exit status 1, no traceback."""


class SuggestingGroup(click.Group):
    """A group that answers a mistyped command with the closest ones."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if args and name not in self.commands and not name.startswith("-"):
            from cvbench.core.suggest import did_you_mean

            hint = did_you_mean(name, sorted(self.commands))
            ctx.fail(f"no such command {name!r}.{hint}")
        return super().resolve_command(ctx, args)


@click.group(cls=SuggestingGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="cvbench")
def cli() -> None:
    """cvbench: cross-view correspondence evaluation for multimodal LLMs (CrossViewBench, MMVM)."""
