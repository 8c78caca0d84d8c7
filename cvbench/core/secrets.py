"""API keys: read from the environment or a `.env` file in the working directory, nothing else.

The environment wins over `.env` (for every name a provider accepts); at start-up one line on
stderr says which variable and which source supplied the key, never its value.

Keys are never written anywhere by cvbench. Every error message an adapter produces passes
through `scrub`, which removes the key values this process has read plus anything shaped like a
bearer token or an `api_key=` query parameter.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DOTENV_FILE = ".env"

_KEY_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


class DotenvError(ValueError):
    """A `.env` line that cannot be parsed; the message names the file and line."""


def parse_dotenv(text: str, source: str = DOTENV_FILE) -> dict[str, str]:
    """Parse `.env` text: `NAME=value`, optional `export`, quotes, `#` comments.

    Double-quoted values understand `\\n`, `\\"` and `\\\\`; single-quoted values are literal;
    an unquoted value ends at ` #`.
    """
    values: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _KEY_LINE.match(line)
        if match is None:
            raise DotenvError(f"{source}:{lineno}: expected NAME=value")
        name, value = match.group(1), match.group(2)
        if value[:1] in ("'", '"'):
            quote = value[0]
            end = value.find(quote, 1)
            while quote == '"' and end > 0 and value[end - 1] == "\\":
                end = value.find(quote, end + 1)
            if end < 0:
                raise DotenvError(f"{source}:{lineno}: unterminated {quote} quote in {name}")
            inner = value[1:end]
            if quote == '"':
                inner = re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), inner)
            value = inner
        else:
            hash_at = value.find(" #")
            if hash_at >= 0:
                value = value[:hash_at].rstrip()
        values[name] = value
    return values


def read_dotenv(directory: Path | None = None) -> dict[str, str]:
    """The variables of `<directory or cwd>/.env`; empty when there is no such file."""
    path = (directory or Path.cwd()) / DOTENV_FILE
    if not path.is_file():
        return {}
    return parse_dotenv(path.read_text(encoding="utf-8"), source=str(path))


@dataclass(frozen=True)
class Secret:
    """A key and where it came from (the variable name and `env` or `.env`), never printed."""

    name: str
    value: str
    origin: str  # "env" | ".env"

    def __repr__(self) -> str:  # keep the value out of tracebacks and logs
        return f"Secret(name={self.name!r}, origin={self.origin!r}, value='***')"

    __str__ = __repr__


_SEEN_SECRETS: set[str] = set()


def find_secret(
    names: tuple[str, ...],
    environ: Mapping[str, str] | None = None,
    directory: Path | None = None,
    announce: bool = True,
) -> Secret | None:
    """The first of `names` set (non-empty) in the environment, else in `.env`; None if none is.

    The environment always wins: a `.env` never overrides a key the environment supplies, under
    any of `names`. With `announce`, one line on stderr says which variable and which source
    supplied the key (never its value), and which `.env` entries were not used."""
    env = os.environ if environ is None else environ
    dotenv_path = (directory or Path.cwd()) / DOTENV_FILE
    dotenv = read_dotenv(directory)
    in_dotenv = [n for n in names if dotenv.get(n, "").strip()]
    found: Secret | None = None
    for name in names:
        value = env.get(name, "").strip()
        if value:
            found = Secret(name, value, "env")
            break
    else:
        for name in in_dotenv:
            found = Secret(name, dotenv[name].strip(), ".env")
            break
    if found is None:
        return None
    _SEEN_SECRETS.add(found.value)
    if announce:
        unused = [n for n in in_dotenv if not (found.origin == ".env" and n == found.name)]
        source = "the environment" if found.origin == "env" else str(dotenv_path)
        note = (
            f" ({', '.join(unused)} in {dotenv_path} not used: the environment wins over .env)"
            if unused and found.origin == "env"
            else ""
        )
        print(f"cvbench: API key from ${found.name} in {source}{note}", file=sys.stderr)
    return found


def secret_is_set(
    names: tuple[str, ...], environ: Mapping[str, str] | None = None, directory: Path | None = None
) -> str | None:
    """Which of `names` is set (`NAME (env)` / `NAME (.env)`), without keeping the value."""
    env = os.environ if environ is None else environ
    for name in names:
        if env.get(name, "").strip():
            return f"{name} (env)"
    try:
        dotenv = read_dotenv(directory)
    except DotenvError:
        return None
    for name in names:
        if dotenv.get(name, "").strip():
            return f"{name} (.env)"
    return None


def seen_secrets() -> frozenset[str]:
    """Every key value this process has read (for scrubbing error text)."""
    return frozenset(_SEEN_SECRETS)
