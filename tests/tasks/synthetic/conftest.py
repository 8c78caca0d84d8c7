"""Synthetic sets generated once per test session (small sizes, fixed seeds)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cvbench.tasks.synthetic import generate_crossviewbench, generate_mmvm

CVB_PER_TYPE = 2
CVB_SEED = 11
MMVM_PER_CUE = 2
MMVM_SEED = 5


# sample ids whose shortcut rank the generator freed (after RELAX_SHORTCUT_AFTER[-1] new scenes
# without a fitting question it accepts any rank, and logs it), filled while cvb_jsonl is generated
CVB_FREED: set[str] = set()


class _Freed(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "now ranks None" in message:
            CVB_FREED.add(message.split(":", 1)[0])


@pytest.fixture(scope="session")
def cvb_jsonl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    log = logging.getLogger("cvbench.tasks.synthetic.crossviewbench")
    handler, level = _Freed(), log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        return generate_crossviewbench(tmp_path_factory.mktemp("cvb"), CVB_PER_TYPE, CVB_SEED)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


@pytest.fixture(scope="session")
def mmvm_tsv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_mmvm(tmp_path_factory.mktemp("mmvm"), MMVM_PER_CUE, MMVM_SEED)
