"""Fixtures for the ablation tests: a small synthetic set made by the built-in generator (one
question per CrossViewBench task type, one MMVM case per cue) in a temporary data root, and an
isolated cache folder so no test reads the user's response cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cvbench.core.types import Sample
from cvbench.tasks.loading import iter_task_samples
from cvbench.tasks.registry import get_task


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cvbench.tasks.synthetic import generate_crossviewbench, generate_mmvm

    root = tmp_path_factory.mktemp("ablation-data")
    generate_crossviewbench(root / get_task("synth-crossviewbench").data_subdir, per_type=1, seed=0)
    generate_mmvm(root / get_task("synth-mmvm").data_subdir, per_cue=1, seed=0)
    return root


def load_samples(task: str, root: Path) -> list[Sample]:
    return [s for s in iter_task_samples(get_task(task), root) if isinstance(s, Sample)]


@pytest.fixture
def isolated_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CVBENCH_CACHE_DIR", str(cache))
    monkeypatch.delenv("CVBENCH_RESPONSE_CACHE", raising=False)
    yield cache
