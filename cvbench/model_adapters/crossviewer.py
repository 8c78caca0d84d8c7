"""CrossViewer (native region tokens on Qwen3-VL-8B-Instruct): provider `crossviewer`.

The model code is NOT part of cvbench: the user points `repo_path` at a checkout of
Thinkirin/Crossview-Suite, the adapter adds `<repo_path>/CrossViewer` to `sys.path` and
imports `crossviewer.model.CrossViewerModel` from there. Weights: `checkpoint` (a `.pth`
holding `model_state_dict`, or a DeepSpeed folder) on top of `base_model`.

Per sample the model receives (docs/upstream-formats.md §3.1), built by the pure function
`build_crossviewer_batch`:
- per view the ORIGINAL image and a `[K+1, H, W]` float32 mask stack: the view's K object
  masks padded with all-zero masks to the largest K of the sample, then one all-ones global mask;
- the question with each `<region>` expanded to `"[" + "<REGION>" * count + "]"`, count = the
  sample's `region_token_counts` when given, else `region_token_count(mask)`;
- the text `question + "\n\n" + options`.
The answer is scored, not generated: at the last question position, per option letter the
max logit over its single-token spellings; prediction = argmax. Batch size 1; torch is seeded
from the run seed and the sample id before every sample (the model's matching uses k-means).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cvbench.harness.seeding import derive_seed
from cvbench.harness.types import (
    REGION_PLACEHOLDER,
    Capabilities,
    ModelInfo,
    NativeRegions,
    Option,
    RegionRef,
    Request,
    Response,
    Usage,
)
from cvbench.model_adapters.local_common import (
    EXTENDED_LETTER_FORMS,
    BatchResult,
    MicroBatcher,
    best_letter,
    bilinear_resize,
    check_known_options,
    error_response,
    letter_token_ids,
    option_block,
    option_bool,
    option_int,
    option_str,
    reduce_letter_scores,
    require_module,
    resolve_device,
    seed_torch,
    split_question,
)
from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError

REGION_TOKEN = "<REGION>"
PATCH_SIZE = 14
MAX_REGION_TOKENS = 32
DEFAULT_BASE_MODEL = "Qwen/Qwen3-VL-8B-Instruct"
MATCH_MODES = ("greedy", "hungarian", "gt")
KNOWN_OPTIONS = ("repo_path", "checkpoint", "base_model", "device", "match_mode", "num_object_tokens",
                 "num_cross_attn_heads", "contrast_dim", "region_source", "pixelrefer_mode", "preprocess_on_gpu",
                 "attn_implementation", "mask_num")


# ---------------------------------------------------------------------------------- pure parts


def region_token_count(mask: np.ndarray, patch_size: int = PATCH_SIZE, max_tokens: int = MAX_REGION_TOKENS) -> int:
    """How many `<REGION>` tokens an object gets: min(max_tokens, its area on a 14-px grid after an adaptive crop).

    The adaptive crop: the mask's bounding box grown by two patches on each side (clipped to the
    image), scaled by `ceil(sqrt(196 * max_tokens / area))` so that small objects are enlarged
    until they could fill `max_tokens` patches (very large ones, over 100 patches of area, are
    shrunk instead), with each side rounded up to a multiple of the patch size. The count is the
    sum of the crop's mask resampled bilinearly onto that patch grid. An empty mask gets 0.
    """
    binary = np.asarray(mask) > 0.5
    if binary.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {binary.shape}")
    h, w = binary.shape
    rows, cols = np.nonzero(binary)
    if rows.size == 0:
        return 0
    area = float(rows.size)
    margin = 2 * patch_size
    top, left = max(0, int(rows.min()) - margin), max(0, int(cols.min()) - margin)
    bottom, right = min(h - 1, int(rows.max()) + margin), min(w - 1, int(cols.max()) + margin)
    crop = binary[top:bottom, left:right].astype(np.float64)
    if crop.size == 0:  # a one-pixel-wide image edge case: keep at least the object's own pixels
        crop = binary[top:bottom + 1, left:right + 1].astype(np.float64)
    crop_h, crop_w = crop.shape
    scale = float(math.ceil(math.sqrt(patch_size * patch_size * max_tokens / max(area, 1.0))))
    patches = area / (patch_size * patch_size)
    if scale == 1 and patches > 100:
        scale = 1.0 / math.sqrt(patches / 100.0)
    grid_h = max(patch_size, math.ceil(crop_h * scale / patch_size) * patch_size) // patch_size
    grid_w = max(patch_size, math.ceil(crop_w * scale / patch_size) * patch_size) // patch_size
    covered = float(bilinear_resize(crop, grid_h, grid_w).sum())
    return min(max_tokens, int(covered))


def region_tokens(count: int) -> str:
    if count < 0:
        raise ValueError(f"region token count must be >= 0, got {count}")
    return "[" + REGION_TOKEN * count + "]"


def expand_region_placeholders(question: str, counts: Sequence[int]) -> str:
    """Replace the i-th `<region>` with `[<REGION> * counts[i]]`; the numbers must agree exactly."""
    found = question.count(REGION_PLACEHOLDER)
    if found != len(counts):
        raise ValueError(f"question has {found} {REGION_PLACEHOLDER} placeholder(s) but {len(counts)} region "
                         f"token count(s) were given")
    pieces = question.split(REGION_PLACEHOLDER)
    out = [pieces[0]]
    for count, piece in zip(counts, pieces[1:]):
        out.append(region_tokens(int(count)))
        out.append(piece)
    return "".join(out)


def view_mask_stack(masks: Sequence[np.ndarray], height: int, width: int, pad_to: int) -> np.ndarray:
    """`[pad_to + 1, H, W]` float32: the view's masks, all-zero padding up to `pad_to`, the all-ones global mask last."""
    if len(masks) > pad_to:
        raise ValueError(f"view has {len(masks)} masks, more than the padding target {pad_to}")
    stack = np.zeros((pad_to + 1, height, width), dtype=np.float32)
    for k, mask in enumerate(masks):
        if mask.shape != (height, width):
            raise ValueError(f"mask {k} has shape {mask.shape}, the view image is {height}x{width}")
        stack[k] = (np.asarray(mask) > 0).astype(np.float32)
    stack[pad_to] = 1.0
    return stack


