"""Google GenAI (Gemini Developer API) on loopback: POST /{version}/models/{model}:generateContent."""

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
_STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def _get(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    return obj.get(camel, obj.get(snake))


class GoogleWireServer(WireServer):
    provider = "google"

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
        settings = {"temperature": config.get("temperature"),
                    "max_tokens": _get(config, "maxOutputTokens", "max_output_tokens")}
        for camel, snake in (("topP", "top_p"), ("seed", "seed")):
            if _get(config, camel, snake) is not None:
                settings[snake] = _get(config, camel, snake)
        return {"model": match.group(2) if match else None, "text": "\n".join(texts), "system": system,
                "images": tuple(images), "parts": tuple(parts), "settings": settings}

    def render_answer(self, request: ReceivedRequest, text: str) -> dict[str, Any]:
        return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP",
                                "index": 0}],
                "usageMetadata": {"promptTokenCount": self.usage[0], "candidatesTokenCount": self.usage[1],
                                  "totalTokenCount": sum(self.usage)},
                "modelVersion": self.served_model or request.model, "responseId": f"wire{request.index}"}

    def render_error(self, status: int, message: str) -> dict[str, Any]:
        return {"error": {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}}
