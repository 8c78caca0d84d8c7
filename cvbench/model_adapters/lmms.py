"""`lmms:<model_name>`: run a model that lmms-eval wraps, inside cvbench.

The lmms-eval model class registered under `<model_name>` (`dummy`, `openai`, `qwen2_5_vl`,
`llava_onevision`, ...) is instantiated with its model_args: the `ModelOptions.extra` entries
that are not this adapter's own options, plus any given in the model string the way
lmms-eval's `--model_args` takes them::

    lmms:qwen2_5_vl,pretrained=Qwen/Qwen2.5-VL-7B-Instruct,max_pixels=1605632
    lmms:openai,model_version=gpt-4o-mini,base_url=http://127.0.0.1:8000/v1

Each cvbench request becomes one lmms-eval `Instance` for `generate_until`: the prompt's
images as PIL images (exactly the pixels cvbench renders), then its text, and generation
kwargs `max_new_tokens`, `temperature` (`do_sample` only above 0) and no stop strings.
"Simple" models receive `(text, gen_kwargs, doc_to_visual, doc_id, task, split)`; chat models
`(text, doc_to_messages, gen_kwargs, doc_id, task, split)` with one user turn of images then
text. Concurrent requests are collected into batches (`lmms_batch`) and handed to the model
from one worker thread. lmms-eval's failure placeholders (`[LMMS_EVAL_REQUEST_FAILED ...]`)
and exceptions become errors, never answers.

Adapter options (not passed to the model): `max_images` (default: any; 1 stacks the views),
`lmms_batch` (requests per generate_until call, default 8), `max_wait_ms` (default 20),
`display_name`. Needs `pip install 'cvbench[lmms]'`.
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cvbench.core.redaction import is_secret_key
from cvbench.core.types import (
    Capabilities,
    ErrorKind,
    ModelError,
    ModelInfo,
    PromptImage,
    Request,
    Response,
    Usage,
)
from cvbench.model_adapters.local_common import (
    MicroBatcher,
    error_response,
    option_int,
    require_module,
)
from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError

ADAPTER_OPTIONS: tuple[str, ...] = ("max_images", "lmms_batch", "max_wait_ms", "display_name")
RUNNER_OPTIONS: tuple[str, ...] = ("retry_base_delay_s", "retry_max_delay_s")  # cvbench's API retry knobs, unused here
TASK_NAME = "cvbench"
SPLIT = "test"


# lmms-eval answers a failed request with a placeholder text instead of raising
FAILURE_PREFIXES: tuple[str, ...] = ("[LMMS_EVAL_REQUEST_FAILED", "[LMMS_EVAL_BUDGET_EXCEEDED")


def response_from_text(text: str | None) -> Response:
    """lmms-eval's answer as a cvbench Response; its failure placeholders become errors."""
    if text is not None and text.lstrip().startswith(FAILURE_PREFIXES):
        kind: ErrorKind = "budget" if "BUDGET" in text[:40] else "transport"
        return Response(text=None, error=ModelError(kind, f"lmms-eval: {text.strip()[:300]}"))
    return Response(text=text)


def pil_images(images: Sequence[PromptImage]) -> list[Any]:
    """The prompt's images as fully loaded PIL images (exactly the pixels of the encoded bytes)."""
    from PIL import Image

    out = []
    for image in images:
        pil = Image.open(io.BytesIO(image.data))
        pil.load()
        out.append(pil if pil.mode == "RGB" else pil.convert("RGB"))
    return out


def split_model_string(model_name: str) -> tuple[str, str]:
    """'qwen2_5_vl,pretrained=X,max_pixels=9' -> ('qwen2_5_vl', 'pretrained=X,max_pixels=9')."""
    name, _, args = model_name.partition(",")
    return name.strip(), args.strip()


def redacted_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """model_args for config.json and the cache key: secret-looking values replaced by '***'."""
    return {k: ("***" if is_secret_key(k) else v) for k, v in sorted(args.items())}


def generation_kwargs(max_tokens: int, temperature: float, top_p: float | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "max_new_tokens": int(max_tokens),
        "temperature": float(temperature),
        "do_sample": temperature > 0,
        "until": [],
    }
    if top_p is not None:
        kwargs["top_p"] = float(top_p)
    return kwargs


def messages_for(images: Sequence[Any], text: str, system: str | None) -> list[dict[str, Any]]:
    """lmms-eval chat messages: an optional system turn, then the images in order and the text."""
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
    content: list[dict[str, Any]] = [{"type": "image", "url": image} for image in images]
    content.append({"type": "text", "text": text})
    messages.append({"role": "user", "content": content})
    return messages


def _doc_to_visual(doc: Mapping[str, Any]) -> list[Any]:
    return list(doc["images"])


