"""Google Gemini through the official `google-genai` SDK (`google:MODEL`, Gemini Developer API).

Images go as `inline_data` parts (the SDK base64-encodes the `PromptImage` bytes with their MIME
type), in order, followed by one text part; `Prompt.system` becomes `system_instruction`. The
SDK's sync client builds and sends each request on a sender thread (`thread_sender`), so the
base64 and JSON work of the body stays off the event loop (google-genai has no way to send a
body prepared beforehand). The
SDK's retries are off (`HttpRetryOptions(attempts=1)`); `ApiAdapter` retries. Key:
`GEMINI_API_KEY` or `GOOGLE_API_KEY` (env or .env). Base URL: `extra["base_url"]`, else
`ModelOptions.base_urls[0]`, else `CVBENCH_GOOGLE_BASE_URL`, else Google's endpoint.

Thinking (see `reasoning.py`): Gemini 2.5 gets `thinking_config.thinking_budget` (option
`thinking_budget`, default 8192; 0 turns it off where the model allows) and Gemini 3
`thinking_level` (option, default "high"); `max_output_tokens` is the answer budget plus the
thinking budget, so thinking cannot eat the answer. Thought summaries (`include_thoughts`,
default true) go to `Response.reasoning`, never into the answer.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from cvbench.core.secrets import find_secret
from cvbench.core.types import (
    Capabilities,
    ModelError,
    ModelInfo,
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
    malformed,
    refused,
    require,
    require_installed,
    unreadable_body,
)
from cvbench.model_adapters.image_policy import contract_for
from cvbench.model_adapters.reasoning import (
    GEMINI_3_DEFAULT_LEVEL,
    GEMINI_3_REASONING_TOKENS,
    GEMINI_DEFAULT_THINKING,
    GEMINI_LEVELS,
    LENGTH_FINISHES,
    Reasoning,
    gemini_generation,
    gemini_thinking_range,
)
from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError
from cvbench.model_adapters.thread_sender import ThreadSender

KEY_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
BASE_URL_ENV = "CVBENCH_GOOGLE_BASE_URL"
BLOCKED_FINISH = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "MODEL_ARMOR",
        "LANGUAGE",
    }
)

OPTIONS: tuple[OptionSpec, ...] = COMMON_API_OPTIONS + (
    OptionSpec("send_temperature", "bool", "send a temperature (default: true; false for Gemini 3)"),
    OptionSpec("thinking_budget", "int", f"Gemini 2.5: thinking tokens (default {GEMINI_DEFAULT_THINKING})", minimum=0),
    OptionSpec(
        "thinking_level", "choice", f"Gemini 3: thinking level (default {GEMINI_3_DEFAULT_LEVEL})", GEMINI_LEVELS
    ),
    OptionSpec("reasoning_tokens", "int", "Gemini 3: output tokens reserved for thinking", minimum=0),
    OptionSpec("include_thoughts", "bool", "ask for thought summaries (stored, never parsed); default true"),
)


def _enum_name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", None) or getattr(value, "name", None) or value)


def read_generate_response(response: Any, output_limit: int | None = None) -> Response:
    """Validate a GenerateContentResponse: blocked prompt/answer -> refused, no text at MAX_TOKENS
    -> budget_exhausted, other no text -> malformed. Thought parts go to `Response.reasoning`."""

    if isinstance(response, (str, bytes)):
        raise unreadable_body(response)
    if not hasattr(response, "candidates"):
        raise malformed(f"response is not a GenerateContentResponse: {type(response).__name__}")
    candidates = response.candidates or []
    feedback = getattr(response, "prompt_feedback", None)
    block = _enum_name(getattr(feedback, "block_reason", None)) if feedback is not None else None
    if not candidates:
        if block:
            detail = getattr(feedback, "block_reason_message", None) or ""
            raise refused(f"prompt blocked by the provider (block_reason={block}) {detail}".strip())
        raise malformed("response has no candidates")
    candidate = candidates[0]
    finish = _enum_name(getattr(candidate, "finish_reason", None))
    content = getattr(candidate, "content", None)
    parts = (getattr(content, "parts", None) or []) if content is not None else []
    text = "".join(str(p.text) for p in parts if getattr(p, "text", None) and not getattr(p, "thought", False))
    thoughts = "".join(str(p.text) for p in parts if getattr(p, "text", None) and getattr(p, "thought", False))
    usage = getattr(response, "usage_metadata", None)
    if not text.strip():
        if finish in BLOCKED_FINISH:
            raise refused(f"answer blocked by the provider (finish_reason={finish})")
        if finish in LENGTH_FINISHES:
            raise budget_exhausted(finish, output_limit, getattr(usage, "thoughts_token_count", None))
        raise malformed(f"first candidate has no text (finish_reason={finish})")
    output_tokens = int(getattr(usage, "candidates_token_count", 0) or 0) + int(
        getattr(usage, "thoughts_token_count", 0) or 0
    )
    return Response(
        text=text,
        usage=Usage(input_tokens=int(getattr(usage, "prompt_token_count", 0) or 0), output_tokens=output_tokens),
        finish_reason=finish,
        served_model=getattr(response, "model_version", None),
        reasoning=thoughts or None,
    )


class GoogleAdapter(ApiAdapter):
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
        include_thoughts: bool = True,
    ) -> None:
        super().__init__(
            info,
            Capabilities(max_images=None, system_prompt=True, image_formats=("image/png", "image/jpeg", "image/webp")),
            options,
        )
        self.model_name = model_name
        self.base_url = base_url
        self._api_key = api_key
        self._client: Any = None
        self.send_temperature = send_temperature
        self.reasoning = reasoning or Reasoning(enabled=False)
        self.image_contract = contract_for("google")
        self.include_thoughts = include_thoughts
        self._sender = ThreadSender("cvbench-send", 2 * int(options.concurrency) + 2)

    def provider_settings(self) -> dict[str, Any]:
        return {
            "provider": "google",
            "model": self.model_name,
            "image_encoding": "inline_data",
            "send_temperature": self.send_temperature,
            "reasoning": self.reasoning.as_dict(),
            "include_thoughts": self.include_thoughts,
        }

    def thinking_config(self, types: Any) -> Any:
        r = self.reasoning
        if r.thinking_budget is not None:
            return types.ThinkingConfig(
                thinking_budget=r.thinking_budget, include_thoughts=self.include_thoughts and r.thinking_budget > 0
            )
        if r.effort is not None:
            return types.ThinkingConfig(thinking_level=r.effort.upper(), include_thoughts=self.include_thoughts)
        return None

    def client(self) -> Any:
        if self._client is None:
            genai = require("google.genai", "google", "the Google adapter")
            types = require("google.genai.types", "google", "the Google adapter")
            http_options = types.HttpOptions(
                base_url=self.base_url,
                timeout=int(self.policy.timeout_s * 1000),
                retry_options=types.HttpRetryOptions(attempts=1),
            )
            self._client = genai.Client(api_key=self._api_key, http_options=http_options)
        return self._client

    async def _attempt(self, request: Request) -> Response:
        types = require("google.genai.types", "google", "the Google adapter")
        prompt = request.prompt
        parts = []
        for image in prompt.images:
            if image.mime not in self.capabilities.image_formats:
                raise AttemptError(ModelError("invalid_request", f"{image.label}: Gemini does not take {image.mime}"))
            parts.append(types.Part.from_bytes(data=image.data, mime_type=image.mime))
        parts.append(types.Part.from_text(text=prompt.text))
        config = request.config
        output_limit = self.reasoning.output_limit(config.max_tokens)
        settings: dict[str, Any] = {"max_output_tokens": output_limit}
        if self.send_temperature:
            settings["temperature"] = config.temperature
        thinking = self.thinking_config(types)
        if thinking is not None:
            settings["thinking_config"] = thinking
        if prompt.system:
            settings["system_instruction"] = prompt.system
        if config.top_p is not None:
            settings["top_p"] = config.top_p
        if config.seed is not None:
            settings["seed"] = config.seed
        generate = partial(
            self.client().models.generate_content,
            model=self.model_name,
            contents=[types.Content(role="user", parts=parts)],
            config=types.GenerateContentConfig(**settings),
        )
        return read_generate_response(await self._sender.call(generate), output_limit)

    async def aclose(self) -> None:
        # a closed adapter may be used again: a new client, a fresh sender (threads on demand)
        sender, self._sender = self._sender, ThreadSender(self._sender.name, self._sender.max_threads)
        sender.close()
        if self._client is not None:
            client, self._client = self._client, None
            closer = getattr(client, "close", None)  # the sync client's connections (google-genai >= 1.x)
            if closer is not None:
                closer()


def make_adapter(model_name: str, options: ModelOptions) -> GoogleAdapter:
    require_installed("google.genai", "google", "the Google adapter")
    opts = read_options(options.extra, OPTIONS, f"google:{model_name}")
    reasoning = gemini_reasoning(model_name, opts)
    secret = find_secret(KEY_VARS)
    if secret is None:
        raise ModelResolutionError(
            f"google:{model_name} needs an API key: set GEMINI_API_KEY (or GOOGLE_API_KEY) in the environment "
            f"or in ./.env"
        )
    base_url = api_base_url(opts, options.base_urls, BASE_URL_ENV)
    info = ModelInfo(
        model_id=f"google:{model_name}",
        display_name=str(opts.get("display_name", model_name)),
        access="api",
        provider="google",
    )
    return GoogleAdapter(
        info,
        options,
        model_name,
        base_url,
        secret.value,
        send_temperature=opts.get("send_temperature", gemini_generation(model_name) != "3"),
        reasoning=reasoning,
        include_thoughts=opts.get("include_thoughts", True),
    )


def gemini_reasoning(model_name: str, opts: Any) -> Reasoning:
    """Thinking settings by model generation; an option the model does not take is an error."""
    generation = gemini_generation(model_name)
    if generation == "3":
        if "thinking_budget" in opts:
            raise ModelResolutionError(f"google:{model_name}: Gemini 3 takes thinking_level, not thinking_budget")
        return Reasoning(
            enabled=True,
            effort=opts.get("thinking_level", GEMINI_3_DEFAULT_LEVEL),
            reasoning_tokens=int(opts.get("reasoning_tokens", GEMINI_3_REASONING_TOKENS)),
        )
    for name in ("thinking_level", "reasoning_tokens"):
        if name in opts:
            raise ModelResolutionError(
                f"google:{model_name}: {name} is a Gemini 3 option"
                + ("; Gemini 2.5 takes thinking_budget" if generation else "")
            )
    if generation != "2.5":
        if "thinking_budget" in opts:
            raise ModelResolutionError(f"google:{model_name}: thinking_budget needs a Gemini 2.5 model")
        return Reasoning(enabled=False)
    budget = int(opts.get("thinking_budget", GEMINI_DEFAULT_THINKING))
    low, high = gemini_thinking_range(model_name)
    if (budget != 0 and not low <= budget <= high) or (budget == 0 and low > 0):
        raise ModelResolutionError(
            f"google:{model_name}: thinking_budget={budget} is outside the model's range "
            f"{'' if low else '0 or '}{max(low, 1)}..{high}"
        )
    return Reasoning(enabled=budget > 0, reasoning_tokens=budget, thinking_budget=budget)
