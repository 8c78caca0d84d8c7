"""Any server speaking the OpenAI chat-completions protocol (`openai-compatible:NAME`), e.g. `vllm serve`.

- One or several endpoints (`--base-url` repeated, or `CVBENCH_VLLM_URL=url1,url2`): each request
  goes to the endpoint with the fewest requests in flight (ties: round-robin); an endpoint that
  fails to connect is skipped for `endpoint_cooldown_s` (default 30 s) unless all are down.
- Option log-probabilities (`GenerationConfig.option_logprobs`): the request asks for one token
  with `logprobs=True, top_logprobs=20`, the text gets an instruction to answer with the letter,
  and the first token's top log-probabilities are mapped to option letters ("A", " A", "A.",
  "(A", ...; per letter the highest) into `Response.option_scores`. A server that returns no
  log-probabilities yields the plain one-token answer and no scores.
- The API key is optional: `CVBENCH_VLLM_API_KEY`, else `OPENAI_API_KEY`, from the environment, else from
  `.env` (the environment always wins), else none.
- Images: base64 data URLs, no `detail` field unless `extra["image_detail"]` is set; JPEG q90 4:4:4
  by default (`--image-format png` for lossless), the contract `image_policy.CONTRACTS["openai-compatible"]`
  (vLLM, SGLang, TGI, llama.cpp and LMDeploy all decode JPEG data URLs; sources there).
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cvbench.core.secrets import find_secret
from cvbench.core.types import Capabilities, ModelInfo, Option, Request, Response
from cvbench.model_adapters.api_options import OptionSpec, read_options
from cvbench.model_adapters.base import AttemptError, malformed, require_installed
from cvbench.model_adapters.openai_api import (
    CHAT_OPTIONS,
    OpenAIChatAdapter,
    chat_body,
    openai_reasoning,
    read_completion,
    sampling_arguments,
)
from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError

URL_ENV = "CVBENCH_VLLM_URL"
# OPENAI_API_KEY is what OpenAI-protocol clients (and vLLM's docs) use; the environment wins over .env
KEY_VARS = ("CVBENCH_VLLM_API_KEY", "OPENAI_API_KEY")
TOP_LOGPROBS = 20
LETTER_INSTRUCTION = "Answer with the option's letter only."

OPTIONS: tuple[OptionSpec, ...] = CHAT_OPTIONS + (
    OptionSpec("endpoint_cooldown_s", "float", "seconds an unreachable endpoint is skipped", minimum=0),
)

_LETTER_TOKEN = re.compile(r"^[\s(\[]*([A-Z])[\s.):\]]*$")


def endpoint_urls(options: ModelOptions, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The endpoints: `ModelOptions.base_urls`, else `CVBENCH_VLLM_URL` (comma-separated)."""
    env = os.environ if environ is None else environ
    urls = [u.strip() for u in options.base_urls if u.strip()]
    if not urls:
        urls = [u.strip() for u in env.get(URL_ENV, "").split(",") if u.strip()]
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ModelResolutionError(
                f"base URL {url!r} must start with http:// or https:// (e.g. http://127.0.0.1:8000/v1)"
            )
    return tuple(dict.fromkeys(urls))


def letter_of_token(token: str) -> str | None:
    """The option letter a single token spells ("A", " A", "A.", "(A", "A)"), else None."""
    match = _LETTER_TOKEN.match(token)
    return match.group(1) if match else None


def option_scores_from_top_logprobs(top: Sequence[tuple[str, float]], options: Sequence[Option]) -> dict[str, float]:
    """Per option letter, the highest log-probability among the tokens that spell it.

    Letters absent from the top list get no score (their log-probability is unknown, below the
    last listed one); a prompt's options outside the top list are simply missing.
    """
    allowed = {o.letter for o in options}
    scores: dict[str, float] = {}
    for token, logprob in top:
        letter = letter_of_token(token)
        if letter is None or letter not in allowed or not math.isfinite(logprob):
            continue
        if letter not in scores or logprob > scores[letter]:
            scores[letter] = float(logprob)
    return scores


@dataclass
class Endpoint:
    url: str
    in_flight: int = 0
    down_until: float = 0.0  # monotonic time before which the endpoint is skipped
    served: int = 0


class EndpointPool:
    """Least-in-flight selection with round-robin ties and a cooldown for unreachable endpoints."""

    def __init__(self, urls: Sequence[str], cooldown_s: float) -> None:
        if not urls:
            raise ValueError("EndpointPool needs at least one URL")
        self.endpoints = [Endpoint(u) for u in urls]
        self.cooldown_s = cooldown_s
        self._next = 0

    def pick(self, now: float | None = None) -> Endpoint:
        current = time.monotonic() if now is None else now
        healthy = [e for e in self.endpoints if e.down_until <= current]
        candidates = healthy or self.endpoints  # all down: try anyway rather than fail unasked
        n = len(self.endpoints)
        order = [self.endpoints[(self._next + i) % n] for i in range(n)]
        best = min((e for e in order if e in candidates), key=lambda e: e.in_flight)
        self._next = (self.endpoints.index(best) + 1) % n
        return best

    def mark_down(self, endpoint: Endpoint, now: float | None = None) -> None:
        endpoint.down_until = (time.monotonic() if now is None else now) + self.cooldown_s

    def mark_up(self, endpoint: Endpoint) -> None:
        endpoint.down_until = 0.0


