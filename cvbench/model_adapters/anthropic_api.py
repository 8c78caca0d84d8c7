"""Anthropic Messages API through the official `anthropic` SDK (`anthropic:MODEL`).

Images go as base64 `image` blocks with the `PromptImage` bytes and media type, in order,
followed by one `text` block; `Prompt.system` goes to the top-level `system` field. The SDK's
retries are off; `ApiAdapter` retries. Base URL: `extra["base_url"]`, else
`ModelOptions.base_urls[0]`, else `ANTHROPIC_BASE_URL`, else the Anthropic API.

Extended thinking (`--model-option thinking=true`, `thinking_budget=N`, N >= 1024, default 8192;
models that support it, see `reasoning.anthropic_can_think`): the request carries
`thinking={"type": "enabled", "budget_tokens": N}`, `max_tokens` = answer budget + N, and no
temperature/top_p (not compatible with thinking). Thinking blocks go to `Response.reasoning`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from cvbench.core.secrets import find_secret
from cvbench.core.types import (
    Capabilities,
    ModelError,
    ModelInfo,
    Prompt,
    PromptImage,
    Request,
    Response,
    Usage,
)
from cvbench.model_adapters.api_options import (
    COMMON_API_OPTIONS,
    OptionSpec,
    read_options,
)
from cvbench.model_adapters.base import (
    ApiAdapter,
    AttemptError,
    api_base_url,
    budget_exhausted,
    error_in_body,
    malformed,
    refused,
    require,
    require_installed,
    unreadable_body,
)
from cvbench.model_adapters.image_policy import contract_for
from cvbench.model_adapters.reasoning import (
    ANTHROPIC_DEFAULT_THINKING,
    ANTHROPIC_MIN_THINKING,
    LENGTH_FINISHES,
    Reasoning,
    anthropic_can_think,
)
from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError
from cvbench.model_adapters.thread_sender import ThreadSender
from cvbench.model_adapters.wire_body import IMAGE_SLOT, base64_literal, splice_images, takes_raw_body

KEY_VARS = ("ANTHROPIC_API_KEY",)
ACCEPTED_MIME = ("image/png", "image/jpeg", "image/gif", "image/webp")

OPTIONS: tuple[OptionSpec, ...] = COMMON_API_OPTIONS + (
    OptionSpec("send_temperature", "bool", "send a temperature (default: true, false with thinking)"),
    OptionSpec("thinking", "bool", "extended thinking (default: false)"),
    OptionSpec(
        "thinking_budget",
        "int",
        f"thinking tokens (budget_tokens), default {ANTHROPIC_DEFAULT_THINKING}",
        minimum=ANTHROPIC_MIN_THINKING,
    ),
)


def _check_formats(prompt: Prompt) -> None:
    for image in prompt.images:
        if image.mime not in ACCEPTED_MIME:
            raise AttemptError(
                ModelError(
                    "invalid_request", f"{image.label}: Anthropic accepts {', '.join(ACCEPTED_MIME)}, not {image.mime}"
                )
            )


def message_content(prompt: Prompt, data_of: Callable[[PromptImage], str] | None = None) -> list[dict[str, Any]]:
    """The user turn: one base64 image block per image, in order, then the text block. `data_of`
    gives each image's base64 text (default: the image's own)."""
    _check_formats(prompt)
    blocks: list[dict[str, Any]] = []
    for image in prompt.images:
        blocks.append(
            {
                "type": "image",
                "source": {
                    "type": "base64",
                    "media_type": image.mime,
                    "data": data_of(image) if data_of is not None else image.base64,
                },
            }
        )
    blocks.append({"type": "text", "text": prompt.text})
    return blocks


def messages_body(fields: Mapping[str, Any], prompt: Prompt) -> bytes:
    """The Messages request body as JSON bytes, the document `messages.create(messages=...,
    **fields)` sends (sampling fields in the body, as the SDK's `extra_body` puts them); each
    image's base64 text is spliced in as prepared bytes (`wire_body`)."""
    messages = [{"role": "user", "content": message_content(prompt, lambda _: IMAGE_SLOT)}]
    return splice_images({**fields, "messages": messages}, prompt.images, base64_literal)


def post_messages(client: Any, body: bytes) -> Any:
    """A prepared Messages body sent by the SDK's sync client (its headers, authentication,
    timeout and errors, as for `messages.create`), the reply parsed into a `Message`. Runs on a
    sender thread (`thread_sender`), off the event loop."""
    from anthropic.types import Message

    return client.post(
        "/v1/messages", cast_to=Message, content=body, options={"headers": {"Content-Type": "application/json"}}
    )


def read_message(message: Any, output_limit: int | None = None) -> Response:

    if isinstance(message, (str, bytes)):
        raise unreadable_body(message)
    if getattr(message, "type", None) == "error":  # an error event in a 200 body
        raise error_in_body(
            getattr(message, "error", None) or (getattr(message, "model_extra", None) or {}).get("error", "error")
        )
    content = getattr(message, "content", None)
    if content is None:
        raise malformed(f"response is not a message (no `content`): {type(message).__name__}")
    stop = getattr(message, "stop_reason", None)
    texts = [str(getattr(block, "text", "")) for block in content if getattr(block, "type", None) == "text"]
    thoughts = [str(getattr(block, "thinking", "")) for block in content if getattr(block, "type", None) == "thinking"]
    text = "".join(texts)
    if stop == "refusal" and not text.strip():
        raise refused("model refused (stop_reason=refusal)")
    if not text.strip() and stop in LENGTH_FINISHES:
        raise budget_exhausted(stop, output_limit)
    if not texts:
        raise malformed(f"message has no text block (stop_reason={stop})")
    usage = getattr(message, "usage", None)
    return Response(
        text=text,
        usage=Usage(
            input_tokens=int(getattr(usage, "input_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "output_tokens", 0) or 0),
        ),
        finish_reason=stop,
        served_model=getattr(message, "model", None),
        reasoning="\n".join(t for t in thoughts if t) or None,
    )


def _create_keywords(client: Any) -> frozenset[str]:
    try:
        return frozenset(inspect.signature(client.messages.create).parameters)
    except (TypeError, ValueError):
        return frozenset()


class AnthropicAdapter(ApiAdapter):
    def __init__(
        self,
        info: ModelInfo,
        options: ModelOptions,
        model_name: str,
        base_url: str | None,
        api_key: str,
        *,
        send_temperature: bool = True,
        reasoning: Reasoning | None = None,
    ) -> None:
        super().__init__(info, Capabilities(max_images=None, system_prompt=True, image_formats=ACCEPTED_MIME), options)
        self.model_name = model_name
        self.base_url = base_url
        self._api_key = api_key
        self._client: Any = None  # async: `messages.create` (SDKs without raw bodies)
        self._sync_client: Any = None  # sync: prepared bodies, called on the sender's threads
        self._raw_body: bool | None = None  # whether the SDK takes a prepared body (checked once)
        self._sender = ThreadSender("cvbench-send", 2 * int(options.concurrency) + 2)
        self.send_temperature = send_temperature
        self.reasoning = reasoning or Reasoning(enabled=False)
        self.image_contract = contract_for("anthropic")

    def provider_settings(self) -> dict[str, Any]:
        return {
            "provider": "anthropic",
            "model": self.model_name,
            "image_encoding": "base64-block",
            "send_temperature": self.send_temperature,
            "reasoning": self.reasoning.as_dict(),
        }

    def client(self) -> Any:
        """The SDK's async client (`messages.create`, for SDKs that cannot send a prepared body)."""
        if self._client is None:
            anthropic = require("anthropic", "anthropic", "the Anthropic adapter")
            self._client = anthropic.AsyncAnthropic(**self._client_options())
        return self._client

    def sync_client(self) -> Any:
        """The SDK's sync client, shared by the sender threads; created on the event loop's thread."""
        if self._sync_client is None:
            anthropic = require("anthropic", "anthropic", "the Anthropic adapter")
            self._sync_client = anthropic.Anthropic(**self._client_options())
        return self._sync_client

    def _client_options(self) -> dict[str, Any]:
        return {"api_key": self._api_key, "base_url": self.base_url, "max_retries": 0, "timeout": self.policy.timeout_s}

    def sends_raw_body(self) -> bool:
        """Whether the installed SDK sends a prepared body (else `messages.create` builds its own)."""
        if self._raw_body is None:
            anthropic = require("anthropic", "anthropic", "the Anthropic adapter")
            self._raw_body = takes_raw_body(anthropic.Anthropic)
        return self._raw_body

    def request_fields(self, request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the `messages.create` keywords but `messages`, the sampling fields) of a request."""
        config = request.config
        thinking = self.reasoning
        fields: dict[str, Any] = {"model": self.model_name, "max_tokens": thinking.output_limit(config.max_tokens)}
        if request.prompt.system:
            fields["system"] = request.prompt.system
        sampling: dict[str, Any] = {}
        if thinking.enabled:
            sampling["thinking"] = {"type": "enabled", "budget_tokens": thinking.thinking_budget}
        if self.send_temperature:
            sampling["temperature"] = config.temperature
        if config.top_p is not None and not thinking.enabled:
            sampling["top_p"] = config.top_p
        return fields, sampling

    def prepare_body(self, request: Request) -> bytes | None:
        """The request's whole wire body, built in the runner's prompt pool (`Request.body`); None
        where the SDK cannot send a prepared body."""
        if not self.sends_raw_body():
            return None
        fields, sampling = self.request_fields(request)
        return messages_body({**fields, **sampling}, request.prompt)

    async def _attempt(self, request: Request) -> Response:
        fields, sampling = self.request_fields(request)
        output_limit = fields["max_tokens"]
        if self.sends_raw_body():
            body = request.body if request.body is not None else messages_body({**fields, **sampling}, request.prompt)
            message = await self._sender.call(partial(post_messages, self.sync_client(), body))
            return read_message(message, output_limit)
        client = self.client()
        args = {**fields, "messages": [{"role": "user", "content": message_content(request.prompt)}]}
        # Recent SDK releases dropped the sampling keywords from `create`; the API fields still
        # exist, so they travel in the body either way.
        accepted = _create_keywords(client)
        extra_body = {k: v for k, v in sampling.items() if k not in accepted}
        args.update({k: v for k, v in sampling.items() if k in accepted})
        if extra_body:
            args["extra_body"] = extra_body
        return read_message(await client.messages.create(**args), output_limit)

    async def aclose(self) -> None:
        # a closed adapter may be used again (as before: its clients are made anew); its
        # sender's threads end, a fresh sender starts threads on demand
        sender, self._sender = self._sender, ThreadSender(self._sender.name, self._sender.max_threads)
        sender.close()
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()
        if self._sync_client is not None:
            sync_client, self._sync_client = self._sync_client, None
            sync_client.close()


def make_adapter(model_name: str, options: ModelOptions) -> AnthropicAdapter:
    require_installed("anthropic", "anthropic", "the Anthropic adapter")
    opts = read_options(options.extra, OPTIONS, f"anthropic:{model_name}")
    think = bool(opts.get("thinking", False))
    if think and not anthropic_can_think(model_name):
        raise ModelResolutionError(
            f"anthropic:{model_name}: thinking=true needs a model with extended thinking "
            f"(Claude 3.7 Sonnet, Claude 4 or later)"
        )
    if "thinking_budget" in opts and not think:
        raise ModelResolutionError(f"anthropic:{model_name}: thinking_budget needs thinking=true")
    budget = int(opts.get("thinking_budget", ANTHROPIC_DEFAULT_THINKING))
    reasoning = (
        Reasoning(enabled=True, reasoning_tokens=budget, thinking_budget=budget) if think else Reasoning(enabled=False)
    )
    secret = find_secret(KEY_VARS)
    if secret is None:
        raise ModelResolutionError(
            f"anthropic:{model_name} needs an API key: set ANTHROPIC_API_KEY in the environment or in ./.env"
        )
    base_url = api_base_url(opts, options.base_urls, "ANTHROPIC_BASE_URL")
    info = ModelInfo(
        model_id=f"anthropic:{model_name}",
        display_name=str(opts.get("display_name", model_name)),
        access="api",
        provider="anthropic",
    )
    return AnthropicAdapter(
        info,
        options,
        model_name,
        base_url,
        secret.value,
        send_temperature=opts.get("send_temperature", not think),
        reasoning=reasoning,
    )
