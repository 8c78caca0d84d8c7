"""Provenance for `config.json`: package versions, git revision and platform (redaction is in
`redaction.py`)."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cvbench.core.version import __version__

KEY_PACKAGES = (
    "cvbench",
    "numpy",
    "pillow",
    "pycocotools",
    "opencv-python-headless",
    "click",
    "rich",
    "openai",
    "anthropic",
    "google-genai",
    "torch",
    "transformers",
    "vllm",
    "huggingface_hub",
)


def git_revision(path: Path | None = None, timeout_s: float = 5.0) -> dict[str, Any] | None:
    """{"commit", "dirty"} of the checkout that holds cvbench, or None outside a checkout."""
    where = path or Path(__file__).resolve().parents[2]
    if not (where / ".git").exists():
        return None
    try:
        commit = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def package_versions(names: Sequence[str] = KEY_PACKAGES) -> dict[str, str]:
    """Installed versions of the key packages (absent ones are left out)."""
    found: dict[str, str] = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def environment() -> dict[str, Any]:
    """Versions and platform: the part of provenance that describes this machine."""

    return {
        "cvbench_version": __version__,
        "git": git_revision(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": package_versions(),
    }
