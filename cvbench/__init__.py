"""cvbench: the reference harness and leaderboard for cross-view correspondence in multimodal LLMs."""

from __future__ import annotations

from cvbench.core.types import (
    BENCHMARKS,
    CATEGORY_NAMES,
    CUES,
    TASK_TYPES,
    Capabilities,
    GenerationConfig,
    ImageRef,
    InvalidSample,
    ModelAdapter,
    ModelError,
    ModelInfo,
    NativeRegions,
    NativeView,
    Option,
    Prompt,
    PromptImage,
    Region,
    RegionRef,
    Request,
    Response,
    Sample,
    SourceLocation,
    TaskSpec,
    Usage,
    View,
)
from cvbench.core.version import __version__

# Run and model entry points, imported on first use: `import cvbench` (and the prompt path, whose
# source is hashed into the prompt cache key) must not pull in the adapters and the runner.
_LAZY: dict[str, str] = {
    "ModelOptions": "cvbench.model_adapters.registry",
    "ModelResolutionError": "cvbench.model_adapters.registry",
    "resolve_model": "cvbench.model_adapters.resolve",
    "RunError": "cvbench.runner.options",
    "RunOptions": "cvbench.runner.options",
    "RunOutcome": "cvbench.runner.options",
    "Runner": "cvbench.runner.session",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cvbench' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "BENCHMARKS",
    "CATEGORY_NAMES",
    "CUES",
    "TASK_TYPES",
    "Capabilities",
    "GenerationConfig",
    "ImageRef",
    "InvalidSample",
    "ModelAdapter",
    "ModelError",
    "ModelInfo",
    "ModelOptions",
    "ModelResolutionError",
    "NativeRegions",
    "NativeView",
    "Option",
    "Prompt",
    "PromptImage",
    "Region",
    "RegionRef",
    "Request",
    "Response",
    "RunError",
    "RunOptions",
    "RunOutcome",
    "Runner",
    "Sample",
    "SourceLocation",
    "TaskSpec",
    "Usage",
    "View",
    "__version__",
    "resolve_model",
]
