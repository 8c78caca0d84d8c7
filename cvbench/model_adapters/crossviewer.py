"""CrossViewer (native region tokens on Qwen3-VL-8B-Instruct): provider `crossviewer`.

Over 500 lines: the input builders follow CrossViewer's own evaluation code step by step (chat
template, mask stacks, token counts, checkpoint checks) so each can be checked against it.

The model code is NOT part of cvbench: the user points `repo_path` at a checkout of
Thinkirin/Crossview-Suite, the adapter adds `<repo_path>/CrossViewer` to `sys.path` and
imports `crossviewer.model.CrossViewerModel` from there. Weights: `checkpoint` (a `.pth`
holding `model_state_dict`, or a DeepSpeed folder) on top of `base_model`.

Per sample the model receives (docs/formats.md §3.1), built by the pure function
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
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from cvbench.core.seeding import derive_seed
from cvbench.core.types import (
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
from cvbench.model_adapters.crossviewer_eval import (
    DEFAULT_MAX_RESIZE_PIXELS,
    PATCH_SIZE,
    RELEASED_Q225W,
    CrossViewerEvalConfig,
    EvalConfigError,
    apply_object_cap,
    load_eval_config,
)
from cvbench.model_adapters.crossviewer_eval import (
    region_token_count as eval_region_token_count,
)
from cvbench.model_adapters.local_common import (
    EXTENDED_LETTER_FORMS,
    BatchResult,
    MicroBatcher,
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
MAX_REGION_TOKENS = 32
DEFAULT_BASE_MODEL = "Qwen/Qwen3-VL-8B-Instruct"
MATCH_MODES = ("greedy", "hungarian", "gt")
KNOWN_OPTIONS = (
    "repo_path",
    "checkpoint",
    "base_model",
    "device",
    "config",
    "allow_incomplete_checkpoint",
    "match_mode",
    "num_object_tokens",
    "num_cross_attn_heads",
    "contrast_dim",
    "region_source",
    "pixelrefer_mode",
    "preprocess_on_gpu",
    "attn_implementation",
    "mask_num",
    "max_objects_per_sample",
    "use_all_views_for_vqa",
    "defer_region_token_expansion",
)


# ---------------------------------------------------------------------------------- pure parts


def region_token_count(
    mask: np.ndarray,
    patch_size: int = PATCH_SIZE,
    max_tokens: int = MAX_REGION_TOKENS,
    max_resize_pixels: int | None = DEFAULT_MAX_RESIZE_PIXELS,
) -> int:
    """How many `<REGION>` tokens an object gets (see `crossviewer_eval.region_token_count`, clamp included)."""
    return eval_region_token_count(
        mask, patch_size=patch_size, max_tokens=max_tokens, max_resize_pixels=max_resize_pixels
    )


def region_tokens(count: int) -> str:
    if count < 0:
        raise ValueError(f"region token count must be >= 0, got {count}")
    return "[" + REGION_TOKEN * count + "]"


def expand_region_placeholders(question: str, counts: Sequence[int]) -> str:
    """Replace the i-th `<region>` with `[<REGION> * counts[i]]`; the numbers must agree exactly."""
    found = question.count(REGION_PLACEHOLDER)
    if found != len(counts):
        raise ValueError(
            f"question has {found} {REGION_PLACEHOLDER} placeholder(s) but {len(counts)} region "
            f"token count(s) were given"
        )
    pieces = question.split(REGION_PLACEHOLDER)
    out = [pieces[0]]
    for count, piece in zip(counts, pieces[1:]):
        out.append(region_tokens(int(count)))
        out.append(piece)
    return "".join(out)


def view_mask_stack(masks: Sequence[np.ndarray], height: int, width: int, pad_to: int) -> np.ndarray:
    """`[pad_to + 1, H, W]` float32: the view's masks, all-zero padding up to `pad_to`, the all-ones
    global mask last."""
    if len(masks) > pad_to:
        raise ValueError(f"view has {len(masks)} masks, more than the padding target {pad_to}")
    stack = np.zeros((pad_to + 1, height, width), dtype=np.float32)
    for k, mask in enumerate(masks):
        if mask.shape != (height, width):
            raise ValueError(f"mask {k} has shape {mask.shape}, the view image is {height}x{width}")
        stack[k] = (np.asarray(mask) > 0).astype(np.float32)
    stack[pad_to] = 1.0
    return stack


def build_crossviewer_batch(
    native: NativeRegions,
    question: str,
    options: Sequence[Option],
    token_counts: Sequence[int] | None = None,
    max_tokens: int = MAX_REGION_TOKENS,
    max_resize_pixels: int | None = DEFAULT_MAX_RESIZE_PIXELS,
) -> dict[str, Any]:
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
            raise ValueError(
                f"view {index} ({view.view_id}): image must be H x W x 3 uint8, got {image.shape} {image.dtype}"
            )
        images.append(image)
        stacks.append(view_mask_stack(view.masks, image.shape[0], image.shape[1], pad_to))
    refs = [_check_ref(native, ref) for ref in native.refs]
    given = token_counts if token_counts is not None else native.token_counts
    if given is not None:
        counts = [int(c) for c in given]
        if len(counts) != len(refs):
            raise ValueError(f"{len(counts)} region token counts for {len(refs)} region refs")
    else:
        counts = [
            region_token_count(native.views[v].masks[o], max_tokens=max_tokens, max_resize_pixels=max_resize_pixels)
            for v, o in refs
        ]
    expanded = expand_region_placeholders(question, counts)
    text = expanded + "\n\n" + option_block(options) if options else expanded
    return {
        "images": images,
        "masks": stacks,
        "region_refs": refs,
        "region_token_counts": counts,
        "question": text,
        "letters": [o.letter for o in options],
    }


def _check_ref(native: NativeRegions, ref: RegionRef) -> tuple[int, int]:
    if not 0 <= ref.view_index < len(native.views):
        raise ValueError(f"region ref {ref} names view {ref.view_index}, the sample has {len(native.views)} views")
    view = native.views[ref.view_index]
    if not 0 <= ref.region_index < len(view.masks):
        raise ValueError(f"region ref {ref} names object {ref.region_index}, view {view.view_id} has {len(view.masks)}")
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
    """CrossViewer loaded in-process from a user-provided checkout and checkpoint, evaluated with the
    settings of an upstream eval config (default: the released q225w_scene_disjoint values)."""

    takes_pixels = True  # in-process: native regions, no encoded images needed

    def __init__(self, options: ModelOptions) -> None:
        extra = dict(options.extra)
        check_known_options(extra, KNOWN_OPTIONS, "crossviewer")
        repo_path = option_str(extra, "repo_path")
        checkpoint = option_str(extra, "checkpoint")
        if not repo_path or not checkpoint:
            raise ModelResolutionError(
                "crossviewer needs repo_path=<checkout of Thinkirin/Crossview-Suite> and checkpoint=<.pth file or "
                "DeepSpeed folder> (and optionally base_model=..., default Qwen/Qwen3-VL-8B-Instruct)"
            )
        self._eval = self._eval_config(extra)
        self._torch = require_module("torch", "local", "The CrossViewer adapter")
        require_module("transformers", "local", "The CrossViewer adapter")
        self._model_class = load_model_class(Path(repo_path))
        self._upstream_counter = load_upstream_counter()
        self._checkpoint = Path(checkpoint).expanduser()
        if not self._checkpoint.exists():
            raise ModelResolutionError(f"crossviewer: checkpoint {self._checkpoint} does not exist")
        self._allow_incomplete = option_bool(extra, "allow_incomplete_checkpoint", False)
        self._base_model = option_str(extra, "base_model", DEFAULT_BASE_MODEL) or DEFAULT_BASE_MODEL
        self._match_mode = self._eval.match_mode
        if self._match_mode not in MATCH_MODES:
            raise ModelResolutionError(
                f"crossviewer: match_mode={self._match_mode!r}, expected one of {', '.join(MATCH_MODES)}"
            )
        if self._match_mode == "gt":
            raise ModelResolutionError(
                "crossviewer: match_mode=gt is an oracle that leaks the answer; cvbench "
                "refuses to report it as a model result"
            )
        self._mask_num = self._eval.mask_num
        self._device = resolve_device(self._torch, option_str(extra, "device", "auto"))
        self._run_seed = options.seed
        cfg = self._eval
        # exactly the keyword arguments scripts/eval_mc.py builds the model with
        self._model_kwargs: dict[str, Any] = {
            "vision_encoder_path": self._base_model,
            "freeze_vision_encoder": cfg.freeze_vision_encoder,
            "freeze_llm": cfg.freeze_llm,
            "num_object_tokens": cfg.num_object_tokens,
            "num_cross_attn_heads": cfg.num_cross_attn_heads,
            "contrast_dim": cfg.contrast_dim,
            "temperature": cfg.temperature,
            "infonce_weight": cfg.info_nce_weight,
            "vqa_weight": cfg.vqa_weight,
            "triplet_weight": cfg.triplet_weight,
            "attn_implementation": cfg.attn_implementation,
            "load_device": None,
            "low_cpu_mem_usage": cfg.low_cpu_mem_usage,
            "match_mode": self._match_mode,
            "region_source": cfg.region_source,
            "pixelrefer_mode": cfg.pixelrefer_mode,
            # upstream refuses preprocess_on_gpu on a CPU device; cvbench runs the CPU path instead (recorded)
            "preprocess_on_gpu": cfg.preprocess_on_gpu and self._device.startswith("cuda"),
            "region_placeholder": cfg.region_placeholder,
            "mask_num": self._mask_num,
            "debug_pixelrefer": False,
            "debug_pixelrefer_max_steps": 0,
            "debug_pixelrefer_max_masks": 0,
            "debug_pixelrefer_every": 1,
            "debug_pixelrefer_per_mask_preprocess": False,
            "debug_match": False,
            "debug_max_steps": 0,
            "debug_nan": False,
            "freeze_pos_encoder": cfg.freeze_pos_encoder,
            "unfreeze_lm_head": cfg.unfreeze_lm_head,
        }
        self._model = self._load()
        model_id = "crossviewer" if self._base_model == DEFAULT_BASE_MODEL else f"crossviewer:{self._base_model}"
        self.info = ModelInfo(
            model_id=model_id, display_name="CrossViewer", access="native", params_b=8.0, provider="crossviewer"
        )
        self.capabilities = Capabilities(
            max_images=None, native_regions=True, option_logprobs=True, system_prompt=False
        )
        self._batcher: MicroBatcher[Request, BatchResult] = MicroBatcher(
            self._run_one_batch, max_batch=1, thread_name="cvbench-crossviewer"
        )

    @staticmethod
    def _eval_config(extra: Mapping[str, Any]) -> CrossViewerEvalConfig:
        path = option_str(extra, "config")
        try:
            cfg = load_eval_config(Path(path).expanduser()) if path else RELEASED_Q225W
        except EvalConfigError as exc:
            raise ModelResolutionError(str(exc)) from exc
        # single settings may still be overridden on the command line; the record shows the result
        overrides: dict[str, Any] = {}
        if "match_mode" in extra:
            overrides["match_mode"] = option_str(extra, "match_mode")
        for key in ("num_object_tokens", "num_cross_attn_heads", "contrast_dim", "mask_num"):
            if key in extra:
                overrides[key] = option_int(extra, key, None)
        if "max_objects_per_sample" in extra:
            overrides["max_objects_per_sample"] = option_int(extra, "max_objects_per_sample", None, minimum=-1)
        for key in ("use_all_views_for_vqa", "defer_region_token_expansion", "preprocess_on_gpu"):
            if key in extra:
                overrides[key] = option_bool(extra, key, False)
        for key in ("region_source", "pixelrefer_mode", "attn_implementation"):
            if key in extra:
                overrides[key] = option_str(extra, key)
        return dataclasses.replace(cfg, **overrides) if overrides else cfg

    def _load(self) -> Any:
        torch = self._torch
        try:
            model = self._model_class(**self._model_kwargs)
            state = load_checkpoint_state(torch, self._checkpoint)
            incompatible = model.load_state_dict(state, strict=False)
        except Exception as exc:
            raise ModelResolutionError(
                f"crossviewer: could not build the model from {self._base_model} and "
                f"{self._checkpoint} ({type(exc).__name__}: {exc})"
            ) from exc
        trainable = {name for name, p in model.named_parameters() if p.requires_grad}
        report = checkpoint_report(
            list(incompatible.missing_keys), list(incompatible.unexpected_keys), trainable, n_checkpoint_keys=len(state)
        )
        self._load_report = report
        if report["refused"] and not self._allow_incomplete:
            raise ModelResolutionError(
                f"crossviewer: checkpoint {self._checkpoint} does not cover the model: "
                f"{report['reason']}; pass allow_incomplete_checkpoint=true to evaluate it "
                "anyway (recorded in the run)"
            )
        return model.to(self._device).eval()

    def settings(self) -> Mapping[str, Any]:
        return {
            "backend": "crossviewer",
            "base_model": self._base_model,
            "checkpoint": str(self._checkpoint.resolve()),
            "checkpoint_bytes": _size_of(self._checkpoint),
            "match_mode": self._match_mode,
            "mask_num": self._mask_num,
            "scoring": "max letter logit",
            "tie_rule": TIE_RULE,
            "letter_forms": list(EXTENDED_LETTER_FORMS),
            "batch_size": 1,
            "eval_config": self._eval.record(),
            "preprocess_on_gpu": self._model_kwargs["preprocess_on_gpu"],
            "token_counts_by": UPSTREAM_COUNTER if self._upstream_counter is not None else "cvbench",
            "checkpoint_load": self._load_report,
            "allow_incomplete_checkpoint": self._allow_incomplete,
            **{
                k: v
                for k, v in self._model_kwargs.items()
                if k in ("num_object_tokens", "region_source", "pixelrefer_mode")
            },
        }

    async def generate(self, request: Request) -> Response:
        started = time.monotonic()
        try:
            result = await self._batcher.submit(request)
        except Exception as exc:
            return error_response(exc, started)
        return Response(
            text=result.text,
            usage=result.usage,
            latency_s=time.monotonic() - started,
            option_scores=result.option_scores,
            finish_reason=result.finish_reason,
            served_model="crossviewer",
            details=result.details,
        )

    async def aclose(self) -> None:
        await self._batcher.aclose()

    def _run_one_batch(self, requests: list[Request]) -> list[BatchResult]:
        return [self._answer(request) for request in requests]

    def _max_resize_pixels(self) -> int:
        processor = getattr(self._model, "processor", None)
        value = getattr(getattr(processor, "image_processor", None), "max_pixels", None)
        return int(value) if value is not None else DEFAULT_MAX_RESIZE_PIXELS

    def _host_counts(self, native: NativeRegions) -> list[int]:
        """Token counts per ref as the model's GPU preprocessing computes them (upstream code when importable)."""
        if self._upstream_counter is not None:
            return upstream_token_counts(
                self._upstream_counter, self._torch, native, self._mask_num, self._max_resize_pixels()
            )
        return [
            region_token_count(
                native.views[r.view_index].masks[r.region_index],
                max_tokens=self._mask_num,
                max_resize_pixels=self._max_resize_pixels(),
            )
            for r in native.refs
        ]

    def _answer(self, request: Request) -> BatchResult:
        prompt = request.prompt
        if prompt.native is None:
            raise ValueError(
                f"CrossViewer needs a native-mode prompt (masks and region refs); got mode {prompt.mode!r}"
            )
        cfg = self._eval
        capped = apply_object_cap(prompt.native, cfg.max_objects_per_sample)
        native = capped.native
        question = question_of(request)
        computed = self._host_counts(native)
        given = list(native.token_counts) if native.token_counts is not None else None
        n_placeholders = question.count(cfg.region_placeholder)
        if cfg.defer_region_token_expansion:
            # the model expands the placeholders itself (its GPU preprocessing counts the tokens)
            batch = build_crossviewer_batch(
                native, question, prompt.options, token_counts=computed, max_tokens=self._mask_num
            )
            text = question + "\n\n" + option_block(prompt.options) if prompt.options else question
            model_counts: list[int] | None = given
        else:
            counts = upstream_fixed_counts(
                given,
                computed if cfg.use_additional_inputs else None,
                n_placeholders,
                cfg.region_token_num or self._mask_num,
            )
            batch = build_crossviewer_batch(
                native, question, prompt.options, token_counts=counts, max_tokens=self._mask_num
            )
            text = batch["question"]
            model_counts = counts
        torch = self._torch
        seed_torch(torch, derive_seed(self._run_seed, prompt.sample_id, "crossviewer"))
        from PIL import Image

        pil_images = [Image.fromarray(im) for im in batch["images"]]
        pixel_values: Any = None
        grid_thw: Any = None
        if cfg.use_processor or not self._model_kwargs["preprocess_on_gpu"]:
            # the model's CPU path expects the Qwen-VL processor's output, as its own dataset produces it
            processed = self._model.processor(text=[""] * len(pil_images), images=pil_images, return_tensors="pt")
            pixel_values, grid_thw = processed["pixel_values"], processed["image_grid_thw"]
        with torch.inference_mode():
            outputs = self._model(
                pixel_values=[pixel_values],
                image_grid_thw=[grid_thw],
                masks=[batch["masks"]],
                raw_images=[pil_images if cfg.return_raw_images else None],
                questions=[text],
                answers=None,
                compute_infonce=[False],
                cutoff_len=cfg.cutoff_len,
                use_all_views_for_vqa=cfg.use_all_views_for_vqa,
                use_all_views_for_infonce=False,
                target_indices=[max(m.shape[0] for m in batch["masks"]) - 1],
                object_ids=[None],
                region_refs=[batch["region_refs"]],
                region_token_counts=[model_counts],
                additional_pixel_values=[None],
                additional_grid_thw=[None],
                additional_masks=[None],
                additional_box_params=[None],
            )
        logits = outputs["answer_logits"][0].float().cpu()
        table = letter_token_ids(self._encode, batch["letters"], EXTENDED_LETTER_FORMS)
        scores = reduce_letter_scores(lambda tid: float(logits[tid]), table)
        expanded = expand_region_placeholders(question, computed)
        n_in = len(self._model.tokenizer.encode(expanded, add_special_tokens=False))
        details = {
            "tie_rule": TIE_RULE,
            "kept_objects": [list(k) for k in capped.kept],
            "objects_capped": capped.changed,
            "region_refs": [list(r) for r in batch["region_refs"]],
            "region_token_counts": computed if model_counts is None else list(model_counts),
            "region_token_counts_source": (
                "sample"
                if given is not None
                else ("model (deferred)" if cfg.defer_region_token_expansion else "upstream default")
            ),
        }
        return BatchResult(
            text=first_best_letter(scores, batch["letters"]),
            option_scores=scores,
            finish_reason="scored",
            usage=Usage(input_tokens=n_in, output_tokens=0),
            details=details,
        )

    def _encode(self, text: str) -> list[int]:
        return list(self._model.tokenizer.encode(text, add_special_tokens=False))


