"""The one import guard every tests/lmms module uses."""

from __future__ import annotations

import os
from types import ModuleType

import pytest

SKIP_REASON = (
    "lmms-eval is not installed (pip install 'cvbench[lmms]'); CI runs tests/lmms in its own "
    "environment with CVBENCH_REQUIRE_LMMS=1"
)


def require_lmms_eval() -> ModuleType:
    """`lmms_eval`, or skip the calling module; with CVBENCH_REQUIRE_LMMS=1 a missing or broken
    lmms-eval is an import error (a failure), never a skip."""
    if os.environ.get("CVBENCH_REQUIRE_LMMS") == "1":
        import lmms_eval

        return lmms_eval
    return pytest.importorskip("lmms_eval", reason=SKIP_REASON)
