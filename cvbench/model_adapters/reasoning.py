"""Which API models reason before answering, and the budget they get for it.

`GenerationConfig.max_tokens` is the *answer* budget. A reasoning model spends output tokens on
reasoning first, from the same allowance, so the adapters send answer + reasoning budget as the
provider's output limit and record both (`settings()["reasoning"]`): reasoning can never eat the
answer's share. A reply that still ends at the limit without answer text is the error
`budget_exhausted`, never a wrong answer.

Contract facts (each checked against the provider's documentation):
- OpenAI reasoning models (o-series, gpt-5 family except the `-chat` variants) refuse
  `temperature`/`top_p`, take `max_completion_tokens` (reasoning tokens count against it) and
  `reasoning_effort`; with too small a limit they return empty content with
  finish_reason "length" (platform.openai.com/docs/guides/reasoning, "Allocating space for
  reasoning": reserve at least 25,000 tokens for reasoning and outputs).
- Anthropic extended thinking: `thinking={"type": "enabled", "budget_tokens": N}` with
  N >= 1024 and N < max_tokens; not compatible with `temperature` or `top_k` changes
  (docs.anthropic.com/en/docs/build-with-claude/extended-thinking).
- Gemini 2.5 thinks by default; `thinking_config.thinking_budget` caps it (2.5 Pro 128..32768,
  cannot be 0; Flash 0..24576) and thinking tokens count against `max_output_tokens`; Gemini 3
  takes `thinking_level` instead (both at once is a 400) (ai.google.dev/gemini-api/docs/thinking).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OPENAI_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
OPENAI_DEFAULT_EFFORT = "medium"
OPENAI_REASONING_TOKENS = 25_000  # the reserve OpenAI's reasoning guide recommends

ANTHROPIC_MIN_THINKING = 1024
ANTHROPIC_DEFAULT_THINKING = 8192

GEMINI_LEVELS = ("minimal", "low", "medium", "high")
GEMINI_DEFAULT_THINKING = 8192  # Gemini 2.5: thinking_budget (within every 2.5 model's range)
GEMINI_25_MAX_THINKING = {"pro": 32768, "flash": 24576}
GEMINI_3_DEFAULT_LEVEL = "high"
GEMINI_3_REASONING_TOKENS = 32_768  # Gemini 3 has no token cap on thinking: reserve this much

# finish reasons that mean "stopped at the output limit", per provider
LENGTH_FINISHES = frozenset({"length", "max_tokens", "MAX_TOKENS"})


@dataclass(frozen=True)
class Reasoning:
    """How one model reasons, as sent and recorded."""

    enabled: bool
    reasoning_tokens: int = 0  # added to the answer budget as the output limit
    effort: str | None = None  # OpenAI reasoning_effort / Gemini 3 thinking_level
    thinking_budget: int | None = None  # Anthropic budget_tokens / Gemini 2.5 thinking_budget

    def as_dict(self) -> dict[str, object]:
        return {
            "enabled": self.enabled,
            "reasoning_tokens": self.reasoning_tokens,
            "effort": self.effort,
            "thinking_budget": self.thinking_budget,
        }

    def output_limit(self, answer_tokens: int) -> int:
        return answer_tokens + self.reasoning_tokens


def _base_name(model: str) -> str:
    return model.rsplit("/", 1)[-1].strip().lower()


def openai_reasons(model: str) -> bool:
    """o1/o3/o4... and the gpt-5 family reason; `gpt-5-chat*` is the non-reasoning chat model."""
    name = _base_name(model)
    return bool(re.match(r"^(o\d+|gpt-5)([.\-]|$)", name)) and "-chat" not in name


def anthropic_can_think(model: str) -> bool:
    """Claude 3.7 Sonnet and Claude 4+ (Opus, Sonnet, Haiku) support extended thinking."""
    name = _base_name(model)
    return bool(re.match(r"^claude-(3-7-sonnet|(opus|sonnet|haiku)-[4-9]|[4-9])", name))


def gemini_generation(model: str) -> str | None:
    """'2.5' or '3' for Gemini models that think, else None."""
    name = _base_name(model)
    if re.match(r"^gemini-2\.5", name):
        return "2.5"
    match = re.match(r"^gemini-(\d+)", name)
    if match and int(match.group(1)) >= 3:
        return "3"
    return None


def gemini_thinking_range(model: str) -> tuple[int, int]:
    name = _base_name(model)
    low = 128 if "-pro" in name else 0
    high = GEMINI_25_MAX_THINKING["pro" if "-pro" in name else "flash"]
    return low, high


def reasoning_summary(target: str, options: dict[str, object] | None = None) -> str:
    """How a `provider:model` (with an alias's options) reasons, for `cvbench models`; "" when it does not."""
    provider, _, model = target.partition(":")
    opts = options or {}
    if provider == "openai" and openai_reasons(model):
        effort = opts.get("reasoning_effort", OPENAI_DEFAULT_EFFORT)
        return f"effort {effort}, +{int(str(opts.get('reasoning_tokens', OPENAI_REASONING_TOKENS)))} tokens"
    if provider == "anthropic" and str(opts.get("thinking", "")).lower() == "true":
        return f"thinking, budget {int(str(opts.get('thinking_budget', ANTHROPIC_DEFAULT_THINKING)))} tokens"
    if provider == "google":
        generation = gemini_generation(model)
        if generation == "2.5":
            return f"thinking, budget {int(str(opts.get('thinking_budget', GEMINI_DEFAULT_THINKING)))} tokens"
        if generation == "3":
            return f"thinking level {opts.get('thinking_level', GEMINI_3_DEFAULT_LEVEL)}, +{GEMINI_3_REASONING_TOKENS}"
    return ""