TIE_RULE = "first"  # torch.argmax in eval_mc.py: a tie goes to the first option letter
UPSTREAM_COUNTER = "crossviewer.gpu_preprocess.resize_image_mask_torch"


def first_best_letter(scores: Mapping[str, float], letters: Sequence[str]) -> str | None:
    """The highest-scoring letter; among equal scores the first in option order (as torch.argmax)."""
    best: str | None = None
    for letter in letters:
        if letter in scores and (best is None or scores[letter] > scores[best]):
            best = letter
    return best


def upstream_fixed_counts(
    given: Sequence[int] | None, computed: Sequence[int] | None, n_placeholders: int, default: int
) -> list[int]:
    """Counts as the dataset expands them when expansion is NOT deferred: the sample's own, else the
    computed ones (only with use_additional_inputs), else `default` (region_token_num) for every
    placeholder; padded with `default` or truncated to the number of placeholders."""
    counts = [int(c) for c in (given if given is not None else (computed if computed is not None else []))]
    if not counts:
        counts = [default] * n_placeholders
    return (counts + [default] * n_placeholders)[:n_placeholders]


def checkpoint_report(
    missing: Sequence[str], unexpected: Sequence[str], trainable: set[str], n_checkpoint_keys: int
) -> dict[str, Any]:
    """What `load_state_dict(strict=False)` left out. Refused: a checkpoint that matched no key, or that
    leaves a trainable parameter (one the base weights cannot supply) at its random initialisation."""
    missing_trainable = sorted(k for k in missing if k in trainable)
    matched = n_checkpoint_keys - len(unexpected)
    reason = ""
    if matched <= 0:
        reason = f"none of its {n_checkpoint_keys} keys names a model parameter"
    elif missing_trainable:
        reason = f"{len(missing_trainable)} trained parameter(s) missing, e.g. {', '.join(missing_trainable[:5])}"
    return {
        "missing_keys": len(missing),
        "unexpected_keys": len(unexpected),
        "missing_trainable": len(missing_trainable),
        "missing_examples": sorted(missing)[:10],
        "unexpected_examples": sorted(unexpected)[:10],
        "refused": bool(reason),
        "reason": reason,
    }