def build_crossviewer_batch(native: NativeRegions, question: str, options: Sequence[Option],
                            token_counts: Sequence[int] | None = None,
                            max_tokens: int = MAX_REGION_TOKENS) -> dict[str, Any]:
    """The model's per-sample input, as numpy arrays and text.

    Returns {"images": [H x W x 3 uint8 per view], "masks": [[K+1, H, W] float32 per view],
    "region_refs": [(view, object), ...], "region_token_counts": [int per placeholder],
    "question": expanded question + "\\n\\n" + option lines, "letters": [option letters]}.
    `token_counts` (or `native.token_counts`) wins over the computed counts.
    """
    if len(native.views) < 2:
        raise ValueError(f"CrossViewer needs at least 2 views, got {len(native.views)}")
    pad_to = max(len(v.masks) for v in native.views)
    images: list[np.ndarray] = []
    stacks: list[np.ndarray] = []
    for index, view in enumerate(native.views):
        image = np.asarray(view.image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"view {index} ({view.view_id}): image must be H x W x 3 uint8, got "
                             f"{image.shape} {image.dtype}")
        images.append(image)
        stacks.append(view_mask_stack(view.masks, image.shape[0], image.shape[1], pad_to))
    refs = [_check_ref(native, ref) for ref in native.refs]
    given = token_counts if token_counts is not None else native.token_counts
    if given is not None:
        counts = [int(c) for c in given]
        if len(counts) != len(refs):
            raise ValueError(f"{len(counts)} region token counts for {len(refs)} region refs")
    else:
        counts = [region_token_count(native.views[v].masks[o], max_tokens=max_tokens) for v, o in refs]
    expanded = expand_region_placeholders(question, counts)
    text = expanded + "\n\n" + option_block(options) if options else expanded
    return {"images": images, "masks": stacks, "region_refs": refs, "region_token_counts": counts,
            "question": text, "letters": [o.letter for o in options]}


