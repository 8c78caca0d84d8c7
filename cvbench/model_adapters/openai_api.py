"""OpenAI chat completions through the official `openai` SDK (`openai:MODEL`).

Images go as base64 data URLs, exactly the bytes and MIME type of each `PromptImage`, in prompt
order and before the text, with `detail: "high"` unless `ModelOptions.extra["image_detail"]`
says otherwise (the value is part of `settings()`, so it is recorded and keys the cache).
The SDK's own retries are off; `ApiAdapter` retries.

Options (`ModelOptions.extra`, declared in `OPTIONS` and typed by `api_options.read_options`):
`image_detail` ("high" | "low" | "auto"), `base_url` (else `ModelOptions.base_urls[0]`, else
`OPENAI_BASE_URL`, else the OpenAI API), `max_tokens_field` ("max_completion_tokens" for the
OpenAI API; "max_tokens" for older servers), `send_temperature` (default: false for reasoning
models, which refuse one), `reasoning_effort` and `reasoning_tokens` (reasoning models: the effort
sent, and the tokens added to the answer budget for reasoning; see `reasoning.py`).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from cvbench.core.secrets import find_secret
from cvbench.core.types import (
    Capabilities,
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
    LENGTH_FINISHES,
    OPENAI_DEFAULT_EFFORT,
    OPENAI_EFFORTS,
    OPENAI_REASONING_TOKENS,
    Reasoning,
    openai_reasons,
)
from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError
from cvbench.model_adapters.thread_sender import ThreadSender
from cvbench.model_adapters.wire_body import IMAGE_SLOT, data_url_literal, splice_images, takes_raw_body

IMAGE_DETAILS = ("high", "low", "auto")
KEY_VARS = ("OPENAI_API_KEY",)
MAX_TOKENS_FIELDS = ("max_completion_tokens", "max_tokens")

CHAT_OPTIONS: tuple[OptionSpec, ...] = COMMON_API_OPTIONS + (
    OptionSpec("image_detail", "choice", "image detail level sent with each image", IMAGE_DETAILS),
    OptionSpec("max_tokens_field", "choice", "name of the output-limit field", MAX_TOKENS_FIELDS),
    OptionSpec("send_temperature", "bool", "send a temperature (default: false for reasoning models)"),
    OptionSpec(
        "reasoning_effort", "choice", f"reasoning models: effort (default {OPENAI_DEFAULT_EFFORT})", OPENAI_EFFORTS
    ),
    OptionSpec("reasoning_tokens", "int", "tokens added to the answer budget for reasoning", minimum=0),
    OptionSpec(
        "extra_headers",
        "headers",
        "HTTP headers sent with every request (JSON object; values redacted everywhere cvbench writes)",
    ),
)
OPTIONS = CHAT_OPTIONS


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def chat_messages(
    prompt: Prompt, detail: str | None, text: str | None = None, url_of: Callable[[PromptImage], str] | None = None
) -> list[dict[str, Any]]:
    """Chat messages for a prompt: optional system message, then one user turn with the images
    (in order) followed by the text. `url_of` gives each image's URL (default: its data URL)."""
    content: list[dict[str, Any]] = []
    for image in prompt.images:
        image_url: dict[str, Any] = {"url": url_of(image) if url_of is not None else image.data_url}
        if detail is not None:
            image_url["detail"] = detail
        content.append({"type": "image_url", "image_url": image_url})
    content.append({"type": "text", "text": prompt.text if text is None else text})
    messages: list[dict[str, Any]] = []
    if prompt.system:
        messages.append({"role": "system", "content": prompt.system})
    messages.append({"role": "user", "content": content})
    return messages


def chat_body(
    model: str, prompt: Prompt, detail: str | None, fields: Mapping[str, Any], text: str | None = None
) -> bytes:
    """The chat-completion request body as JSON bytes, equal in meaning to what the SDK would send
    for `create(model=..., messages=chat_messages(...), **fields)`; the images' data URLs are
    spliced in as prepared bytes (`wire_body`)."""
    messages = chat_messages(prompt, detail, text, url_of=lambda _: IMAGE_SLOT)
    return splice_images({"model": model, "messages": messages, **fields}, prompt.images, data_url_literal)