def load_upstream_counter() -> Any | None:
    """`crossviewer.gpu_preprocess.resize_image_mask_torch` from the user's checkout, or None."""
    try:
        from crossviewer.gpu_preprocess import resize_image_mask_torch
    except Exception:
        return None
    return resize_image_mask_torch


def upstream_token_counts(
    counter: Any, torch: Any, native: NativeRegions, mask_num: int, max_resize_pixels: int
) -> list[int]:
    """The referenced objects' token counts computed by the model's own preprocessing function."""
    if not native.refs:
        return []
    images = [torch.from_numpy(np.ascontiguousarray(v.image)) for v in native.views]
    masks = [torch.from_numpy(native.views[r.view_index].masks[r.region_index].astype(np.float32)) for r in native.refs]
    _, _, mask_nums, _ = counter(
        images,
        masks,
        [r.view_index for r in native.refs],
        patch_size=PATCH_SIZE,
        max_tokens=mask_num,
        max_resize_pixels=max_resize_pixels,
    )
    return [int(n) for n in mask_nums]


def _size_of(path: Path) -> int:
    """Bytes of a checkpoint file or folder: with the path, tells two checkpoints apart in the cache key."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def load_model_class(repo_path: Path) -> Any:
    """`crossviewer.model.CrossViewerModel` from `<repo_path>/CrossViewer` (never vendored)."""
    root = repo_path.expanduser() / "CrossViewer"
    if not (root / "crossviewer" / "model.py").is_file():
        raise ModelResolutionError(
            f"crossviewer: {root}/crossviewer/model.py not found; repo_path must be a checkout "
            "of https://github.com/Thinkirin/Crossview-Suite"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        from crossviewer.model import CrossViewerModel
    except Exception as exc:
        raise ModelResolutionError(
            f"crossviewer: importing crossviewer.model from {root} failed "
            f"({type(exc).__name__}: {exc}); install its requirements "
            f"(pip install -r {root}/requirements.txt)"
        ) from exc
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
                        return cast("Mapping[str, Any]", obj[key])
            return cast("Mapping[str, Any]", obj)
        try:
            from deepspeed.utils.zero_to_fp32 import (
                get_fp32_state_dict_from_zero_checkpoint,
            )
        except ImportError as exc:
            raise ModelResolutionError(
                f"crossviewer: {path} is a DeepSpeed ZeRO folder; reading it needs pip install deepspeed"
            ) from exc
        return cast("Mapping[str, Any]", get_fp32_state_dict_from_zero_checkpoint(str(path)))
    obj = torch.load(str(path), map_location="cpu", weights_only=False)
    if isinstance(obj, Mapping) and "model_state_dict" in obj:
        return cast("Mapping[str, Any]", obj["model_state_dict"])
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
            raise ModelResolutionError(
                f"crossviewer:{model_name} names the base model, but base_model={given!r} was also given; use one"
            )
        extra["base_model"] = model_name
    adapter = CrossViewerAdapter(dataclasses.replace(options, extra=extra))
    return adapter
