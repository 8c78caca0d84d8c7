"""Fail fast, fail loud: what a run does with model errors while it runs and when it ends.

- The first error of each kind is shown the moment it happens (its message is already scrubbed
  of secrets by the adapter, and redacted again by the runner).
- If the first `window` requests that reached the model all failed with an error no retry can
  fix (auth, not found, bad request, no connection), the run stops, keeping what it has, with a
  line that says what to fix.
- A finished run whose error rate is above `max_error_rate` has failed.

Exit statuses of `cvbench run` (docs/running.md): 0 complete, or partial within the error
rate; 3 failed (stopped early, or too many errors); 130 cancelled; 1 usage/configuration error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cvbench.core.options import FAIL_FAST, MAX_ERROR_RATE

EXIT_OK = 0
EXIT_FAILED = 3
DEFAULT_WINDOW: int = FAIL_FAST.default  # declared once, with its range (cvbench/core/options.py)
DEFAULT_MAX_ERROR_RATE: float = MAX_ERROR_RATE.default

# errors that say the setup is wrong, not that the provider is busy
FATAL_KINDS = frozenset({"auth", "not_found", "invalid_request", "transport"})
FIXES = {
    "auth": "the API key is refused: check the key variable (and ./.env) for this provider",
    "not_found": "the model or endpoint does not exist: check the model name and --base-url",
    "invalid_request": "the server refuses the request: read its message above; check the model name and "
    "--model-option values",
    "transport": "the endpoint cannot be reached: check --base-url, the network, and that the server is running",
}


@dataclass
class FailureWatch:
    """Sees each record that reached the model, in completion order."""

    window: int = DEFAULT_WINDOW
    seen_kinds: set[str] = field(default_factory=set)
    attempts: int = 0
    fatal: list[str] = field(default_factory=list)  # kinds of the leading run of fatal errors
    stopped: str | None = None

    def first_of_kind(self, error: Mapping[str, Any] | None) -> str | None:
        """The line to print when `error` is the first of its kind (None otherwise)."""
        if not error:
            return None
        kind = str(error.get("kind"))
        if kind in self.seen_kinds:
            return None
        self.seen_kinds.add(kind)
        return f"model error ({kind}): {error.get('message')} [first of its kind; later ones are counted]"

    def observe(self, error: Mapping[str, Any] | None) -> str | None:
        """Count one answered-or-failed request; the reason to stop the run, once, or None."""
        if self.stopped is not None or self.window <= 0:
            return None
        self.attempts += 1
        if self.attempts > self.window:
            return None
        if not error or str(error.get("kind")) not in FATAL_KINDS:
            self.window = 0  # one answer (or a transient error) means the setup works
            return None
        self.fatal.append(str(error.get("kind")))
        if len(self.fatal) < self.window:
            return None
        kind = max(set(self.fatal), key=self.fatal.count)
        self.stopped = (
            f"stopped: the first {self.window} requests all failed ({', '.join(sorted(set(self.fatal)))}); "
            f"{FIXES[kind]}"
        )
        return self.stopped


def error_rate(parse_statuses: Sequence[str]) -> float | None:
    """Errors over records that asked the model (invalid samples never do); None with none."""
    asked = [s for s in parse_statuses if s != "invalid"]
    if not asked:
        return None
    return sum(1 for s in asked if s == "error") / len(asked)


def verdict(rate: float | None, max_error_rate: float) -> str | None:
    """Why a finished run failed on its error rate, or None."""
    if rate is None or rate <= max_error_rate:
        return None
    return f"error rate {rate:.1%} is above --max-error-rate {max_error_rate:g}"
