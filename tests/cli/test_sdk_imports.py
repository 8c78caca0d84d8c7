"""A provider SDK is imported when a request is to be sent, not when the adapter is made: a rerun
answered wholly from the response cache never imports it (the openai SDK costs ~0.7 CPU-s per
process, ~5% of a warm 17,000-record rerun), while a missing SDK still fails at start-up with
the pip command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from cvbench.model_adapters.base import MissingDependencyError, require_installed
from tests.cli.conftest import Cli
from tests.wire.openai_wire import OpenAIWireServer


def import_probe(folder: Path, report: Path) -> str:
    """A `sitecustomize` that writes, at interpreter exit, whether `openai` was imported."""
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(
        "import atexit, sys\n"
        f"atexit.register(lambda: open({str(report)!r}, 'w').write(str('openai' in sys.modules)))\n",
        encoding="utf-8",
    )
    return str(folder)


def test_a_fully_cached_rerun_does_not_import_the_sdk(run_cli: Cli, tmp_path: Path) -> None:
    with OpenAIWireServer(answer="A") as server:
        args = ("run", "--model", "openai-compatible:m", "--base-url", server.base_url(), "--limit", "3")
        cold_report, warm_report = tmp_path / "cold.txt", tmp_path / "warm.txt"
        cold = run_cli(*args, "--out", str(tmp_path / "cold"), extra_path=import_probe(tmp_path / "p1", cold_report))
        assert cold.returncode == 0, cold.stderr
        sent = len(server.requests)
        warm = run_cli(
            *args,
            "--out",
            str(tmp_path / "warm"),
            "--save-images",
            "none",
            extra_path=import_probe(tmp_path / "p2", warm_report),
        )
        assert warm.returncode == 0, warm.stderr
        assert len(server.requests) == sent > 0
    records = [json.loads(line) for line in (tmp_path / "warm" / "samples.jsonl").read_text().splitlines()]
    assert records and all(r["cached"] for r in records)
    assert cold_report.read_text() == "True"  # the probe sees the import when requests are sent
    assert warm_report.read_text() == "False"


def test_a_missing_sdk_is_still_reported_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)  # what an absent package looks like to find_spec
    with pytest.raises(MissingDependencyError, match=r"pip install 'cvbench\[openai\]'"):
        require_installed("openai", "openai", "the OpenAI-compatible adapter")
    with pytest.raises(MissingDependencyError, match=r"pip install 'cvbench\[google\]'"):
        require_installed("no_such_package_cvbench.genai", "google", "the Google adapter")
    require_installed("json", "core", "a check")  # installed: nothing raised
