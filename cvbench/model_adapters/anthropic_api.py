"""Anthropic Messages API through the official `anthropic` SDK (`anthropic:MODEL`).

Images go as base64 `image` blocks with the `PromptImage` bytes and media type, in order,
followed by one `text` block; `Prompt.system` goes to the top-level `system` field. The SDK's
retries are off; `ApiAdapter` retries. Base URL: `extra["base_url"]`, else
`ModelOptions.base_urls[0]`, else `ANTHROPIC_BASE_URL`, else the Anthropic API.
"""

from __future__ import annotations

import base64
import inspect
import os
from typing import Any

from cvbench.harness.types import (
    Capabilities,
    ModelError,
    ModelInfo,
    Prompt,
    Request,
    Response,
    Usage,
)
from cvbench.model_adapters.base import (
    ApiAdapter,
    AttemptError,
    malformed,
    refused,
    require,
)
from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError
from cvbench.model_adapters.secrets import find_secret

KEY_VARS = ("ANTHROPIC_API_KEY",)
ACCEPTED_MIME = ("image/png", "image/jpeg", "image/gif", "image/webp")


def message_content(prompt: Prompt) -> list[dict[str, Any]]:
    """The user turn: one base64 image block per image, in order, then the text block."""
    blocks: list[dict[str, Any]] = []
    for image in prompt.images:
        if image.mime not in ACCEPTED_MIME:
            raise AttemptError(ModelError("invalid_request",
                                           f"{image.label}: Anthropic accepts {', '.join(ACCEPTED_MIME)}, not {image.mime}"))
        blocks.append({"type": "image", "source": {"type": "base64", "media_type": image.mime,
                                                   "data": base64.b64encode(image.data).decode("ascii")}})
    blocks.append({"type": "text", "text": prompt.text})
    return blocks


def read_message(message: Any) -> Response:
    content = getattr(message, "content", None)
    if isinstance(message, (str, bytes)) or content is None:
        raise malformed(f"response is not a message: {str(message)[:200]!r}")
    stop = getattr(message, "stop_reason", None)
    texts = [str(getattr(block, "text", "")) for block in content if getattr(block, "type", None) == "text"]
    text = "".join(texts)
    if stop == "refusal" and not text.strip():
        raise refused("model refused (stop_reason=refusal)")
    if not texts:
        raise malformed(f"message has no text block (stop_reason={stop})")
    usage = getattr(message, "usage", None)
    return Response(text=text,
                    usage=Usage(input_tokens=int(getattr(usage, "input_tokens", 0) or 0),
                                output_tokens=int(getattr(usage, "output_tokens", 0) or 0)),
                    finish_reason=stop, served_model=getattr(message, "model", None))


def _create_keywords(client: Any) -> frozenset[str]:
    try:
        return frozenset(inspect.signature(client.messages.create).parameters)
    except (TypeError, ValueError):
        return frozenset()


class AnthropicAdapter(ApiAdapter):
    def __init__(self, info: ModelInfo, options: ModelOptions, model_name: str, base_url: str | None,
                 api_key: str) -> None:
        super().__init__(info, Capabilities(max_images=None, system_prompt=True, image_formats=ACCEPTED_MIME), options)
        self.model_name = model_name
        self.base_url = base_url
        self._api_key = api_key
        self._client: Any = None
        self.send_temperature = bool(options.extra.get("send_temperature", True))

    def provider_settings(self) -> dict[str, Any]:
        return {"provider": "anthropic", "model": self.model_name, "image_encoding": "base64-block",
                "send_temperature": self.send_temperature}

    def client(self) -> Any:
        if self._client is None:
            anthropic = require("anthropic", "anthropic", "the Anthropic adapter")
            self._client = anthropic.AsyncAnthropic(api_key=self._api_key, base_url=self.base_url, max_retries=0,
                                                    timeout=self.policy.timeout_s)
        return self._client

    async def _attempt(self, request: Request) -> Response:
        config = request.config
        client = self.client()
        args: dict[str, Any] = {"model": self.model_name, "max_tokens": config.max_tokens,
                                "messages": [{"role": "user", "content": message_content(request.prompt)}]}
        if request.prompt.system:
            args["system"] = request.prompt.system
        sampling: dict[str, Any] = {}
        if self.send_temperature:
            sampling["temperature"] = config.temperature
        if config.top_p is not None:
            sampling["top_p"] = config.top_p
        # Recent SDK releases dropped the sampling keywords from `create`; the API fields still
        # exist, so they travel in the body either way.
        accepted = _create_keywords(client)
        extra_body = {k: v for k, v in sampling.items() if k not in accepted}
        args.update({k: v for k, v in sampling.items() if k in accepted})
        if extra_body:
            args["extra_body"] = extra_body
        return read_message(await client.messages.create(**args))

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()


def make_adapter(model_name: str, options: ModelOptions) -> AnthropicAdapter:
    require("anthropic", "anthropic", "the Anthropic adapter")
    secret = find_secret(KEY_VARS)
    if secret is None:
        raise ModelResolutionError(
            f"anthropic:{model_name} needs an API key: set ANTHROPIC_API_KEY in the environment or in ./.env")
    base_url = options.extra.get("base_url") or (options.base_urls[0] if options.base_urls else None) \
        or os.environ.get("ANTHROPIC_BASE_URL") or None
    info = ModelInfo(model_id=f"anthropic:{model_name}",
                     display_name=str(options.extra.get("display_name", model_name)), access="api",
                     provider="anthropic")
    return AnthropicAdapter(info, options, model_name, base_url, secret.value)