def _doc_to_messages(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    return messages_for(doc["images"], doc["text"], doc["system"])


@dataclass(frozen=True)
class _Item:
    request: Request
    gen_kwargs: dict[str, Any]


class LmmsAdapter:
    """A cvbench ModelAdapter over one lmms-eval model instance."""

    def __init__(self, model_name: str, options: ModelOptions) -> None:
        name, arg_string = split_model_string(model_name)
        if not name:
            raise ModelResolutionError("lmms: name the lmms-eval model, e.g. lmms:qwen2_5_vl,pretrained=ORG/NAME")
        models = require_module("lmms_eval.models", "lmms", "the lmms: adapter")
        lmms_utils = require_module("lmms_eval.utils", "lmms", "the lmms: adapter")
        self._instance_cls = require_module("lmms_eval.api.instance", "lmms", "the lmms: adapter").Instance
        extra = dict(options.extra)
        model_args = {k: v for k, v in extra.items() if k not in ADAPTER_OPTIONS and k not in RUNNER_OPTIONS}
        from_string = lmms_utils.simple_parse_args_string(arg_string) if arg_string else {}
        clash = sorted(set(model_args) & set(from_string))
        if clash:
            raise ModelResolutionError(
                f"lmms:{name}: model_args given twice (model string and options): {', '.join(clash)}"
            )
        model_args.update(from_string)
        try:
            cls = models.get_model(name)
        except Exception as exc:  # lmms-eval raises ValueError/ImportError/TypeError for unknown or broken models
            raise ModelResolutionError(
                f"lmms:{name}: lmms-eval has no usable model {name!r} ({type(exc).__name__}: "
                f"{exc}); list them with: python -c 'import lmms_eval.models as m; "
                f"print(m.list_available_models())'"
            ) from exc
        try:
            self._model = cls(**model_args)
        except Exception as exc:
            raise ModelResolutionError(
                f"lmms:{name}: cannot create the lmms-eval model with model_args "
                f"{redacted_args(model_args)} ({type(exc).__name__}: {exc})"
            ) from exc
        self._name = name
        self._model_args = model_args
        self._simple = bool(getattr(cls, "is_simple", True))
        self._class_path = f"{cls.__module__}.{cls.__qualname__}"
        self._unwrap = getattr(
            require_module("lmms_eval.api.instance", "lmms", "the lmms: adapter"), "unwrap_generation_output", None
        )
        try:
            from importlib.metadata import version

            self._lmms_version = version("lmms_eval")
        except Exception:
            self._lmms_version = "unknown"
        max_images = option_int(extra, "max_images", None)
        self.capabilities = Capabilities(
            max_images=max_images, native_regions=False, option_logprobs=False, system_prompt=not self._simple
        )
        weights = next((str(model_args[k]) for k in ("pretrained", "model_version", "model") if k in model_args), None)
        display = str(extra.get("display_name") or (f"{name} ({weights})" if weights else name))
        self.info = ModelInfo(
            model_id=f"lmms:{name}" + (f"/{weights}" if weights else ""),
            display_name=display,
            access="open",
            provider="lmms",
        )
        self._batcher: MicroBatcher[_Item, Response] = MicroBatcher(
            self._run_batch,
            max_batch=int(option_int(extra, "lmms_batch", 8) or 8),
            max_wait_s=float(option_int(extra, "max_wait_ms", 20, minimum=0) or 0) / 1000.0,
            thread_name="cvbench-lmms",
        )

    def settings(self) -> Mapping[str, Any]:
        return {
            "lmms_model": self._name,
            "model_class": self._class_path,
            "model_args": redacted_args(self._model_args),
            "lmms_eval_version": self._lmms_version,
            "max_images": self.capabilities.max_images,
        }

    async def generate(self, request: Request) -> Response:
        if request.prompt.native is not None:
            return Response(
                text=None,
                error=ModelError(
                    "invalid_request",
                    "lmms-eval models take images and text, not native region inputs; use mode overlay",
                ),
            )
        c = request.config
        item = _Item(request, generation_kwargs(c.max_tokens, c.temperature, c.top_p))
        key = tuple(sorted((k, str(v)) for k, v in item.gen_kwargs.items()))
        started = time.monotonic()
        try:
            response = await self._batcher.submit(item, key=key)
        except Exception as exc:
            return error_response(exc, started)
        return response

    def _run_batch(self, items: list[_Item]) -> list[Response]:
        started = time.monotonic()
        docs: dict[int, dict[str, Any]] = {}
        instances = []
        for doc_id, item in enumerate(items):
            prompt = item.request.prompt
            docs[doc_id] = {"images": pil_images(prompt.images), "text": prompt.text, "system": prompt.system}
            if self._simple:
                args: tuple[Any, ...] = (prompt.text, dict(item.gen_kwargs), _doc_to_visual, doc_id, TASK_NAME, SPLIT)
            else:
                args = (prompt.text, _doc_to_messages, dict(item.gen_kwargs), doc_id, TASK_NAME, SPLIT)
            instances.append(
                self._instance_cls(
                    request_type="generate_until",
                    arguments=args,
                    idx=0,
                    metadata={"task": TASK_NAME, "doc_id": doc_id, "repeats": 1},
                )
            )
        self._model.task_dict = {TASK_NAME: {SPLIT: docs}}
        outputs = self._model.generate_until(instances)
        if len(outputs) != len(items):
            raise RuntimeError(f"lmms-eval model returned {len(outputs)} outputs for {len(items)} requests")
        latency = (time.monotonic() - started) / max(1, len(items))
        return [self._response(output, latency) for output in outputs]

    def _response(self, output: Any, latency: float) -> Response:
        counts = None
        if self._unwrap is not None:
            output, counts = self._unwrap(output)
        if isinstance(output, list):  # a multi-round backend: the last round answers
            output = output[-1] if output else ""
        response = response_from_text(None if output is None else str(output))
        usage = Usage(
            input_tokens=int(getattr(counts, "input_tokens", 0) or 0),
            output_tokens=int(getattr(counts, "output_tokens", 0) or 0),
        )
        return Response(
            text=response.text, error=response.error, usage=usage, latency_s=latency, served_model=self._name
        )

    async def aclose(self) -> None:
        await self._batcher.aclose()


def make_adapter(model_name: str, options: ModelOptions) -> LmmsAdapter:
    """Factory for the registry: `lmms:<lmms-eval model>[,model_arg=value,...]`."""
    return LmmsAdapter(model_name, options)
