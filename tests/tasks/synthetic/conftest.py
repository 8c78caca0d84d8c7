"""Synthetic sets generated once per test session (small sizes, fixed seeds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cvbench.tasks.synthetic import generate_crossviewbench, generate_mmvm

CVB_PER_TYPE = 2
CVB_SEED = 11
MMVM_PER_CUE = 2
MMVM_SEED = 5


@pytest.fixture(scope="session")
def cvb_jsonl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_crossviewbench(tmp_path_factory.mktemp("cvb"), CVB_PER_TYPE, CVB_SEED)


@pytest.fixture(scope="session")
def mmvm_tsv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_mmvm(tmp_path_factory.mktemp("mmvm"), MMVM_PER_CUE, MMVM_SEED)
