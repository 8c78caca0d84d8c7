"""Tests that need lmms-eval (CI runs them in a separate environment: .ci/run, `.ci-lmms-venv`).

Each module starts with `require_lmms_eval()`: without lmms-eval the module is skipped with
the reason, unless CVBENCH_REQUIRE_LMMS=1 (set by CI), which turns the skip into a failure so
a broken install can never pass as "skipped".
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def offline_hf_caches(tmp_path_factory: pytest.TempPathFactory) -> None:
    """lmms-eval loads the exported JSON documents through `datasets`: keep its cache private and offline."""
    cache = tmp_path_factory.mktemp("hf-datasets")
    for key, value in {
        "HF_DATASETS_CACHE": str(cache),
        "LMMS_EVAL_DATASETS_CACHE": str(cache),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "CVBENCH_CACHE_DIR": str(tmp_path_factory.mktemp("cvbench-cache")),
    }.items():
        os.environ[key] = value


@pytest.fixture(scope="session")
def lmms_data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.integrations.lmms_fixtures import build_data_root

    return build_data_root(tmp_path_factory.mktemp("lmms-data"))
