"""The provider registry: `provider:model` strings (and aliases) -> model adapters.

Providers are named by import strings so that resolving `openai:gpt-4o` imports only the
OpenAI adapter, and the core install never imports an optional backend.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from cvbench.harness.types import ModelAdapter


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
    return getattr(module, func)


def resolve_provider(spec: str) -> tuple[Provider, str]:
    provider_name, model_name = split_model_spec(spec)
    provider = PROVIDERS.get(provider_name)
    if provider is None:
        known = ", ".join(sorted(PROVIDERS))
        raise ModelResolutionError(f"unknown model {spec!r}: no provider {provider_name!r} (known providers: {known}; "
                                   f"aliases: `cvbench models`)")
    if provider.requires_model_name and not model_name:
        raise ModelResolutionError(f"model {spec!r}: provider {provider_name!r} needs a model name, "
                                   f"e.g. {provider_name}:NAME")
    return provider, model_name