class OpenAICompatibleAdapter(OpenAIChatAdapter):
    def __init__(
        self,
        info: ModelInfo,
        options: ModelOptions,
        model_name: str,
        urls: Sequence[str],
        api_key: str | None,
        image_detail: str | None,
        opts: Mapping[str, Any] | None = None,
    ) -> None:
        opts = opts if opts is not None else read_options(options.extra, OPTIONS, info.model_id)
        super().__init__(
            info,
            Capabilities(max_images=None, option_logprobs=True, system_prompt=True),
            options,
            model_name,
            base_url=None,
            api_key=api_key,
            image_detail=image_detail,
            max_tokens_field=opts.get("max_tokens_field", "max_tokens"),
            send_temperature=opts.get("send_temperature", True),
            reasoning=openai_reasoning(model_name, opts, default_on=False),
            extra_headers=opts.get("extra_headers"),
        )
        self.pool = EndpointPool(urls, float(opts.get("endpoint_cooldown_s", 30.0)))
        self.retry_refused_before_answer = len(self.pool.endpoints) > 1  # another endpoint may answer

    def provider_settings(self) -> dict[str, Any]:
        settings = super().provider_settings()
        settings["option_logprobs"] = {"top_logprobs": TOP_LOGPROBS, "max_tokens": 1, "instruction": LETTER_INSTRUCTION}
        return settings

    async def _attempt(self, request: Request) -> Response:
        endpoint = self.pool.pick()
        endpoint.in_flight += 1
        try:
            response = await self._call(endpoint.url, request)
        except AttemptError:
            raise
        except Exception as exc:
            if self._map_exception(exc).error.kind == "transport":
                self.pool.mark_down(endpoint)
            raise
        finally:
            endpoint.in_flight -= 1
        self.pool.mark_up(endpoint)
        endpoint.served += 1
        return response

    def request_arguments(self, request: Request) -> dict[str, Any]:
        if not request.config.option_logprobs:
            return super().request_arguments(request)
        args = sampling_arguments(request, self.max_tokens_field, self.send_temperature)
        args[self.max_tokens_field] = 1
        return {"logprobs": True, "top_logprobs": TOP_LOGPROBS, **args}

    def letter_text(self, request: Request) -> str | None:
        """The user text with the letter instruction when scoring options by log-probability."""
        return f"{request.prompt.text}\n{LETTER_INSTRUCTION}" if request.config.option_logprobs else None

    def prepare_body(self, request: Request) -> bytes | None:
        if not self.sends_raw_body():
            return None
        fields = self.request_arguments(request)
        return chat_body(self.model_name, request.prompt, self.image_detail, fields, self.letter_text(request))

    async def _call(self, base_url: str, request: Request) -> Response:
        prompt = request.prompt
        args = self.request_arguments(request)
        completion = await self._chat(base_url, prompt, args, self.letter_text(request), request.body)
        if not request.config.option_logprobs:
            return read_completion(completion, args[self.max_tokens_field])[1]
        choice, response = read_completion(completion)
        logprobs = getattr(choice, "logprobs", None)
        content = getattr(logprobs, "content", None) if logprobs is not None else None
        if not content:
            return response  # the server offers no log-probabilities: the one-token answer stands
        first = content[0]
        top = getattr(first, "top_logprobs", None) or []
        try:
            pairs = [(str(t.token), float(t.logprob)) for t in top]
            if not pairs:
                pairs = [(str(first.token), float(first.logprob))]
        except (AttributeError, TypeError, ValueError) as exc:
            raise malformed(f"unreadable top_logprobs in the response: {exc}") from exc
        return replace(response, option_scores=option_scores_from_top_logprobs(pairs, prompt.options))


def make_adapter(model_name: str, options: ModelOptions) -> OpenAICompatibleAdapter:
    require_installed("openai", "openai", "the OpenAI-compatible adapter")
    urls = endpoint_urls(options)
    if not urls:
        raise ModelResolutionError(
            f"openai-compatible:{model_name} needs a server: pass --base-url http://HOST:PORT/v1 (repeat it for "
            f"several servers) or set {URL_ENV}=url1,url2; start one with `vllm serve {model_name}`"
        )
    opts = read_options(options.extra, OPTIONS, f"openai-compatible:{model_name}")
    secret = find_secret(KEY_VARS)
    detail = opts.get("image_detail")
    info = ModelInfo(
        model_id=f"openai-compatible:{model_name}",
        display_name=str(opts.get("display_name", model_name)),
        access="open",
        params_b=None,
        provider="openai-compatible",
    )
    return OpenAICompatibleAdapter(info, options, model_name, urls, secret.value if secret else None, detail, opts)
