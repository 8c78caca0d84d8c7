"""Anthropic messages on loopback: POST /v1/messages.

Extended-thinking contract (docs.anthropic.com/en/docs/build-with-claude/extended-thinking),
enforced with the API's 400 `invalid_request_error` body shape (docs.anthropic.com/en/api/errors;
the message texts follow the API's wording as users report it, not a verbatim copy):
`thinking.budget_tokens` >= 1024 and < `max_tokens`; no `temperature` other than 1, no `top_k`, `top_p` only in
[0.95, 1]. Thinking spends `thinking_spend` tokens (at most its budget) before the text; a `max_tokens` that leaves no
room ends with only the thinking block and stop_reason "max_tokens".

Image contract (docs.anthropic.com/en/docs/build-with-claude/vision, "Evaluate image size";
docs.anthropic.com/en/api/overview, request size limits), with messages in the API's wording: each
image's base64 data at most 5 MB (5,242,880 bytes), each side at most 8000 px, at most 2000 px
when the request has more than 20 images, at most 100 images, 32 MB per request (413
request_too_large).
"""

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

_SETTINGS = ("temperature", "max_tokens", "top_p", "top_k", "stop_sequences", "thinking")
THINKING_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
MAX_IMAGE_BASE64 = 5 * 1024 * 1024
MAX_REQUEST_BYTES = 32 * 1000 * 1000


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height); (0, 0) for bytes that are not an image (protocol tests send placeholders)."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except UnidentifiedImageError:
        return 0, 0


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


class AnthropicWireServer(WireServer):
    provider = "anthropic"

    def __init__(self, answer: Any = "A", *, thinking_spend: int = 1500, **kwargs: Any) -> None:
        super().__init__(answer, **kwargs)
        self.thinking_spend = thinking_spend

    def invalid(self, message: str) -> tuple[int, dict[str, Any]]:
        return 400, self.render_error(400, message)

    def image_violation(self, request: ReceivedRequest) -> tuple[int, dict[str, Any]] | None:
        images = request.images
        if len(images) > 100:
            return self.invalid(f"messages.0.content: Too many images: {len(images)} > 100")
        side_limit = 2000 if len(images) > 20 else 8000
        total = 0
        for index, image in enumerate(images):
            where = f"messages.0.content.{index}.image.source.base64"
            encoded = 4 * -(-len(image.data) // 3)
            total += encoded
            if encoded > MAX_IMAGE_BASE64:
                return self.invalid(f"{where}: image exceeds 5 MB maximum: {encoded} bytes > {MAX_IMAGE_BASE64} bytes")
            if max(image_size(image.data)) > side_limit:
                many = " for many-image requests" if side_limit == 2000 else ""
                return self.invalid(
                    f"{where}.data: At least one of the image dimensions exceed max allowed "
                    f"size{many}: {side_limit} pixels"
                )
        if total > MAX_REQUEST_BYTES:
            return 413, {
                "type": "error",
                "error": {
                    "type": "request_too_large",
                    "message": "Request exceeds the maximum allowed number of bytes.",
                },
            }
        return None

    def contract_violation(self, request: ReceivedRequest) -> tuple[int, dict[str, Any]] | None:
        body = request.body if isinstance(request.body, dict) else {}
        refused = self.image_violation(request)
        if refused is not None:
            return refused
        thinking = body.get("thinking")
        if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
            return None
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            return self.invalid("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        if int(body.get("max_tokens") or 0) <= budget:
            return self.invalid(
                f"`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
                f"documentation at {THINKING_DOCS}#max-tokens-and-context-window-size"
            )
        if body.get("temperature") is not None and body["temperature"] != 1:
            return self.invalid(
                f"`temperature` may only be set to 1 when thinking is enabled. Please consult our "
                f"documentation at {THINKING_DOCS}#important-considerations-when-using-extended-thinking"
            )
        if body.get("top_k") is not None:
            return self.invalid("`top_k` is not compatible with thinking")
        top_p = body.get("top_p")
        if top_p is not None and not 0.95 <= float(top_p) <= 1:
            return self.invalid("`top_p` must be between 0.95 and 1 when thinking is enabled")
        return None

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
        return {
            "model": body.get("model"),
            "text": "\n".join(texts),
            "system": system,
            "images": tuple(images),
            "parts": tuple(parts),
            "settings": {k: body[k] for k in _SETTINGS if k in body},
        }

    def render_answer(self, request: ReceivedRequest, text: str) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": text}]
        stop, output = "end_turn", self.usage[1]
        thinking = request.settings.get("thinking")
        if isinstance(thinking, dict) and thinking.get("type") == "enabled":
            spent = min(self.thinking_spend, int(thinking["budget_tokens"]))
            thought = {
                "type": "thinking",
                "thinking": "Compare the marked regions; the second matches.",
                "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxNaXNzaW5nIHNpZw==",
            }
            if int(request.settings["max_tokens"]) <= spent:
                content, stop, output = [thought], "max_tokens", int(request.settings["max_tokens"])
            else:
                content, output = [thought, *content], spent + self.usage[1]
        return {
            "id": f"msg_wire{request.index}",
            "type": "message",
            "role": "assistant",
            "model": self.served_model or request.model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": self.usage[0], "output_tokens": output},
        }

    def render_error(self, status: int, message: str) -> dict[str, Any]:
        kind = _ERROR_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
