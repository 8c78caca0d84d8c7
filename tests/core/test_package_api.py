"""`import cvbench` is light; the run and model entry points load on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

import cvbench


def _loaded_after(statement: str) -> set[str]:
    script = f"import sys\n{statement}\nprint(' '.join(sorted(sys.modules)))"
    return set(
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    )


def test_import_cvbench_does_not_load_the_runner_or_adapters() -> None:
    loaded = _loaded_after("import cvbench")
    assert "cvbench.runner.session" not in loaded and "cvbench.model_adapters.registry" not in loaded
    assert {"cvbench.runner.session", "cvbench.model_adapters.registry"} <= _loaded_after(
        "from cvbench import Runner, resolve_model"
    )


def test_lazy_names_are_the_real_objects() -> None:
    from cvbench.model_adapters.registry import ModelOptions
    from cvbench.model_adapters.resolve import resolve_model
    from cvbench.runner.options import RunOptions
    from cvbench.runner.session import Runner

    assert cvbench.Runner is Runner and cvbench.RunOptions is RunOptions
    assert cvbench.resolve_model is resolve_model and cvbench.ModelOptions is ModelOptions
    assert set(cvbench.__all__) >= {
        "Runner",
        "RunOptions",
        "RunOutcome",
        "RunError",
        "resolve_model",
        "ModelOptions",
        "ModelResolutionError",
    }
    assert "resolve_model" in dir(cvbench)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        cvbench.nope  # noqa: B018