def _check_ref(native: NativeRegions, ref: RegionRef) -> tuple[int, int]:
    if not 0 <= ref.view_index < len(native.views):
        raise ValueError(f"region ref {ref} names view {ref.view_index}, the sample has {len(native.views)} views")
    view = native.views[ref.view_index]
    if not 0 <= ref.region_index < len(view.masks):
        raise ValueError(f"region ref {ref} names object {ref.region_index}, view {view.view_id} has "
                         f"{len(view.masks)}")
    return ref.view_index, ref.region_index


def question_of(request: Request) -> str:
    """The question with its `<region>` placeholders: the prompt text without its trailing option lines."""
    prompt = request.prompt
    question = split_question(prompt.text, prompt.options)
    if question == prompt.text and prompt.options:
        raise ValueError("native prompt text does not end with its option lines; cannot separate the question")
    return question


# ---------------------------------------------------------------------------------- adapter


class CrossViewerAdapter:
    """CrossViewer loaded in-process from a user-provided checkout and checkpoint."""

    def __init__(self, options: ModelOptions) -> None:
        extra = dict(options.extra)
        check_known_options(extra, KNOWN_OPTIONS, "crossviewer")
        repo_path = option_str(extra, "repo_path")
        checkpoint = option_str(extra, "checkpoint")
        if not repo_path or not checkpoint:
            raise ModelResolutionError(
                "crossviewer needs repo_path=<checkout of Thinkirin/Crossview-Suite> and checkpoint=<.pth file or "
                "DeepSpeed folder> (and optionally base_model=..., default Qwen/Qwen3-VL-8B-Instruct)")
        self._torch = require_module("torch", "local", "The CrossViewer adapter")
        require_module("transformers", "local", "The CrossViewer adapter")
        self._model_class = load_model_class(Path(repo_path))
        self._checkpoint = Path(checkpoint).expanduser()
        if not self._checkpoint.exists():
            raise ModelResolutionError(f"crossviewer: checkpoint {self._checkpoint} does not exist")
        self._base_model = option_str(extra, "base_model", DEFAULT_BASE_MODEL) or DEFAULT_BASE_MODEL
        self._match_mode = option_str(extra, "match_mode", "greedy") or "greedy"
        if self._match_mode not in MATCH_MODES:
            raise ModelResolutionError(f"crossviewer: match_mode={self._match_mode!r}, expected one of "
                                       f"{', '.join(MATCH_MODES)}")
        if self._match_mode == "gt":
            raise ModelResolutionError("crossviewer: match_mode=gt is an oracle that leaks the answer; cvbench "
                                       "refuses to report it as a model result")
        self._mask_num = int(option_int(extra, "mask_num", MAX_REGION_TOKENS) or MAX_REGION_TOKENS)
        self._device = resolve_device(self._torch, option_str(extra, "device", "auto"))
        self._run_seed = options.seed
        self._model_kwargs: dict[str, Any] = {
            "vision_encoder_path": self._base_model,
            "freeze_vision_encoder": True,
            "freeze_llm": True,
            "num_object_tokens": int(option_int(extra, "num_object_tokens", 10) or 10),
            "num_cross_attn_heads": int(option_int(extra, "num_cross_attn_heads", 8) or 8),
            "contrast_dim": int(option_int(extra, "contrast_dim", 256) or 256),
            "match_mode": self._match_mode,
            "region_source": option_str(extra, "region_source", "fused"),
            "pixelrefer_mode": option_str(extra, "pixelrefer_mode", "gpu_full"),
            "preprocess_on_gpu": self._device.startswith("cuda") and option_bool(extra, "preprocess_on_gpu", True),
            "region_placeholder": REGION_PLACEHOLDER,
            "mask_num": self._mask_num,
            "attn_implementation": option_str(extra, "attn_implementation"),
        }
        self._model = self._load()
        model_id = "crossviewer" if self._base_model == DEFAULT_BASE_MODEL else f"crossviewer:{self._base_model}"
        self.info = ModelInfo(model_id=model_id, display_name="CrossViewer", access="native", params_b=8.0,
                              provider="crossviewer")
        self.capabilities = Capabilities(max_images=None, native_regions=True, option_logprobs=True,
                                         system_prompt=False)
        self._batcher: MicroBatcher[Request, BatchResult] = MicroBatcher(self._run_one_batch, max_batch=1,
                                                                         thread_name="cvbench-crossviewer")

    def _load(self) -> Any:
        torch = self._torch
        try:
            model = self._model_class(**self._model_kwargs)
            state = load_checkpoint_state(torch, self._checkpoint)
            incompatible = model.load_state_dict(state, strict=False)
        except Exception as exc:
            raise ModelResolutionError(f"crossviewer: could not build the model from {self._base_model} and "
                                       f"{self._checkpoint} ({type(exc).__name__}: {exc})") from exc
        self._load_report = {"missing_keys": len(incompatible.missing_keys),
                             "unexpected_keys": len(incompatible.unexpected_keys)}
        return model.to(self._device).eval()

    def settings(self) -> Mapping[str, Any]:
        return {"backend": "crossviewer", "base_model": self._base_model, "checkpoint": str(self._checkpoint.resolve()),
                "checkpoint_bytes": _size_of(self._checkpoint),
                "match_mode": self._match_mode, "mask_num": self._mask_num, "scoring": "max letter logit",
                "letter_forms": list(EXTENDED_LETTER_FORMS), "batch_size": 1,
                **{k: v for k, v in self._model_kwargs.items()
                   if k in ("num_object_tokens", "region_source", "pixelrefer_mode")}}

    async def generate(self, request: Request) -> Response:
        started = time.monotonic()
        try:
            result = await self._batcher.submit(request)
        except Exception as exc:  # noqa: BLE001 - model failures become error responses
            return error_response(exc, started)
        return Response(text=result.text, usage=result.usage, latency_s=time.monotonic() - started,
                        option_scores=result.option_scores, finish_reason=result.finish_reason,
                        served_model="crossviewer")

    async def aclose(self) -> None:
        await self._batcher.aclose()

    def _run_one_batch(self, requests: list[Request]) -> list[BatchResult]:
        return [self._answer(request) for request in requests]

    def _answer(self, request: Request) -> BatchResult:
        prompt = request.prompt
        if prompt.native is None:
            raise ValueError("CrossViewer needs a native-mode prompt (masks and region refs); got mode "
                             f"{prompt.mode!r}")
        batch = build_crossviewer_batch(prompt.native, question_of(request), prompt.options, max_tokens=self._mask_num)
        torch = self._torch
        seed_torch(torch, derive_seed(self._run_seed, prompt.sample_id, "crossviewer"))
        from PIL import Image

        pil_images = [Image.fromarray(im) for im in batch["images"]]
        pixel_values: Any = None
        grid_thw: Any = None
        if not self._model_kwargs["preprocess_on_gpu"]:
            # the model's CPU path expects the Qwen-VL processor's output, as its own dataset produces it
            processed = self._model.processor(text=[""] * len(pil_images), images=pil_images, return_tensors="pt")
            pixel_values, grid_thw = processed["pixel_values"], processed["image_grid_thw"]
        with torch.inference_mode():
            outputs = self._model(
                pixel_values=[pixel_values], image_grid_thw=[grid_thw], masks=[batch["masks"]],
                raw_images=[pil_images],
                questions=[batch["question"]], answers=None, compute_infonce=[False],
                target_indices=[max(m.shape[0] for m in batch["masks"]) - 1],
                region_refs=[batch["region_refs"]], region_token_counts=[batch["region_token_counts"]])
        logits = outputs["answer_logits"][0].float().cpu()
        table = letter_token_ids(self._encode, batch["letters"], EXTENDED_LETTER_FORMS)
        scores = reduce_letter_scores(lambda tid: float(logits[tid]), table)
        n_in = len(self._model.tokenizer.encode(batch["question"], add_special_tokens=False))
        return BatchResult(text=best_letter(scores), option_scores=scores, finish_reason="scored",
                           usage=Usage(input_tokens=n_in, output_tokens=0))

    def _encode(self, text: str) -> list[int]:
        return list(self._model.tokenizer.encode(text, add_special_tokens=False))


