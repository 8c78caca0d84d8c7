"""'Did you mean ...?' for names a person typed (commands, tasks, models)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_matches(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    known = list(known)
    lowered = {k.lower(): k for k in known}
    found = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)
    prefix = [k for k in known if k.lower().startswith(name.lower()) and k.lower() not in found]
    return [lowered[f] for f in found] + prefix[: max(0, n - len(found))]


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' Did you mean 'x' or 'y'?' (with a leading space), or '' when nothing is close."""
    matches = close_matches(name, known)
    if not matches:
        return ""
    return " Did you mean " + " or ".join(repr(m) for m in matches) + "?"