def post_chat(client: Any, body: bytes) -> Any:
    """A prepared chat-completion body sent by the SDK's sync client (its headers, timeout and
    errors, as for `chat.completions.create`), the reply parsed into a `ChatCompletion`. Runs on a
    sender thread (`thread_sender`), off the event loop."""
    from openai.types.chat import ChatCompletion

    return client.post(
        "/chat/completions",
        cast_to=ChatCompletion,
        content=body,
        # the authentication `chat.completions.create` asks for (bearer only)
        options={"headers": {"Content-Type": "application/json"}, "security": {"bearer_auth": True}},
    )


def sampling_arguments(
    request: Request, max_tokens_field: str, send_temperature: bool = True, reasoning: Reasoning | None = None
) -> dict[str, Any]:
    """The sampling fields of a chat completion. A reasoning model gets answer + reasoning budget as
    its output limit, its `reasoning_effort`, and no temperature/top_p (it refuses them)."""
    config = request.config
    reasoning = reasoning or Reasoning(enabled=False)
    args: dict[str, Any] = {max_tokens_field: reasoning.output_limit(config.max_tokens)}
    if send_temperature:
        args["temperature"] = config.temperature
    if config.top_p is not None and not reasoning.enabled:
        args["top_p"] = config.top_p
    if config.seed is not None:
        args["seed"] = config.seed
    if reasoning.enabled and reasoning.effort is not None:
        args["reasoning_effort"] = reasoning.effort
    return args


def split_think(text: str) -> tuple[str, str | None]:
    """A leading `<think>...</think>` block (open-weight reasoning models) split off the answer."""
    stripped = text.lstrip()
    if not stripped.startswith("<think>"):
        return text, None
    end = stripped.find("</think>")
    if end < 0:  # cut off while thinking: no answer yet
        return "", stripped[len("<think>") :].strip()
    return stripped[end + len("</think>") :].strip(), stripped[len("<think>") : end].strip()


def _reasoning_tokens(completion: Any) -> int | None:
    details = getattr(getattr(completion, "usage", None), "completion_tokens_details", None)
    value = getattr(details, "reasoning_tokens", None) if details is not None else None
    return int(value) if isinstance(value, int) else None


def _error_body(completion: Any) -> Any:
    """The `error` member of a 200 body that carries an error instead of a completion."""
    extra = getattr(completion, "model_extra", None) or {}
    return extra.get("error") if isinstance(extra, dict) else None


def usage_of(completion: Any) -> Usage:
    usage = getattr(completion, "usage", None)
    if usage is None:
        return Usage()
    return Usage(
        input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
    )


def read_completion(completion: Any, output_limit: int | None = None) -> tuple[Any, Response]:
    """Validate a chat completion; returns (its first choice, the Response without scores).

    Raises AttemptError `malformed` for a body that is not a completion or has no choices /
    no message (with the server's own message when the 200 body carries an error; transient
    ones retryable), `refused` for a refusal or a content-filtered answer without text,
    `budget_exhausted` for an empty answer that stopped at the output limit. Reasoning text
    (`reasoning_content` / `reasoning`, or a leading `<think>` block) goes to
    `Response.reasoning`, never into the answer.
    """

    if isinstance(completion, (str, bytes)):
        raise unreadable_body(completion)
    error = _error_body(completion)
    if error is not None:
        raise error_in_body(error)
    choices = getattr(completion, "choices", None)
    if choices is None:
        raise malformed(f"response is not a chat completion (no `choices`): {type(completion).__name__}")
    if not choices:
        raise malformed("response has no choices", retryable=True)
    choice = choices[0]
    message = getattr(choice, "message", None)
    if message is None:
        raise malformed("first choice has no message")
    finish = getattr(choice, "finish_reason", None)
    text = getattr(message, "content", None)
    refusal = getattr(message, "refusal", None)
    extra = getattr(message, "model_extra", None) or {}
    reasoning = extra.get("reasoning_content") or extra.get("reasoning") if isinstance(extra, dict) else None
    if text is not None:
        text, think = split_think(str(text))
        reasoning = reasoning or think
    if refusal and not text:
        raise refused(f"model refused: {refusal}")
    if finish == "content_filter" and not text:
        raise refused("answer blocked by the provider's content filter (finish_reason=content_filter)")
    if (text is None or not text.strip()) and finish in LENGTH_FINISHES:
        raise budget_exhausted(finish, output_limit, _reasoning_tokens(completion))
    if text is None:
        raise malformed(f"first choice has no text content (finish_reason={finish})")
    return choice, Response(
        text=str(text),
        usage=usage_of(completion),
        finish_reason=finish,
        served_model=getattr(completion, "model", None),
        reasoning=str(reasoning) if reasoning else None,
    )


