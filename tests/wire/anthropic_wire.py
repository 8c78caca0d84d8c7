"""Anthropic messages on loopback: POST /v1/messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.wire.server import (
    ReceivedImage,
    ReceivedRequest,
    WireError,
    WireServer,
    decode_base64,
)

_SETTINGS = ("temperature", "max_tokens", "top_p", "top_k", "stop_sequences")
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error"}


class AnthropicWireServer(WireServer):
    provider = "anthropic"

    def route(self, method: str, path: str) -> bool:
        return method == "POST" and path == "/v1/messages"

    def decode(self, path: str, headers: Mapping[str, str], body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            raise WireError("body must be a JSON object with a `messages` list")
        if "max_tokens" not in body:
            raise WireError("max_tokens: Field required")
        system = body.get("system")
        if isinstance(system, list):
            system = "".join(block.get("text", "") for block in system)
        texts: list[str] = []
        images: list[ReceivedImage] = []
        parts: list[str] = []
        for message in body["messages"]:
            if message.get("role") != "user":
                continue
            content = message.get("content")
            if isinstance(content, str):
                texts.append(content)
                parts.append("text")
                continue
            for block in content:
                kind = block.get("type")
                if kind == "text":
                    texts.append(block["text"])
                    parts.append("text")
                elif kind == "image":
                    source = block.get("source", {})
                    if source.get("type") != "base64":
                        raise WireError(f"image source type {source.get('type')!r} not supported here")
                    images.append(ReceivedImage(source["media_type"], decode_base64(source["data"])))
                    parts.append("image")
                else:
                    raise WireError(f"unknown content block type {kind!r}")
        return {"model": body.get("model"), "text": "\n".join(texts), "system": system, "images": tuple(images),
                "parts": tuple(parts), "settings": {k: body[k] for k in _SETTINGS if k in body}}

    def render_answer(self, request: ReceivedRequest, text: str) -> dict[str, Any]:
        return {"id": f"msg_wire{request.index}", "type": "message", "role": "assistant",
                "model": self.served_model or request.model, "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": self.usage[0], "output_tokens": self.usage[1]}}

    def render_error(self, status: int, message: str) -> dict[str, Any]:
        kind = _ERROR_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
