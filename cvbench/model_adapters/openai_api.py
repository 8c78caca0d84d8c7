"""OpenAI chat completions through the official `openai` SDK (`openai:MODEL`).

Images go as base64 data URLs, exactly the bytes and MIME type of each `PromptImage`, in prompt
order and before the text, with `detail: "high"` unless `ModelOptions.extra["image_detail"]`
says otherwise (the value is part of `settings()`, so it is recorded and keys the cache).
The SDK's own retries are off; `ApiAdapter` retries.

Options (`ModelOptions.extra`): `image_detail` ("high" | "low" | "auto"), `base_url` (else
`ModelOptions.base_urls[0]`, else `OPENAI_BASE_URL`, else the OpenAI API), `max_tokens_field`
("max_completion_tokens" for the OpenAI API; "max_tokens" for older servers),
`send_temperature` (False for reasoning models that reject one).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from typing import Any

from cvbench.harness.types import (
    Capabilities,
    ModelInfo,
    Prompt,
    Request,
    Response,
    Usage,
)
from cvbench.model_adapters.base import ApiAdapter, malformed, refused, require
from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError
from cvbench.model_adapters.secrets import find_secret

IMAGE_DETAILS = ("high", "low", "auto")
KEY_VARS = ("OPENAI_API_KEY",)


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def chat_messages(prompt: Prompt, detail: str | None, text: str | None = None) -> list[dict[str, Any]]:
    """Chat messages for a prompt: optional system message, then one user turn with the images
    (in order) followed by the text."""
    content: list[dict[str, Any]] = []
    for image in prompt.images:
        image_url: dict[str, Any] = {"url": data_url(image.data, image.mime)}
        if detail is not None:
            image_url["detail"] = detail
        content.append({"type": "image_url", "image_url": image_url})
    content.append({"type": "text", "text": prompt.text if text is None else text})
    messages: list[dict[str, Any]] = []
    if prompt.system:
        messages.append({"role": "system", "content": prompt.system})
    messages.append({"role": "user", "content": content})
    return messages


def sampling_arguments(request: Request, max_tokens_field: str, send_temperature: bool = True) -> dict[str, Any]:
    config = request.config
    args: dict[str, Any] = {max_tokens_field: config.max_tokens}
    if send_temperature:
        args["temperature"] = config.temperature
    if config.top_p is not None:
        args["top_p"] = config.top_p
    if config.seed is not None:
        args["seed"] = config.seed
    return args


def usage_of(completion: Any) -> Usage:
    usage = getattr(completion, "usage", None)
    if usage is None:
        return Usage()
    return Usage(input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                 output_tokens=int(getattr(usage, "completion_tokens", 0) or 0))


def read_completion(completion: Any) -> tuple[Any, Response]:
    """Validate a chat completion; returns (its first choice, the Response without scores).

    Raises AttemptError `malformed` for a body that is not a completion or has no choices /
    no message, `refused` for a refusal or a content-filtered answer without text.
    """
    choices = getattr(completion, "choices", None)
    if isinstance(completion, (str, bytes)) or choices is None:
        shown = completion if isinstance(completion, str) else type(completion).__name__
        raise malformed(f"response is not a chat completion: {str(shown)[:200]!r}")
    if not choices:
        raise malformed("response has no choices")
    choice = choices[0]
    message = getattr(choice, "message", None)
    if message is None:
        raise malformed("first choice has no message")
    finish = getattr(choice, "finish_reason", None)
    text = getattr(message, "content", None)
    refusal = getattr(message, "refusal", None)
    if refusal and not text:
        raise refused(f"model refused: {refusal}")
    if finish == "content_filter" and not text:
        raise refused("answer blocked by the provider's content filter (finish_reason=content_filter)")
    if text is None:
        raise malformed(f"first choice has no text content (finish_reason={finish})")
    return choice, Response(text=str(text), usage=usage_of(completion), finish_reason=finish,
                            served_model=getattr(completion, "model", None))


class OpenAIChatAdapter(ApiAdapter):
    """One OpenAI-protocol endpoint (the OpenAI API, or any server speaking it)."""

    def __init__(self, info: ModelInfo, capabilities: Capabilities, options: ModelOptions, model_name: str,
                 *, base_url: str | None, api_key: str | None, image_detail: str | None,
                 max_tokens_field: str) -> None:
        super().__init__(info, capabilities, options)
        self.model_name = model_name
        self.base_url = base_url
        self.image_detail = image_detail
        self.max_tokens_field = max_tokens_field
        # reasoning models reject a temperature; extra["send_temperature"]=False leaves it out (recorded)
        self.send_temperature = bool(options.extra.get("send_temperature", True))
        self._api_key = api_key
        self._clients: dict[str, Any] = {}

    def _client(self, base_url: str | None) -> Any:
        key = base_url or ""
        client = self._clients.get(key)
        if client is None:
            openai = require("openai", "openai", "the OpenAI adapter")
            client = openai.AsyncOpenAI(api_key=self._api_key or "EMPTY", base_url=base_url,
                                        max_retries=0, timeout=self.policy.timeout_s)
            self._clients[key] = client
        return client

    def provider_settings(self) -> dict[str, Any]:
        return {"provider": self.info.provider, "model": self.model_name, "image_detail": self.image_detail,
                "image_encoding": "data-url", "max_tokens_field": self.max_tokens_field,
                "send_temperature": self.send_temperature}

    async def _attempt(self, request: Request) -> Response:
        client = self._client(self.base_url)
        completion = await client.chat.completions.create(
            model=self.model_name, messages=chat_messages(request.prompt, self.image_detail),
            **sampling_arguments(request, self.max_tokens_field, self.send_temperature))
        _, response = read_completion(completion)
        return response

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.close()


def image_detail_option(extra: Mapping[str, Any]) -> str:
    detail = str(extra.get("image_detail", "high"))
    if detail not in IMAGE_DETAILS:
        raise ModelResolutionError(f"image_detail={detail!r}: expected one of {', '.join(IMAGE_DETAILS)}")
    return detail


def make_adapter(model_name: str, options: ModelOptions) -> OpenAIChatAdapter:
    require("openai", "openai", "the OpenAI adapter")
    secret = find_secret(KEY_VARS)
    if secret is None:
        raise ModelResolutionError(
            f"openai:{model_name} needs an API key: set OPENAI_API_KEY in the environment or in ./.env")
    base_url = options.extra.get("base_url") or (options.base_urls[0] if options.base_urls else None) \
        or os.environ.get("OPENAI_BASE_URL") or None
    info = ModelInfo(model_id=f"openai:{model_name}", display_name=str(options.extra.get("display_name", model_name)),
                     access="api", params_b=None, provider="openai")
    return OpenAIChatAdapter(info, Capabilities(max_images=None, system_prompt=True), options, model_name,
                             base_url=base_url, api_key=secret.value, image_detail=image_detail_option(options.extra),
                             max_tokens_field=str(options.extra.get("max_tokens_field", "max_completion_tokens")))
