"""OpenAI chat completions on loopback: POST /v1/chat/completions (also what vLLM serves)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from tests.wire.server import (
    ReceivedImage,
    ReceivedRequest,
    WireError,
    WireServer,
    decode_data_url,
)

# token -> logprob for the first answer token, or a function of the request giving them
TopLogprobs = Mapping[str, float] | Callable[[ReceivedRequest], Mapping[str, float]]

_SETTINGS = ("temperature", "max_tokens", "max_completion_tokens", "top_p", "seed", "logprobs", "top_logprobs")


class OpenAIWireServer(WireServer):
    provider = "openai"

    def __init__(self, answer: Any = "A", *, top_logprobs: TopLogprobs | None = None, **kwargs: Any) -> None:
        super().__init__(answer, **kwargs)
        self.top_logprobs = top_logprobs  # None: the server offers no log-probabilities

    def base_url(self) -> str:
        return f"{self.url}/v1"

    def route(self, method: str, path: str) -> bool:
        return method == "POST" and path == "/v1/chat/completions"

    def decode(self, path: str, headers: Mapping[str, str], body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            raise WireError("body must be a JSON object with a `messages` list")
        system: str | None = None
        texts: list[str] = []
        images: list[ReceivedImage] = []
        parts: list[str] = []
        for message in body["messages"]:
            role, content = message.get("role"), message.get("content")
            if role in ("system", "developer"):
                system = content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
                continue
            if role != "user":
                continue
            if isinstance(content, str):
                texts.append(content)
                parts.append("text")
                continue
            for part in content:
                kind = part.get("type")
                if kind == "text":
                    texts.append(part["text"])
                    parts.append("text")
                elif kind == "image_url":
                    mime, data = decode_data_url(part["image_url"]["url"])
                    images.append(ReceivedImage(mime, data, part["image_url"].get("detail")))
                    parts.append("image")
                else:
                    raise WireError(f"unknown content part type {kind!r}")
        return {"model": body.get("model"), "text": "\n".join(texts), "system": system, "images": tuple(images),
                "parts": tuple(parts), "settings": {k: body[k] for k in _SETTINGS if k in body}}

    def render_answer(self, request: ReceivedRequest, text: str) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                                  "finish_reason": "stop", "logprobs": None}
        if request.settings.get("logprobs") and self.top_logprobs is not None:
            top = self.top_logprobs(request) if callable(self.top_logprobs) else self.top_logprobs
            ranked = sorted(top.items(), key=lambda kv: kv[1], reverse=True)
            limit = int(request.settings.get("top_logprobs") or 0)
            ranked = ranked[:limit] if limit else ranked[:1]
            first = ranked[0] if ranked else (text, 0.0)
            choice["message"]["content"] = first[0]
            choice["logprobs"] = {"content": [{
                "token": first[0], "logprob": first[1], "bytes": list(first[0].encode()),
                "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in ranked]}]}
        return {"id": f"chatcmpl-wire{request.index}", "object": "chat.completion", "created": int(time.time()),
                "model": self.served_model or request.model, "choices": [choice],
                "usage": {"prompt_tokens": self.usage[0], "completion_tokens": self.usage[1],
                          "total_tokens": sum(self.usage)}}

    def render_error(self, status: int, message: str) -> dict[str, Any]:
        kind = {400: "invalid_request_error", 401: "invalid_request_error", 429: "rate_limit_exceeded"}.get(
            status, "server_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}
