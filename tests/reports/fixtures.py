"""Session fixtures over run_factory, shared by tests/reports and tests/leaderboard."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reports.run_factory import DEFAULT_MODELS, XSS_NAME, FakeModel, write_runs


@pytest.fixture(scope="session")
def factory_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Four runs (api, open, native, baseline) on CrossViewBench and MMVM (4 settings)."""
    return write_runs(tmp_path_factory.mktemp("runs"), DEFAULT_MODELS)


@pytest.fixture(scope="session")
def xss_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run whose model name and every response carry script / onerror payloads."""
    model = FakeModel("openai:evil", XSS_NAME, "api", 7.0, skill=0.3, unparsed_p=0.2, response_suffix=" " + XSS_NAME)
    return write_runs(tmp_path_factory.mktemp("xss"), [model], cvb_per_type=2, mmvm_n=6)[0]
