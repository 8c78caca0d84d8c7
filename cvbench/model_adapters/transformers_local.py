"""In-process Hugging Face transformers backend: `hf:ORG/NAME` (or `hf:/path/to/saved/model`).

One `AutoProcessor` + `AutoModelForImageTextToText` (`AutoModelForVision2Seq` on older
transformers). Each request becomes one chat turn: the prompt's images in order, then its text,
rendered with the processor's chat template. Concurrent `generate` calls are collected into
small batches (left padding) and run in one worker thread, so the event loop stays free.

Two ways to answer:
- generation: greedy when temperature is 0, sampling otherwise; the decoded text is returned;
- option scoring (`GenerationConfig.option_logprobs`): the next-token log-probabilities after the
  chat prompt plus an assistant prefix ("Answer:"); per option letter the max over its
  single-token spellings ("A", " A"); `Response.option_scores` holds them and `text` the best letter.

Model options (`ModelOptions.extra`): see KNOWN_OPTIONS and docs/local-models.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cvbench.core.seeding import derive_seed
from cvbench.core.types import (
    Capabilities,
    GenerationConfig,
    ModelInfo,
    Prompt,
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
    option_int,
    option_str,
    reduce_letter_scores,
    require_module,
    resolve_device,
    resolve_torch_dtype,
    seed_torch,
)
from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError

KNOWN_OPTIONS = (
    "device",
    "dtype",
    "batch_size",
    "max_wait_ms",
    "attn_implementation",
    "trust_remote_code",
    "revision",
    "answer_prefix",
    "local_files_only",
)
DEFAULT_BATCH_SIZE = 4


# ---------------------------------------------------------------------------------- pure parts


def chat_messages(prompt: Prompt) -> list[dict[str, Any]]:
    """The chat for one prompt: optional system turn, then one user turn with the images in order, then the text."""
    messages: list[dict[str, Any]] = []
    if prompt.system:
        messages.append({"role": "system", "content": [{"type": "text", "text": prompt.system}]})
    content: list[dict[str, Any]] = [{"type": "image"} for _ in prompt.images]
    content.append({"type": "text", "text": prompt.text})
    messages.append({"role": "user", "content": content})
    return messages


def generation_kwargs(config: GenerationConfig, pad_token_id: int | None) -> dict[str, Any]:
    """`model.generate` keyword arguments for a GenerationConfig (temperature 0 -> greedy)."""
    kwargs: dict[str, Any] = {"max_new_tokens": int(config.max_tokens), "pad_token_id": pad_token_id}
    if config.temperature and config.temperature > 0:
        kwargs.update(do_sample=True, temperature=float(config.temperature))
        if config.top_p is not None:
            kwargs["top_p"] = float(config.top_p)
    else:
        # unset sampling knobs a model's generation_config may carry, so greedy really is greedy
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    return kwargs


def count_generated(tokens: Sequence[int], eos_ids: set[int]) -> tuple[int, str]:
    """(number of generated tokens up to and including the first end token, finish reason)."""
    for i, token in enumerate(tokens):
        if int(token) in eos_ids:
            return i + 1, "stop"
    return len(tokens), "length"


def _eos_ids(value: Any) -> set[int]:
    if value is None:
        return set()
    if isinstance(value, int):
        return {value}
    return {int(v) for v in value}


# ---------------------------------------------------------------------------------- adapter


class TransformersAdapter:
    """A vision-language model loaded in-process with transformers."""

    takes_pixels = True  # images arrive as pixels (`decode_prompt_image`), not encoded and decoded again

    def __init__(self, model_name: str, options: ModelOptions) -> None:
        extra = dict(options.extra)
        check_known_options(extra, KNOWN_OPTIONS, "hf")
        self._torch = require_module("torch", "local", "The transformers backend (hf:)")
        self._transformers = require_module("transformers", "local", "The transformers backend (hf:)")
        torch, transformers = self._torch, self._transformers

        self.model_name = model_name
        self._device = resolve_device(torch, option_str(extra, "device", "auto"))
        self._dtype = resolve_torch_dtype(torch, option_str(extra, "dtype", "auto"), self._device)
        self._batch_size = int(option_int(extra, "batch_size", DEFAULT_BATCH_SIZE) or DEFAULT_BATCH_SIZE)
        self._max_wait_s = float(option_int(extra, "max_wait_ms", 10, minimum=0) or 0) / 1000.0
        self._answer_prefix = option_str(extra, "answer_prefix", DEFAULT_ANSWER_PREFIX) or ""
        self._revision = option_str(extra, "revision")
        self._run_seed = options.seed
        trust_remote_code = option_bool(extra, "trust_remote_code", False)
        local_files_only = option_bool(extra, "local_files_only", False)
        attn = option_str(extra, "attn_implementation")

        common: dict[str, Any] = {"trust_remote_code": trust_remote_code, "local_files_only": local_files_only}
        if self._revision:
            common["revision"] = self._revision
        try:
            self._processor = transformers.AutoProcessor.from_pretrained(model_name, **common)
        except Exception as exc:
            raise ModelResolutionError(
                f"hf:{model_name}: could not load the processor ({type(exc).__name__}: {exc})"
            ) from exc
        tokenizer = getattr(self._processor, "tokenizer", None)
        if tokenizer is None:
            raise ModelResolutionError(f"hf:{model_name}: the processor has no tokenizer; not a vision-language model?")
        tokenizer.padding_side = "left"  # batched generation continues every row from its last real token
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._tokenizer = tokenizer
        if (
            getattr(self._processor, "chat_template", None) is None
            and getattr(tokenizer, "chat_template", None) is None
        ):
            raise ModelResolutionError(
                f"hf:{model_name}: the processor has no chat template, so cvbench cannot "
                "place several images and the text in one user turn"
            )

        model_cls = getattr(transformers, "AutoModelForImageTextToText", None) or getattr(
            transformers, "AutoModelForVision2Seq", None
        )
        if model_cls is None:
            raise ModelResolutionError(
                "this transformers version has neither AutoModelForImageTextToText nor "
                "AutoModelForVision2Seq; pip install 'cvbench[local]' for a newer one"
            )
        load_kwargs = dict(common)
        load_kwargs[_dtype_keyword(transformers)] = self._dtype
        if attn:
            load_kwargs["attn_implementation"] = attn
        try:
            model = model_cls.from_pretrained(model_name, **load_kwargs)
        except Exception as exc:
            raise ModelResolutionError(
                f"hf:{model_name}: could not load the model ({type(exc).__name__}: {exc})"
            ) from exc
        self._model = model.to(self._device).eval()
        self._eos = _eos_ids(getattr(self._model.generation_config, "eos_token_id", None)) or _eos_ids(
            tokenizer.eos_token_id
        )

        n_params = sum(p.numel() for p in self._model.parameters())
        self.info = ModelInfo(
            model_id=f"hf:{model_name}",
            display_name=model_name.rstrip("/").split("/")[-1],
            access="open",
            params_b=round(n_params / 1e9, 3),
            provider="hf",
        )
        self.capabilities = Capabilities(
            max_images=None, native_regions=False, option_logprobs=True, system_prompt=True
        )
        self._batcher: MicroBatcher[BatchJob, BatchResult] = MicroBatcher(
            self._run_batch, max_batch=self._batch_size, max_wait_s=self._max_wait_s, thread_name="cvbench-hf"
        )

    # -- protocol

    def settings(self) -> Mapping[str, Any]:
        return {
            "backend": "transformers",
            "transformers_version": self._transformers.__version__,
            "revision": self._revision,
            "dtype": str(self._dtype).replace("torch.", ""),
            "device_type": self._device.split(":")[0],
            "batch_size": self._batch_size,
            "answer_prefix": self._answer_prefix,
            "padding_side": "left",
        }

    async def generate(self, request: Request) -> Response:
        scoring = bool(request.config.option_logprobs)
        return await answer_in_batch(
            self._batcher, request, (scoring, bool(request.prompt.images), _config_key(request.config)), self.model_name
        )

    async def aclose(self) -> None:
        await self._batcher.aclose()

    # -- worker thread

    def render_text(self, prompt: Prompt, scoring: bool) -> str:
        text = self._processor.apply_chat_template(chat_messages(prompt), tokenize=False, add_generation_prompt=True)
        return str(text + self._answer_prefix if scoring else text)

    def _inputs(self, jobs: list[BatchJob]) -> Any:
        texts = [self.render_text(job.request.prompt, job.scoring) for job in jobs]
        images = [[decode_prompt_image(im) for im in job.request.prompt.images] for job in jobs]
        kwargs: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt"}
        if any(images):
            kwargs["images"] = images
        return self._processor(**kwargs).to(self._device)

    def _run_batch(self, jobs: list[BatchJob]) -> list[BatchResult]:
        torch = self._torch
        inputs = self._inputs(jobs)
        input_counts = inputs["attention_mask"].sum(dim=1).tolist()
        if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
            inputs["pixel_values"] = inputs["pixel_values"].to(self._dtype)
        with torch.inference_mode():
            if jobs[0].scoring:
                return self._score(jobs, inputs, input_counts)
            return self._generate(jobs, inputs, input_counts)

    def _score(self, jobs: list[BatchJob], inputs: Any, input_counts: list[int]) -> list[BatchResult]:
        torch = self._torch
        try:
            outputs = self._model(**inputs, logits_to_keep=1)
        except TypeError:  # models without `logits_to_keep`
            outputs = self._model(**inputs)
        logprobs = torch.log_softmax(outputs.logits[:, -1, :].float(), dim=-1).cpu()
        results = []
        for row, job in enumerate(jobs):
            letters = [o.letter for o in job.request.prompt.options]
            table = letter_token_ids(self._encode, letters)
            scores = reduce_letter_scores(logprobs[row].tolist().__getitem__, table)
            results.append(
                BatchResult(
                    text=best_letter(scores),
                    option_scores=scores,
                    finish_reason="scored",
                    usage=Usage(input_tokens=int(input_counts[row]), output_tokens=0),
                )
            )
        return results

    def _generate(self, jobs: list[BatchJob], inputs: Any, input_counts: list[int]) -> list[BatchResult]:
        config = jobs[0].request.config
        kwargs = generation_kwargs(config, self._tokenizer.pad_token_id)
        if kwargs["do_sample"]:
            seed_torch(
                self._torch,
                derive_seed(
                    self._run_seed, "hf-sampling", config.seed, *(job.request.prompt.sample_id for job in jobs)
                ),
            )
        output = self._model.generate(**inputs, **kwargs)
        new_tokens = output[:, inputs["input_ids"].shape[1] :].cpu().tolist()
        results = []
        for row, tokens in enumerate(new_tokens):
            n_out, finish = count_generated(tokens, self._eos)
            text = self._tokenizer.decode(tokens[:n_out], skip_special_tokens=True)
            results.append(
                BatchResult(
                    text=text.strip(),
                    finish_reason=finish,
                    usage=Usage(input_tokens=int(input_counts[row]), output_tokens=n_out),
                )
            )
        return results

    def _encode(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=False))


def _config_key(config: GenerationConfig) -> str:
    return repr(sorted(config.as_dict().items()))


def _dtype_keyword(transformers: Any) -> str:
    """transformers >= 4.56 calls it `dtype`; older versions `torch_dtype`."""
    try:
        major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    except ValueError:
        return "dtype"
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def make_adapter(model_name: str, options: ModelOptions) -> TransformersAdapter:
    """Factory for the registry (`hf:ORG/NAME`). Loads the processor and weights now, so a bad
    name, a missing extra or an unloadable model fails at once with a clear message."""
    if not model_name:
        raise ModelResolutionError("hf: needs a model name or a local folder, e.g. hf:Qwen/Qwen2.5-VL-3B-Instruct")
    return TransformersAdapter(model_name, options)
