"""The provider registry: `provider:model` strings (and aliases) -> model adapters.

Providers are named by import strings so that resolving `openai:gpt-4o` imports only the
OpenAI adapter, and the core install never imports an optional backend.

Third-party adapters (docs/plugins.md) come in two ways, both through the same `call_factory`:
- an installed distribution's entry point in the group `cvbench.model_adapters`
  (`name = "module.path:factory"`), found the first time a provider name is not built in, or when
  `cvbench models` lists everything; the entry point's name is the provider name;
- `--model module.path:Factory` (a dotted module path, a colon, a factory name), imported as given.
A factory is called as `factory(model_name, options)` and returns a `ModelAdapter`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cvbench.core.secrets import DotenvError
from cvbench.core.suggest import did_you_mean
from cvbench.core.types import ModelAdapter
from cvbench.model_adapters.aliases import find_alias, load_aliases


class ModelResolutionError(ValueError):
    """The model string cannot be turned into a runnable adapter; the message says how to fix it."""


@dataclass(frozen=True)
class ModelOptions:
    """Run-level options every adapter may use (adapter-specific ones go in `extra`)."""

    base_urls: tuple[str, ...] = ()  # OpenAI-compatible / vLLM serve endpoints
    concurrency: int = 8
    timeout_s: float = 120.0  # per attempt
    max_retries: int = 6
    budget_s: float = 900.0  # overall time budget for one request, retries included
    seed: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)  # e.g. checkpoint=..., repo_path=..., device=...


Factory = Callable[[str, ModelOptions], ModelAdapter]


@dataclass(frozen=True)
class Provider:
    name: str  # the part before ':'
    factory: str  # "module:function", called as function(model_name, options)
    description: str
    extra: str | None = None  # pip extra that provides its dependencies
    requires_model_name: bool = True


PROVIDERS: dict[str, Provider] = {}


def register_provider(provider: Provider) -> None:
    PROVIDERS[provider.name] = provider


def split_model_spec(spec: str) -> tuple[str, str]:
    """'openai:gpt-4o' -> ('openai', 'gpt-4o'); 'random' -> ('random', '')."""
    provider, sep, name = spec.partition(":")
    return (provider.strip(), name.strip()) if sep else (spec.strip(), "")


def load_factory(provider: Provider) -> Factory:
    module_name, _, func = provider.factory.partition(":")
    module = importlib.import_module(module_name)
    factory: Factory = getattr(module, func)
    return factory


ENTRY_POINT_GROUP = "cvbench.model_adapters"
_loaded_entry_points: set[str] = set()


def load_entry_point_providers() -> list[Provider]:
    """Register the providers of installed plugins (entry point group `cvbench.model_adapters`).
    Only the entry points' metadata is read here; a plugin's module is imported when it is used."""
    from importlib.metadata import entry_points

    added = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        origin = f"{dist.name} {dist.version}" if dist is not None else "an installed package"
        if ep.name in _loaded_entry_points:
            continue
        if ep.name in PROVIDERS:
            raise ModelResolutionError(
                f"plugin provider {ep.name!r} from {origin} (entry point group {ENTRY_POINT_GROUP}) has the "
                f"name of a provider that is already registered ({PROVIDERS[ep.name].factory}); rename it"
            )
        module, sep, attr = ep.value.partition(":")
        if not sep or not module.strip() or not attr.strip():
            raise ModelResolutionError(
                f"plugin provider {ep.name!r} from {origin}: entry point value {ep.value!r} must be "
                f"'module.path:factory'"
            )
        provider = Provider(
            ep.name, ep.value.strip(), f"plugin from {origin} ({ep.value.strip()})", requires_model_name=False
        )
        register_provider(provider)
        _loaded_entry_points.add(ep.name)
        added.append(provider)
    return added


def _dotted_factory(module: str, attr: str) -> Provider | None:
    """`--model module.path:Factory` -> a provider for that factory; None when the text is not of that
    form or names no importable module (then it is a mistyped provider, answered with suggestions)."""
    import importlib.util

    if not module or not all(p.isidentifier() for p in module.split(".")) or not attr.isidentifier():
        return None
    try:
        if importlib.util.find_spec(module) is None:
            return None
    except (ImportError, ValueError):
        return None
    factory = f"{module}:{attr}"
    return Provider(module, factory, f"factory {factory}", requires_model_name=False)


def resolve_provider(spec: str) -> tuple[Provider, str]:
    provider_name, model_name = split_model_spec(spec)
    provider = PROVIDERS.get(provider_name)
    if provider is None:
        load_entry_point_providers()
        provider = PROVIDERS.get(provider_name)
    if provider is None:
        dotted = _dotted_factory(provider_name, model_name)
        if dotted is not None:
            return dotted, ""
        known = ", ".join(sorted(PROVIDERS))
        hint = did_you_mean(provider_name, [*PROVIDERS, *load_aliases()])
        raise ModelResolutionError(
            f"unknown model {spec!r}: no provider {provider_name!r} and no alias of that name.{hint} "
            f"(known providers: {known}; "
            f"aliases: `cvbench models`; a plugin's factory: --model module.path:Factory)"
        )
    if provider.requires_model_name and not model_name:
        raise ModelResolutionError(
            f"model {spec!r}: provider {provider_name!r} needs a model name, e.g. {provider_name}:NAME"
        )
    return provider, model_name


# --------------------------------------------------------------------------------------
# The providers (by import string: resolving one imports only its module)
# --------------------------------------------------------------------------------------

BASELINE_FACTORIES: dict[str, str] = {
    "random": "cvbench.model_adapters.baselines:make_random",
    "first-option": "cvbench.model_adapters.baselines:make_first_option",
    "mask-heuristic": "cvbench.model_adapters.mask_heuristic:make_mask_heuristic",
    "text-only": "cvbench.model_adapters.baselines:make_text_only",
}

for _provider in (
    Provider(
        "openai",
        "cvbench.model_adapters.openai_api:make_adapter",
        "OpenAI chat completions (openai:gpt-4o); key OPENAI_API_KEY",
        extra="openai",
    ),
    Provider(
        "anthropic",
        "cvbench.model_adapters.anthropic_api:make_adapter",
        "Anthropic messages (anthropic:claude-sonnet-4-6); key ANTHROPIC_API_KEY",
        extra="anthropic",
    ),
    Provider(
        "google",
        "cvbench.model_adapters.google_api:make_adapter",
        "Google Gemini (google:gemini-2.5-pro); key GEMINI_API_KEY or GOOGLE_API_KEY",
        extra="google",
    ),
    Provider(
        "openai-compatible",
        "cvbench.model_adapters.openai_compatible:make_adapter",
        "any OpenAI-compatible server, e.g. vllm serve (openai-compatible:NAME --base-url URL)",
        extra="openai",
    ),
    Provider(
        "vllm",
        "cvbench.model_adapters.vllm_local:make_adapter",
        "in-process vLLM on a CUDA GPU (vllm:HF_REPO)",
        extra="vllm",
    ),
    Provider(
        "hf",
        "cvbench.model_adapters.transformers_local:make_adapter",
        "in-process transformers (hf:HF_REPO)",
        extra="local",
    ),
    Provider(
        "crossviewer",
        "cvbench.model_adapters.crossviewer:make_adapter",
        "CrossViewer, native region tokens (needs its code folder and checkpoint)",
        extra="local",
        requires_model_name=False,
    ),
    Provider(
        "colva",
        "cvbench.model_adapters.colva:make_adapter",
        "CoLVA, native visual prompts (colva:zhouyik/colva_internvl2_4b)",
        extra="local",
        requires_model_name=False,
    ),
    Provider(
        "lmms",
        "cvbench.model_adapters.lmms:make_adapter",
        "a model lmms-eval wraps (lmms:qwen2_5_vl,pretrained=ORG/NAME; model_args after commas)",
        extra="lmms",
    ),
    Provider(
        "random",
        BASELINE_FACTORIES["random"],
        "baseline: a uniformly random option (seeded)",
        requires_model_name=False,
    ),
    Provider(
        "first-option", BASELINE_FACTORIES["first-option"], "baseline: always option A", requires_model_name=False
    ),
    Provider(
        "mask-heuristic",
        BASELINE_FACTORIES["mask-heuristic"],
        "baseline: a rule per task type over each region's mask and pixels (colour histograms, area, position)",
        requires_model_name=False,
    ),
    Provider(
        "text-only",
        BASELINE_FACTORIES["text-only"],
        "baseline: answers from the question and option text alone, never an image",
        requires_model_name=False,
    ),
    Provider(
        "baseline",
        "cvbench.model_adapters.registry:make_baseline",
        "baseline:NAME for NAME in random, first-option, mask-heuristic, text-only",
    ),
):
    register_provider(_provider)


def make_baseline(name: str, options: ModelOptions) -> ModelAdapter:
    """`baseline:<name>`: the same adapters as the bare baseline provider names."""
    factory = BASELINE_FACTORIES.get(name)
    if factory is None:
        raise ModelResolutionError(f"unknown baseline {name!r}: choose one of {', '.join(BASELINE_FACTORIES)}")
    return call_factory(PROVIDERS[name], name, "", options)


def call_factory(provider: Provider, spec: str, model_name: str, options: ModelOptions) -> ModelAdapter:
    try:
        factory = load_factory(provider)
    except ImportError as exc:
        if provider.extra:
            hint = f"pip install 'cvbench[{provider.extra}]'"
        elif provider.factory.startswith("cvbench."):
            hint = "reinstall cvbench"
        else:  # a plugin's or a --model module.path:Factory module
            hint = "is its package installed in this Python environment (pip install ..., or PYTHONPATH)?"
        raise ModelResolutionError(
            f"model {spec!r}: the {provider.name!r} backend cannot be imported ({exc}); {hint}"
        ) from exc
    except AttributeError as exc:
        raise ModelResolutionError(f"model {spec!r}: {provider.factory} does not exist ({exc})") from exc
    if not callable(factory):
        raise ModelResolutionError(f"model {spec!r}: {provider.factory} is not callable")
    try:
        return factory(model_name, options)
    except ModelResolutionError:
        raise
    except ImportError as exc:  # an optional dependency the factory needs (the message carries the pip hint)
        raise ModelResolutionError(f"model {spec!r}: {exc}") from exc
    except DotenvError as exc:  # a broken ./.env while looking for the key
        raise ModelResolutionError(f"model {spec!r}: cannot read the key file: {exc}") from exc


def recommended_max_tokens(spec: str) -> int | None:
    """The alias's recommended max_tokens (None for a plain provider:model string)."""
    alias = find_alias(spec)
    return alias.max_tokens if alias is not None else None
