"""Google GenAI (Gemini Developer API) on loopback: POST /{version}/models/{model}:generateContent.

Thinking contract (ai.google.dev/gemini-api/docs/thinking; google-genai `types.ThinkingConfig`):
Gemini 2.5 and 3 think before answering and the thought tokens count against
`maxOutputTokens`; `thinkingBudget` caps them (2.5 Pro cannot turn thinking off: budget 0 is a
400), `thinkingLevel` is the Gemini 3 control and sending both is a 400. With no room left the
candidate has no answer part and finishReason MAX_TOKENS; `includeThoughts` adds a part with
`thought: true`; `usageMetadata.thoughtsTokenCount` counts the thinking. Errors use the API's
`{"error": {"code", "message", "status"}}` shape; the message texts are modelled on the API's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tests.wire.server import (
    ReceivedImage,
    ReceivedRequest,
    WireError,
    WireServer,
    decode_base64,
)

_PATH = re.compile(r"^/(v1|v1beta|v1alpha)/models/([^/:]+):generateContent$")
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _get(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    return obj.get(camel, obj.get(snake))


MAX_INLINE_BYTES = 20 * 1024 * 1024


def thinks(model: str | None) -> bool:
    return bool(re.match(r"^gemini-(2\.5|[3-9])", model or ""))


class GoogleWireServer(WireServer):
    provider = "google"

    def __init__(self, answer: Any = "A", *, thinking_spend: int = 2000, **kwargs: Any) -> None:
        super().__init__(answer, **kwargs)
        self.thinking_spend = thinking_spend  # tokens a thinking model spends when its budget allows

    def contract_violation(self, request: ReceivedRequest) -> tuple[int, dict[str, Any]] | None:
        inline = sum(4 * -(-len(image.data) // 3) for image in request.images)
        if inline > MAX_INLINE_BYTES:
            return 400, self.render_error(400, f"Request payload size exceeds the limit: {MAX_INLINE_BYTES} bytes.")
        thinking = request.settings.get("thinking") or {}
        budget = _get(thinking, "thinkingBudget", "thinking_budget")
        level = _get(thinking, "thinkingLevel", "thinking_level")
        if budget is not None and level is not None:
            return 400, self.render_error(400, "You can only set one of thinking budget and thinking level.")
        if budget == 0 and "-pro" in (request.model or ""):
            return 400, self.render_error(400, "Budget 0 is invalid. This model only works in thinking mode.")
        return None

    def thinking_tokens(self, request: ReceivedRequest) -> int:
        if not thinks(request.model):
            return 0
        thinking = request.settings.get("thinking") or {}
        budget = _get(thinking, "thinkingBudget", "thinking_budget")
        return self.thinking_spend if budget is None or budget < 0 else min(self.thinking_spend, int(budget))

    def route(self, method: str, path: str) -> bool:
        return method == "POST" and _PATH.match(path) is not None

    def decode(self, path: str, headers: Mapping[str, str], body: Any) -> dict[str, Any]:
        match = _PATH.match(path.split("?", 1)[0])
        if not isinstance(body, dict) or not isinstance(body.get("contents"), list):
            raise WireError("body must be a JSON object with a `contents` list")
        system_obj = _get(body, "systemInstruction", "system_instruction")
        system = None
        if system_obj:
            system = "".join(p.get("text", "") for p in system_obj.get("parts", []))
        texts: list[str] = []
        images: list[ReceivedImage] = []
        parts: list[str] = []
        for content in body["contents"]:
            if content.get("role", "user") != "user":
                continue
            for part in content.get("parts", []):
                inline = _get(part, "inlineData", "inline_data")
                if inline is not None:
                    data = inline["data"]
                    if "-" in data or "_" in data:  # tolerate url-safe base64 from some serializers
                        data = data.replace("-", "+").replace("_", "/")
                    images.append(ReceivedImage(_get(inline, "mimeType", "mime_type"), decode_base64(data)))
                    parts.append("image")
                elif "text" in part:
                    texts.append(part["text"])
                    parts.append("text")
                else:
                    raise WireError(f"unsupported part {sorted(part)}")
        config = _get(body, "generationConfig", "generation_config") or {}
        settings = {
            "temperature": config.get("temperature"),
            "max_tokens": _get(config, "maxOutputTokens", "max_output_tokens"),
        }
        for camel, snake in (("topP", "top_p"), ("seed", "seed"), ("thinkingConfig", "thinking")):
            if _get(config, camel, snake) is not None:
                settings[snake] = _get(config, camel, snake)
        if isinstance(settings.get("thinking"), dict):  # the API takes both spellings; keep the camelCase one
            settings["thinking"] = {
                re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): v for k, v in settings["thinking"].items()
            }
        return {
            "model": match.group(2) if match else None,
            "text": "\n".join(texts),
            "system": system,
            "images": tuple(images),
            "parts": tuple(parts),
            "settings": settings,
        }

    def render_answer(self, request: ReceivedRequest, text: str) -> dict[str, Any]:
        spent = self.thinking_tokens(request)
        limit = request.settings.get("max_tokens")
        parts: list[dict[str, Any]] = [{"text": text}]
        finish, answer_tokens = "STOP", self.usage[1]
        if spent and isinstance(limit, int) and limit <= spent:  # thinking ate the whole output budget
            spent, parts, finish, answer_tokens = limit, [], "MAX_TOKENS", 0
        thinking = request.settings.get("thinking") or {}
        if spent and _get(thinking, "includeThoughts", "include_thoughts"):
            parts = [{"text": "**Matching regions** The second mark covers the same object.", "thought": True}, *parts]
        content: dict[str, Any] = {"role": "model"}
        if parts:
            content["parts"] = parts
        usage = {
            "promptTokenCount": self.usage[0],
            "candidatesTokenCount": answer_tokens,
            "totalTokenCount": self.usage[0] + answer_tokens + spent,
        }
        if spent:
            usage["thoughtsTokenCount"] = spent
        return {
            "candidates": [{"content": content, "finishReason": finish, "index": 0}],
            "usageMetadata": usage,
            "modelVersion": self.served_model or request.model,
            "responseId": f"wire{request.index}",
        }

    def render_error(self, status: int, message: str) -> dict[str, Any]:
        return {"error": {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}}
