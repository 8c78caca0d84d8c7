"""Every user-settable run and prompt option, declared once: its field name, type, default, range
or choices, and help text.

The CLI builds its click options from these declarations (cvbench/cli/options.py), `RunOptions` and
`PromptSettings` take their defaults from them and check values with `check_value`, so `--alpha 0`
on the command line, `RunOptions(alpha=0)` in Python and `render --alpha 0` all fail with the same
message, at once, before anything runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


class OptionError(ValueError):
    """A value outside its option's declared type, range or choices."""


@dataclass(frozen=True)
class Range:
    """Inclusive bounds unless marked open; None: unbounded on that side."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def contains(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.low is None:
            return f"<= {self.high:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class OptionDecl:
    """One option: `name` is the Python field name; the flag is `--name` with '-' for '_'."""

    name: str
    kind: type  # int | float | str
    default: Any
    help: str
    range: Range | None = None
    choices: tuple[str, ...] = ()
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def check(self, value: Any) -> Any:
        """`value` itself when it is valid (None only where the default is None), else OptionError."""
        if value is None:
            if self.default is None:
                return None
            raise OptionError(f"{self.flag} needs a value")
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.kind) or isinstance(value, bool):
            raise OptionError(f"{self.flag} must be {_article(self.kind)}, got {value!r}")
        if self.choices and value not in self.choices:
            raise OptionError(f"{self.flag} must be one of {', '.join(self.choices)}, got {value!r}")
        if self.range is not None and isinstance(value, (int, float)) and not self.range.contains(value):
            raise OptionError(f"{self.flag} must be {self.range.describe()}, got {value:g}")
        return value

    def parse(self, text: str) -> Any:
        """A command-line string -> the checked value."""
        try:
            value = self.kind(text.strip()) if self.kind is not str else text.strip()
        except ValueError:
            raise OptionError(f"{self.flag} must be {_article(self.kind)}, got {text!r}") from None
        return self.check(value)

    def help_text(self) -> str:
        parts = [self.help]
        if self.range is not None:
            parts.append(f"({self.range.describe()})")
        return " ".join(parts)


def _article(kind: type) -> str:
    return {int: "a whole number", float: "a number", str: "text"}.get(kind, kind.__name__)


def check_value(decl: OptionDecl, value: Any) -> Any:
    return decl.check(value)


def check_fields(obj: Any, decls: Iterable[OptionDecl]) -> None:
    """Check every declared field of a dataclass instance (raises OptionError on the first bad one)."""
    for decl in decls:
        if hasattr(obj, decl.name):
            decl.check(getattr(obj, decl.name))


# ---------------------------------------------------------------- prompt settings

MODE = OptionDecl(
    "mode",
    str,
    "auto",
    "How regions reach the model: auto (native for models that take regions, else overlay), overlay, "
    "native, or prerendered (MMVM's shipped overlays).",
    choices=("auto", "overlay", "native", "prerendered"),
)
STYLE = OptionDecl(
    "style",
    str,
    None,
    "Overlay style (default: MMVM upstream, the authors' drawing rule; CrossViewBench mask).",
    choices=("upstream", "contour", "mask", "box", "marks"),
)
ALPHA = OptionDecl(
    "alpha", float, 0.4, "Overlay fill opacity (styles mask, marks).", range=Range(0.0, 1.0, low_open=True)
)
THICKNESS = OptionDecl("thickness", int, 2, "Overlay line width at <= 1024 px (scaled up beyond).", range=Range(1))
SEED = OptionDecl("seed", int, 0, "Run seed (MMVM candidate subsets, region ids, colours; baselines).")
PROMPT_OPTIONS: tuple[OptionDecl, ...] = (MODE, STYLE, ALPHA, THICKNESS, SEED)

# ---------------------------------------------------------------- image policy

IMAGE_FORMAT = OptionDecl(
    "image_format",
    str,
    None,
    "Encoding of the images sent to the model (default: the provider's, JPEG 4:4:4 q90 for API providers "
    "and OpenAI-compatible servers, else png; png keeps them lossless).",
    choices=("png", "jpeg"),
)
JPEG_QUALITY = OptionDecl("jpeg_quality", int, 90, "JPEG quality when images are sent as JPEG.", range=Range(1, 100))
MAX_SIDE = OptionDecl(
    "max_side", int, None, "Resize so the longest side is at most this many pixels.", range=Range(16), metavar="PX"
)
MAX_PIXELS = OptionDecl(
    "max_pixels", int, None, "Resize so width*height is at most this.", range=Range(256), metavar="PIXELS"
)
IMAGE_OPTIONS: tuple[OptionDecl, ...] = (IMAGE_FORMAT, JPEG_QUALITY, MAX_SIDE, MAX_PIXELS)

# ---------------------------------------------------------------- run settings

LIMIT = OptionDecl("limit", int, None, "Evaluate only the first N samples of each task.", range=Range(1), metavar="N")
CONCURRENCY = OptionDecl("concurrency", int, 8, "Model requests in flight at once.", range=Range(1))
MAX_TOKENS = OptionDecl(
    "max_tokens", int, None, "Generation limit (default: the alias's recommendation, else 1024).", range=Range(1)
)
MAX_ERROR_RATE = OptionDecl(
    "max_error_rate",
    float,
    0.2,
    "A finished run with a larger share of model errors fails (exit status 3).",
    range=Range(0.0, 1.0),
)
FAIL_FAST = OptionDecl(
    "fail_fast",
    int,
    8,
    "Stop when the first N requests all fail with auth/not-found/bad-request/connection errors (0: never).",
    range=Range(0),
    metavar="N",
)
RUN_OPTIONS: tuple[OptionDecl, ...] = (LIMIT, CONCURRENCY, MAX_TOKENS, MAX_ERROR_RATE, FAIL_FAST)

ALL_OPTIONS: tuple[OptionDecl, ...] = PROMPT_OPTIONS + IMAGE_OPTIONS + RUN_OPTIONS