def _size_of(path: Path) -> int:
    """Bytes of a checkpoint file or folder: with the path, tells two checkpoints apart in the cache key."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def load_model_class(repo_path: Path) -> Any:
    """`crossviewer.model.CrossViewerModel` from `<repo_path>/CrossViewer` (never vendored)."""
    root = repo_path.expanduser() / "CrossViewer"
    if not (root / "crossviewer" / "model.py").is_file():
        raise ModelResolutionError(f"crossviewer: {root}/crossviewer/model.py not found; repo_path must be a checkout "
                                   "of https://github.com/Thinkirin/Crossview-Suite")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        from crossviewer.model import CrossViewerModel  # type: ignore[import-not-found]
    except Exception as exc:
        raise ModelResolutionError(f"crossviewer: importing crossviewer.model from {root} failed "
                                   f"({type(exc).__name__}: {exc}); install its requirements "
                                   f"(pip install -r {root}/requirements.txt)") from exc
    return CrossViewerModel


def load_checkpoint_state(torch: Any, path: Path) -> Mapping[str, Any]:
    """The state dict of a `.pth` file (`model_state_dict` inside) or of a DeepSpeed checkpoint folder."""
    if path.is_dir():
        states = path / "mp_rank_00_model_states.pt"
        if states.is_file():
            obj = torch.load(str(states), map_location="cpu", weights_only=False)
            if isinstance(obj, Mapping):
                for key in ("module", "model"):
                    if key in obj:
                        return obj[key]
            return obj
        try:
            from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint  # type: ignore
        except ImportError as exc:
            raise ModelResolutionError(f"crossviewer: {path} is a DeepSpeed ZeRO folder; reading it needs "
                                       "pip install deepspeed") from exc
        return get_fp32_state_dict_from_zero_checkpoint(str(path))
    obj = torch.load(str(path), map_location="cpu", weights_only=False)
    if isinstance(obj, Mapping) and "model_state_dict" in obj:
        return obj["model_state_dict"]
    if isinstance(obj, Mapping):
        return obj
    raise ModelResolutionError(f"crossviewer: {path} holds a {type(obj).__name__}, not a state dict")


def make_adapter(model_name: str, options: ModelOptions) -> CrossViewerAdapter:
    """Factory for the registry: `crossviewer` or `crossviewer:BASE_MODEL` (the Qwen3-VL backbone).

    Options: see KNOWN_OPTIONS and docs/local-models.md (repo_path and checkpoint are required).
    """
    extra = dict(options.extra)
    if model_name:
        given = extra.get("base_model")
        if given is not None and str(given) != model_name:
            raise ModelResolutionError(f"crossviewer:{model_name} names the base model, but base_model={given!r} "
                                       "was also given; use one")
        extra["base_model"] = model_name
    adapter = CrossViewerAdapter(dataclasses.replace(options, extra=extra))
    return adapter
