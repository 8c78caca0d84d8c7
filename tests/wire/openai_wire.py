"""OpenAI chat completions on loopback: POST /v1/chat/completions (also what vLLM serves).

Reasoning-model contract (a model named o1/o3/o4.../gpt-5*, not gpt-5-chat*), enforced with the
API's own 400 bodies (message, type, param and code as the API returns them, e.g. quoted in
github.com/OpenHands/OpenHands/issues/4131 for o1-mini and github.com/QwenLM/qwen-code/issues/921
for gpt-5-mini):
- `temperature` other than 1 and `top_p` are refused (code "unsupported_value");
- `max_tokens` is refused in favour of `max_completion_tokens` (code "unsupported_parameter");
- reasoning spends `reasoning_spend` tokens of `max_completion_tokens` first: with no room left
  the reply is empty content with finish_reason "length" and
  usage.completion_tokens_details.reasoning_tokens = the limit
  (platform.openai.com/docs/guides/reasoning, "Allocating space for reasoning").
"""

from __future__ import annotations

import re
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

_SETTINGS = (
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "top_p",
    "seed",
    "logprobs",
    "top_logprobs",
    "reasoning_effort",
)


def is_reasoning_model(model: str | None) -> bool:
    name = (model or "").rsplit("/", 1)[-1].lower()
    return bool(re.match(r"^(o\d+|gpt-5)([.\-]|$)", name)) and "-chat" not in name


class OpenAIWireServer(WireServer):
    provider = "openai"

    def __init__(
        self, answer: Any = "A", *, top_logprobs: TopLogprobs | None = None, reasoning_spend: int = 600, **kwargs: Any
    ) -> None:
        super().__init__(answer, **kwargs)
        self.top_logprobs = top_logprobs  # None: the server offers no log-probabilities
        self.reasoning_spend = reasoning_spend  # tokens a reasoning model thinks before it answers

    def contract_violation(self, request: ReceivedRequest) -> tuple[int, dict[str, Any]] | None:
        error = self.contract_error(request.body)
        return None if error is None else (400, {"error": error})

    def contract_error(self, body: Any) -> dict[str, Any] | None:
        if not isinstance(body, dict) or not is_reasoning_model(body.get("model")):
            return None
        model = body.get("model")
        if "max_tokens" in body:
            return {
                "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                "'max_completion_tokens' instead.",
                "type": "invalid_request_error",
                "param": "max_tokens",
                "code": "unsupported_parameter",
            }
        temperature = body.get("temperature")
        if temperature is not None and temperature != 1:
            return {
                "message": f"Unsupported value: 'temperature' does not support {float(temperature)!r} with this "
                f"model. Only the default (1) value is supported.",
                "type": "invalid_request_error",
                "param": "temperature",
                "code": "unsupported_value",
            }
        if body.get("top_p") is not None:
            return {
                "message": f"Unsupported parameter: 'top_p' is not supported with this model ({model}).",
                "type": "invalid_request_error",
                "param": "top_p",
                "code": "unsupported_parameter",
            }
        return None

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
        return {
            "model": body.get("model"),
            "text": "\n".join(texts),
            "system": system,
            "images": tuple(images),
            "parts": tuple(parts),
            "settings": {k: body[k] for k in _SETTINGS if k in body},
        }

    def render_answer(self, request: ReceivedRequest, text: str) -> dict[str, Any]:
        reasoning_tokens = 0
        finish = "stop"
        completion_tokens = self.usage[1]
        if is_reasoning_model(request.model):
            limit = int(request.settings.get("max_completion_tokens") or 10**9)
            reasoning_tokens = min(self.reasoning_spend, limit)
            if limit <= self.reasoning_spend:  # the budget went to reasoning: no visible answer
                text, finish = "", "length"
                completion_tokens = limit
            else:
                completion_tokens = reasoning_tokens + self.usage[1]
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": None},
            "finish_reason": finish,
            "logprobs": None,
        }
        if request.settings.get("logprobs") and self.top_logprobs is not None:
            top = self.top_logprobs(request) if callable(self.top_logprobs) else self.top_logprobs
            ranked = sorted(top.items(), key=lambda kv: kv[1], reverse=True)
            limit = int(request.settings.get("top_logprobs") or 0)
            ranked = ranked[:limit] if limit else ranked[:1]
            first = ranked[0] if ranked else (text, 0.0)
            choice["message"]["content"] = first[0]
            choice["logprobs"] = {
                "content": [
                    {
                        "token": first[0],
                        "logprob": first[1],
                        "bytes": list(first[0].encode()),
                        "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in ranked],
                    }
                ]
            }
        return {
            "id": f"chatcmpl-wire{request.index}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.served_model or request.model,
            "choices": [choice],
            "usage": {
                "prompt_tokens": self.usage[0],
                "completion_tokens": completion_tokens,
                "total_tokens": self.usage[0] + completion_tokens,
                "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
            },
        }

    def render_error(self, status: int, message: str) -> dict[str, Any]:
        kind = {400: "invalid_request_error", 401: "invalid_request_error", 429: "rate_limit_exceeded"}.get(
            status, "server_error"
        )
        return {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}