class OpenAIChatAdapter(ApiAdapter):
    """One OpenAI-protocol endpoint (the OpenAI API, or any server speaking it)."""

    def __init__(
        self,
        info: ModelInfo,
        capabilities: Capabilities,
        options: ModelOptions,
        model_name: str,
        *,
        base_url: str | None,
        api_key: str | None,
        image_detail: str | None,
        max_tokens_field: str,
        send_temperature: bool = True,
        reasoning: Reasoning | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(info, capabilities, options)
        self.extra_headers = dict(extra_headers or {})
        self.model_name = model_name
        self.base_url = base_url
        self.image_detail = image_detail
        self.max_tokens_field = max_tokens_field
        self.send_temperature = send_temperature  # reasoning models refuse one (recorded)
        self.reasoning = reasoning or Reasoning(enabled=False)
        # the OpenAI API's image limits, or what every common OpenAI-compatible server accepts
        # (image_policy.CONTRACTS["openai-compatible"]: JPEG and PNG data URLs, JPEG by default)
        self.image_contract = contract_for(info.provider)
        self._api_key = api_key
        self._clients: dict[str, Any] = {}  # async clients: the SDK's `create` (old SDKs without raw bodies)
        self._sync_clients: dict[str, Any] = {}  # sync clients, called on the sender's threads
        self._raw_body: bool | None = None  # whether the SDK takes a prepared body (checked once)
        # one thread per request in flight; a timed-out attempt's thread may outlive its slot
        self._sender = ThreadSender("cvbench-send", 2 * int(options.concurrency) + 2)

    def _client_options(self, base_url: str | None) -> dict[str, Any]:
        return {
            "api_key": self._api_key or "EMPTY",
            "base_url": base_url,
            "max_retries": 0,
            "timeout": self.policy.timeout_s,
            "default_headers": self.extra_headers or None,
        }

    def _client(self, base_url: str | None) -> Any:
        """The SDK's async client for `base_url` (its `chat.completions.create`)."""
        return self._cached_client(self._clients, "AsyncOpenAI", base_url)

    def _sync_client(self, base_url: str | None) -> Any:
        """The SDK's sync client for `base_url`, shared by the sender threads (its connection pool
        is thread-safe); created on the event loop's thread."""
        return self._cached_client(self._sync_clients, "OpenAI", base_url)

    def _cached_client(self, clients: dict[str, Any], kind: str, base_url: str | None) -> Any:
        key = base_url or ""
        if key not in clients:
            openai = require("openai", "openai", "the OpenAI adapter")
            clients[key] = getattr(openai, kind)(**self._client_options(base_url))
        return clients[key]

    def sends_raw_body(self) -> bool:
        """Whether the installed SDK sends a prepared body (else `create` builds its own)."""
        if self._raw_body is None:
            openai = require("openai", "openai", "the OpenAI adapter")
            self._raw_body = takes_raw_body(openai.OpenAI)
        return self._raw_body

    async def _chat(
        self,
        base_url: str | None,
        prompt: Prompt,
        fields: Mapping[str, Any],
        text: str | None = None,
        body: bytes | None = None,
    ) -> Any:
        """One chat completion of `prompt` with the request `fields`: a prepared body where the SDK
        takes one (`body`, built in the prompt pool, else `chat_body` here), sent by the sync
        client on a sender thread; else the SDK's own async `chat.completions.create`."""
        if self.sends_raw_body():
            if body is None:
                body = chat_body(self.model_name, prompt, self.image_detail, fields, text)
            client = self._sync_client(base_url)
            return await self._sender.call(partial(post_chat, client, body))
        messages = chat_messages(prompt, self.image_detail, text)
        create = self._client(base_url).chat.completions.create
        return await create(model=self.model_name, messages=messages, **fields)

    def request_arguments(self, request: Request) -> dict[str, Any]:
        """Every body field but `model` and `messages`."""
        return sampling_arguments(request, self.max_tokens_field, self.send_temperature, self.reasoning)

    def prepare_body(self, request: Request) -> bytes | None:
        """The request's whole wire body; the runner calls this in its prompt pool and passes the
        bytes as `Request.body`, so that the event loop only sends them. None where the SDK cannot
        send a prepared body (it would be built for nothing)."""
        if not self.sends_raw_body():
            return None
        return chat_body(self.model_name, request.prompt, self.image_detail, self.request_arguments(request))

    def provider_settings(self) -> dict[str, Any]:
        return {
            "provider": self.info.provider,
            "model": self.model_name,
            "image_detail": self.image_detail,
            "image_encoding": "data-url",
            "max_tokens_field": self.max_tokens_field,
            "send_temperature": self.send_temperature,
            "reasoning": self.reasoning.as_dict(),
        }

    async def _attempt(self, request: Request) -> Response:
        args = self.request_arguments(request)
        completion = await self._chat(self.base_url, request.prompt, args, body=request.body)
        _, response = read_completion(completion, args[self.max_tokens_field])
        return response

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        sync_clients, self._sync_clients = self._sync_clients, {}
        # a closed adapter may be used again (as before: its clients are made anew); its
        # sender's threads end, a fresh sender starts threads on demand
        sender, self._sender = self._sender, ThreadSender(self._sender.name, self._sender.max_threads)
        sender.close()
        for client in clients.values():
            await client.close()
        for sync_client in sync_clients.values():
            sync_client.close()


def image_detail_option(extra: Mapping[str, Any]) -> str:
    detail = str(extra.get("image_detail", "high"))
    if detail not in IMAGE_DETAILS:
        raise ModelResolutionError(f"image_detail={detail!r}: expected one of {', '.join(IMAGE_DETAILS)}")
    return detail


def openai_reasoning(model_name: str, opts: Mapping[str, Any], default_on: bool) -> Reasoning:
    """The reasoning settings of a chat model: on for OpenAI reasoning models (`default_on`), or
    whenever `reasoning_effort` / `reasoning_tokens` is given."""
    enabled = default_on or "reasoning_effort" in opts or "reasoning_tokens" in opts
    if not enabled:
        return Reasoning(enabled=False)
    effort = opts.get("reasoning_effort", OPENAI_DEFAULT_EFFORT if default_on else None)
    return Reasoning(
        enabled=True,
        effort=effort,
        reasoning_tokens=int(opts.get("reasoning_tokens", OPENAI_REASONING_TOKENS if default_on else 0)),
    )


def make_adapter(model_name: str, options: ModelOptions) -> OpenAIChatAdapter:
    require_installed("openai", "openai", "the OpenAI adapter")
    opts = read_options(options.extra, OPTIONS, f"openai:{model_name}")
    reasons = openai_reasons(model_name)
    secret = find_secret(KEY_VARS)
    if secret is None:
        raise ModelResolutionError(
            f"openai:{model_name} needs an API key: set OPENAI_API_KEY in the environment or in ./.env"
        )
    base_url = api_base_url(opts, options.base_urls, "OPENAI_BASE_URL")
    info = ModelInfo(
        model_id=f"openai:{model_name}",
        display_name=str(opts.get("display_name", model_name)),
        access="api",
        params_b=None,
        provider="openai",
    )
    return OpenAIChatAdapter(
        info,
        Capabilities(max_images=None, system_prompt=True),
        options,
        model_name,
        base_url=base_url,
        api_key=secret.value,
        image_detail=opts.get("image_detail", "high"),
        max_tokens_field=opts.get("max_tokens_field", "max_completion_tokens"),
        send_temperature=opts.get("send_temperature", not reasons),
        extra_headers=opts.get("extra_headers"),
        reasoning=openai_reasoning(model_name, opts, reasons),
    )
