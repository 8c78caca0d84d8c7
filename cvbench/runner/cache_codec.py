"""How a response is stored in the response cache: its JSON form and the cache schema version."""

from __future__ import annotations

import json
from typing import Any

from cvbench.core.types import Response, Usage

CACHE_SCHEMA = 1


def response_to_json(response: Response) -> str:
    extra = {"details": dict(response.details)} if response.details is not None else {}
    return json.dumps(
        {
            **extra,
            "text": response.text,
            "usage": {
                "input_tokens": response.usage.input_tokens,
                "output_tokens": response.usage.output_tokens,
                "cost_usd": response.usage.cost_usd,
            },
            "latency_s": response.latency_s,
            "attempts": response.attempts,
            "option_scores": dict(response.option_scores) if response.option_scores is not None else None,
            "finish_reason": response.finish_reason,
            "served_model": response.served_model,
            "reasoning": response.reasoning,
        },
        sort_keys=True,
    )


def response_from_json(payload: str) -> Response:
    data: dict[str, Any] = json.loads(payload)
    usage = data.get("usage") or {}
    return Response(
        text=data.get("text"),
        usage=Usage(int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0), usage.get("cost_usd")),
        latency_s=float(data.get("latency_s") or 0.0),
        attempts=int(data.get("attempts") or 1),
        option_scores=data.get("option_scores"),
        finish_reason=data.get("finish_reason"),
        served_model=data.get("served_model"),
        details=data.get("details"),
        reasoning=data.get("reasoning"),
    )
