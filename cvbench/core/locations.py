"""Where cvbench keeps data and caches on this machine (resolved at the edges, never global state)."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    """`$CVBENCH_CACHE_DIR`, else `$XDG_CACHE_HOME/cvbench`, else `~/.cache/cvbench`."""
    explicit = os.environ.get("CVBENCH_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "cvbench"


def data_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data location: `--data-dir`, else `$CVBENCH_DATA`, else `<user cache>/data`."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get("CVBENCH_DATA")
    if env:
        return Path(env).expanduser()
    return user_cache_dir() / "data"


def default_response_cache() -> Path:
    """The shared SQLite response cache: `$CVBENCH_RESPONSE_CACHE`, else `<user cache>/responses.sqlite`."""
    env = os.environ.get("CVBENCH_RESPONSE_CACHE")
    if env:
        return Path(env).expanduser()
    return user_cache_dir() / "responses.sqlite"
