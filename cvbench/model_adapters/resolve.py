"""From a model string to a ready adapter: an alias first (run where this machine can), then
`provider:model` through the provider registry."""

from __future__ import annotations

from dataclasses import replace

from cvbench.core.types import ModelAdapter
from cvbench.model_adapters.aliases import alias_for_model_id, find_alias
from cvbench.model_adapters.availability import resolve_alias_here
from cvbench.model_adapters.registry import (
    ModelOptions,
    ModelResolutionError,
    call_factory,
    resolve_provider,
)


def resolve_model(spec: str, options: ModelOptions) -> ModelAdapter:
    """A ready adapter for a model string: an alias (`qwen3-vl-8b`) first, then `provider:model`.

    An open-weight alias runs on an OpenAI-compatible server when base URLs are given (options or
    CVBENCH_VLLM_URL), else in-process vLLM on a CUDA GPU, else transformers. Raises
    ModelResolutionError whose message says how to make the model run.
    """
    text = spec.strip()
    if not text:
        raise ModelResolutionError("empty model string: pass e.g. --model openai:gpt-4o or an alias (`cvbench models`)")
    alias = find_alias(text)
    if alias is not None:
        target = resolve_alias_here(alias, options)
        if alias.model_options:  # the alias's recorded defaults; the user's --model-option wins
            options = replace(options, extra={**alias.model_options, **options.extra})
        provider, model_name = resolve_provider(target)
        adapter = call_factory(provider, target, model_name, options)
    else:
        provider, model_name = resolve_provider(text)
        adapter = call_factory(provider, text, model_name, options)
        alias = alias_for_model_id(adapter.info.model_id)  # `openai:gpt-4o` gets the gpt-4o alias's metadata
    if alias is not None:
        adapter.info = replace(
            adapter.info,
            display_name=alias.display_name,
            params_b=alias.params_b if alias.params_b is not None else adapter.info.params_b,
            access=alias.access,
        )
    return adapter
