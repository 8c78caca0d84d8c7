"""Google Gemini through the official `google-genai` SDK (`google:MODEL`, Gemini Developer API).

Images go as `inline_data` parts (the SDK base64-encodes the `PromptImage` bytes with their MIME
type), in order, followed by one text part; `Prompt.system` becomes `system_instruction`. The
SDK's retries are off (`HttpRetryOptions(attempts=1)`); `ApiAdapter` retries. Key:
`GEMINI_API_KEY` or `GOOGLE_API_KEY` (env or .env). Base URL: `extra["base_url"]`, else
`ModelOptions.base_urls[0]`, else `CVBENCH_GOOGLE_BASE_URL`, else Google's endpoint.
"""

from __future__ import annotations

import os
from typing import Any

from cvbench.harness.types import (
    Capabilities,
    ModelError,
    ModelInfo,
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

KEY_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
BASE_URL_ENV = "CVBENCH_GOOGLE_BASE_URL"
BLOCKED_FINISH = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
                            "IMAGE_PROHIBITED_CONTENT", "MODEL_ARMOR", "LANGUAGE"})


def _enum_name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", None) or getattr(value, "name", None) or value)


def read_generate_response(response: Any) -> Response:
    """Validate a GenerateContentResponse: blocked prompt/answer -> refused, no text -> malformed."""
    if isinstance(response, (str, bytes)) or not hasattr(response, "candidates"):
        raise malformed(f"response is not a GenerateContentResponse: {str(response)[:200]!r}")
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
    if not text:
        if finish in BLOCKED_FINISH:
            raise refused(f"answer blocked by the provider (finish_reason={finish})")
        raise malformed(f"first candidate has no text (finish_reason={finish})")
    usage = getattr(response, "usage_metadata", None)
    output_tokens = int(getattr(usage, "candidates_token_count", 0) or 0) + \
        int(getattr(usage, "thoughts_token_count", 0) or 0)
    return Response(text=text,
                    usage=Usage(input_tokens=int(getattr(usage, "prompt_token_count", 0) or 0),
                                output_tokens=output_tokens),
                    finish_reason=finish, served_model=getattr(response, "model_version", None))


class GoogleAdapter(ApiAdapter):
    def __init__(self, info: ModelInfo, options: ModelOptions, model_name: str, base_url: str | None,
                 api_key: str) -> None:
        super().__init__(info, Capabilities(max_images=None, system_prompt=True,
                                            image_formats=("image/png", "image/jpeg", "image/webp")), options)
        self.model_name = model_name
        self.base_url = base_url
        self._api_key = api_key
        self._client: Any = None

    def provider_settings(self) -> dict[str, Any]:
        return {"provider": "google", "model": self.model_name, "image_encoding": "inline_data"}

    def client(self) -> Any:
        if self._client is None:
            genai = require("google.genai", "google", "the Google adapter")
            types = require("google.genai.types", "google", "the Google adapter")
            http_options = types.HttpOptions(
                base_url=self.base_url, timeout=int(self.policy.timeout_s * 1000),
                retry_options=types.HttpRetryOptions(attempts=1))
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
        settings: dict[str, Any] = {"temperature": config.temperature, "max_output_tokens": config.max_tokens}
        if prompt.system:
            settings["system_instruction"] = prompt.system
        if config.top_p is not None:
            settings["top_p"] = config.top_p
        if config.seed is not None:
            settings["seed"] = config.seed
        response = await self.client().aio.models.generate_content(
            model=self.model_name, contents=[types.Content(role="user", parts=parts)],
            config=types.GenerateContentConfig(**settings))
        return read_generate_response(response)

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            closer = getattr(getattr(client, "aio", None), "aclose", None)
            if closer is not None:
                await closer()


def make_adapter(model_name: str, options: ModelOptions) -> GoogleAdapter:
    require("google.genai", "google", "the Google adapter")
    secret = find_secret(KEY_VARS)
    if secret is None:
        raise ModelResolutionError(
            f"google:{model_name} needs an API key: set GEMINI_API_KEY (or GOOGLE_API_KEY) in the environment "
            f"or in ./.env")
    base_url = options.extra.get("base_url") or (options.base_urls[0] if options.base_urls else None) \
        or os.environ.get(BASE_URL_ENV) or None
    info = ModelInfo(model_id=f"google:{model_name}", display_name=str(options.extra.get("display_name", model_name)),
                     access="api", provider="google")
    return GoogleAdapter(info, options, model_name, base_url, secret.value)
