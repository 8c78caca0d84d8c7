"""Reading upstream data files safely: the errors loaders raise, path containment (no symlink or
`..` escapes the data folder), bounded line reading and option lines. Shared by both loaders.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cvbench.core.types import OPTION_LETTERS, Option


class DataFormatError(ValueError):
    """A data file that cannot be read at all (not one bad record: those become InvalidSample)."""


class RecordError(ValueError):
    """One record's problem; loaders turn it into an InvalidSample with the record's location."""


# ------------------------------------------------------------------------------ shared helpers


def join_inside(base: Path, relative: str) -> Path:
    """`base / relative`, normalised; raises RecordError if it leaves `base`.

    Two checks: the normalised path (`..` and absolute paths), then the resolved one, so a
    symlink inside the data that points outside it is refused too. Links that stay inside the
    resolved data folder (a Hugging Face snapshot's links into its own cache, a folder linked
    with `data download --link`) still load.
    """
    if not relative or "\x00" in relative:
        raise RecordError(f"empty or malformed path {relative!r}")
    base_abs = Path(os.path.abspath(base))
    candidate = Path(os.path.normpath(base_abs / relative))
    if candidate != base_abs and base_abs not in candidate.parents:
        raise RecordError(f"path {relative!r} escapes the data folder {base_abs}")
    ensure_resolves_inside(candidate, base_abs, relative)
    return candidate


def ensure_resolves_inside(path: Path, base: Path, shown: str | None = None) -> None:
    """RecordError when `path`, symlinks followed, lies outside `base` (symlinks followed)."""
    real_base = Path(os.path.realpath(base))
    real = Path(os.path.realpath(path))
    if real != real_base and real_base not in real.parents:
        name = shown if shown is not None else str(path)
        raise RecordError(f"path {name!r} is a symlink to {real}, outside the data folder {real_base}")


# ------------------------------------------------------------------------------ bounded lines

MAX_LINE_ENV = "CVBENCH_MAX_LINE_BYTES"
# far above any real record (the published MMVM TSV carries base64 images of a few MB per row)
DEFAULT_MAX_LINE_BYTES = 256 * 1024 * 1024
_READ_BLOCK = 1 << 20


def max_line_bytes(environ: Mapping[str, str] | None = None) -> int:
    """The longest data line read, in bytes: `$CVBENCH_MAX_LINE_BYTES`, else 256 MiB."""
    raw = (os.environ if environ is None else environ).get(MAX_LINE_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_LINE_BYTES
    try:
        value = int(raw)
    except ValueError:
        raise DataFormatError(f"${MAX_LINE_ENV}={raw!r}: expected a whole number of bytes") from None
    if value < 1024:
        raise DataFormatError(f"${MAX_LINE_ENV}={raw!r}: must be at least 1024")
    return value


@dataclass(frozen=True)
class LongLine:
    """A line over the bound: only its length is known (its bytes were read and dropped)."""

    length: int  # bytes, without the line break
    limit: int
    quotes: int = 0  # '"' characters in it (a TSV reader needs their parity to stay in step)

    @property
    def reason(self) -> str:
        return (
            f"line is {self.length:,} bytes long, over the {self.limit:,}-byte line bound; not read "
            f"(raise ${MAX_LINE_ENV} if the record is real)"
        )


def iter_bounded_lines(f: BinaryIO, limit: int) -> Iterator[bytes | LongLine]:
    """The lines of a binary file (with their line breaks), each at most `limit` bytes; a longer
    line is drained in blocks (memory stays at about `limit`) and comes as a LongLine."""
    while True:
        line = f.readline(limit + 1)
        if not line:
            return
        if len(line) <= limit or line.endswith(b"\n"):
            yield line
            continue
        length, quotes = len(line), line.count(b'"')
        while True:
            block = f.readline(_READ_BLOCK)
            if not block:
                break
            length += len(block)
            quotes += block.count(b'"')
            if block.endswith(b"\n"):
                length -= 1
                break
        yield LongLine(length, limit, quotes)


_OPTION_LINE = re.compile(r"^\s*([A-Za-z])\s*[.)]\s?(.*)$", re.S)


def parse_option_lines(lines: Sequence[str], field: str) -> tuple[Option, ...]:
    """`["A. text", "B. text"]` -> Options; letters must run A, B, C... in order."""
    options: list[Option] = []
    for i, line in enumerate(lines):
        if not isinstance(line, str):
            raise RecordError(f"'{field}'[{i}] must be a string like 'A. text', got {line!r}")
        match = _OPTION_LINE.match(line)
        if match is None:
            raise RecordError(f"'{field}'[{i}] {line!r} is not an option line like 'A. text'")
        letter, text = match.group(1), match.group(2).strip()
        expected = OPTION_LETTERS[i] if i < len(OPTION_LETTERS) else None
        if letter != expected:
            raise RecordError(
                f"'{field}'[{i}] {line!r}: expected option letter {expected!r} (letters run A, B, C... "
                f"in order, upper case)"
            )
        options.append(Option(letter, text))
    return tuple(options)


# ------------------------------------------------------------------------------ task folders
