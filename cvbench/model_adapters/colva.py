"""CoLVA (InternVL2-4B + RADIO object-level vision expert): provider `colva`.

Weights and modelling code come from the Hugging Face repo `zhouyik/colva_internvl2_4b` (MIT),
loaded with `AutoModel.from_pretrained(..., trust_remote_code=True)`; cvbench vendors none of it.
Per MMVM sample (docs/formats.md §3.2) the pure function `build_colva_inputs` makes:

- `pixel_values`: the OVERLAY images the prompt builder rendered (`Prompt.images`: query view
  with the cyan contour, candidate view with contours and numeric tags), each cut into InternVL
  dynamic 448-px tiles (aspect-ratio grid of at most 12 tiles as the public demo's
  `load_image(..., max_num=12)`, option `max_tiles`; plus a thumbnail when there is more than one
  tile), ImageNet mean/std normalisation; `num_patches_list` the tiles per image;
- `ot_pixel_values`: the ORIGINAL images (`Prompt.native`), long side resized to 1024 and
  placed top-left on a white 1024x1024 canvas, scaled to [0, 1] (see RADIO_* below);
- `ot_visual_prompts`: per image an `[n_objects, 1024, 1024]` mask stack, each mask zero-padded
  (bottom/right) to a square and resized bilinearly to 1024x1024 (the same geometry as the image);
- the question: `"Image-1: <image>\\nImage-2: <image>\\n"`, one `"Objects in Image-k: <query
  object><VPT_CONTEXT>\\n"` line per query image, `"Objects in Image-N: <object-i><VPT_CONTEXT>,
  ...\\n"` with ids ascending, then the MMVM question with its options. Candidate masks are
  passed in that same ascending-id order (`NativeRegions.candidate_order`).

The object list holds EVERY candidate drawn on the candidate image, also when there are more
than 25 and only 25 ids become options (the MMVM protocol picks them as upstream: the first 25
of a seeded shuffle of the ids, sorted): each tag visible in the image then has its visual
prompt, as in the upstream demo, and the answer for an id outside the options is "None of the
above".

CoLVA's remote code moves its visual prompts to "cuda" and runs under a CUDA autocast, so on
a CPU it loads and then fails every sample: the adapter refuses a CPU device before loading
(`allow_cpu=true` lets a stand-in model run on a CPU, as the tests do).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cvbench.core.types import (
    Capabilities,
    ModelInfo,
    NativeRegions,
    Prompt,
    Request,
    Response,
    Usage,
)
from cvbench.model_adapters.local_common import (
    BatchResult,
    MicroBatcher,
    bilinear_resize,
    check_known_options,
    decode_prompt_image,
    error_response,
    option_bool,
    option_int,
    option_str,
    require_module,
    resolve_device,
    resolve_torch_dtype,
)
from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError

DEFAULT_CHECKPOINT = "zhouyik/colva_internvl2_4b"
TILE_SIZE = 448
MAX_TILES = 12  # the public demo's load_image(..., max_num=12); the training config used 6
CPU_REFUSAL = (
    "CoLVA's remote code (modeling_internvl_chat.py) moves its visual prompts to 'cuda' and runs "
    "under torch.autocast(device_type='cuda'), so on a CPU every sample would fail after loading"
)
# InternVL normalises its tiles with the ImageNet statistics (torchvision's constants).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RADIO_CANVAS = 1024
# RADIO's CLIPImageProcessor (nvidia/RADIO preprocessor_config.json) only rescales to [0, 1]
# (do_resize and do_normalize off); the RADIO model applies the CLIP mean/std itself in its
# input conditioner. `ot_normalize=clip` applies these OpenAI-CLIP constants here instead.
RADIO_RESCALE = 1.0 / 255.0
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
VPT_CONTEXT = "<VPT_CONTEXT>"
KNOWN_OPTIONS = (
    "checkpoint",
    "device",
    "dtype",
    "max_tiles",
    "ot_normalize",
    "local_files_only",
    "revision",
    "use_flash_attn",
    "allow_cpu",
)


# ---------------------------------------------------------------------------------- InternVL tiling


def tile_grid(
    width: int, height: int, max_tiles: int = MAX_TILES, min_tiles: int = 1, tile_size: int = TILE_SIZE
) -> tuple[int, int]:
    """(columns, rows) of the tile grid whose aspect ratio is closest to the image's.

    Grids with min_tiles <= columns*rows <= max_tiles are tried from fewest tiles up; an equally
    close grid with more tiles wins only if the image has more than half its pixel count.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    aspect = width / height
    grids = sorted(
        {(c, r) for c in range(1, max_tiles + 1) for r in range(1, max_tiles + 1) if min_tiles <= c * r <= max_tiles},
        key=lambda g: (g[0] * g[1], g),
    )
    best, best_diff = (1, 1), float("inf")
    for cols, rows in grids:
        diff = abs(aspect - cols / rows)
        if diff < best_diff:
            best, best_diff = (cols, rows), diff
        elif diff == best_diff and width * height > 0.5 * tile_size * tile_size * cols * rows:
            best = (cols, rows)
    return best


def dynamic_tiles(image: Any, max_tiles: int = MAX_TILES, tile_size: int = TILE_SIZE) -> list[Any]:
    """The image resized to its tile grid and cut into tiles row by row, plus a thumbnail when tiles > 1."""
    from PIL import Image

    cols, rows = tile_grid(image.width, image.height, max_tiles=max_tiles, tile_size=tile_size)
    resized = image.resize((cols * tile_size, rows * tile_size), Image.Resampling.BICUBIC)
    tiles = [
        resized.crop((c * tile_size, r * tile_size, (c + 1) * tile_size, (r + 1) * tile_size))
        for r in range(rows)
        for c in range(cols)
    ]
    if len(tiles) > 1:
        tiles.append(image.resize((tile_size, tile_size), Image.Resampling.BICUBIC))
    return tiles


def normalise(pixels: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """H x W x 3 uint8 -> 3 x H x W float32, scaled to [0, 1] then (x - mean) / std per channel."""
    x: np.ndarray = pixels.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def tile_pixel_values(image: Any, max_tiles: int = MAX_TILES) -> np.ndarray:
    """[n_tiles, 3, 448, 448] float32 for one overlay image."""
    return np.stack(
        [
            normalise(np.asarray(t.convert("RGB")), IMAGENET_MEAN, IMAGENET_STD)
            for t in dynamic_tiles(image, max_tiles=max_tiles)
        ]
    )


# ---------------------------------------------------------------------------------- RADIO inputs


def radio_size(height: int, width: int, canvas: int = RADIO_CANVAS) -> tuple[int, int]:
    """(height, width) after resizing the long side to `canvas` (the short side truncated, as upstream)."""
    if width > height:
        return int(height / width * canvas), canvas
    return canvas, int(width / height * canvas)


def radio_canvas(image: np.ndarray, canvas: int = RADIO_CANVAS) -> np.ndarray:
    """The original image, long side `canvas`, top-left on a white `canvas` x `canvas` uint8 RGB image."""
    from PIL import Image

    h, w = image.shape[:2]
    new_h, new_w = radio_size(h, w, canvas)
    resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BICUBIC))
    out = np.full((canvas, canvas, 3), 255, dtype=np.uint8)
    out[:new_h, :new_w] = resized
    return out


def radio_pixel_values(image: np.ndarray, normalize: str = "rescale", canvas: int = RADIO_CANVAS) -> np.ndarray:
    """[3, canvas, canvas] float32 for the RADIO expert."""
    padded: np.ndarray = radio_canvas(image, canvas).astype(np.float32) * RADIO_RESCALE
    if normalize == "clip":
        padded = (padded - np.asarray(CLIP_MEAN, np.float32)) / np.asarray(CLIP_STD, np.float32)
    elif normalize != "rescale":
        raise ValueError(f"ot_normalize must be 'rescale' or 'clip', got {normalize!r}")
    return np.ascontiguousarray(padded.transpose(2, 0, 1))


def visual_prompt_stack(masks: Sequence[np.ndarray], canvas: int = RADIO_CANVAS) -> np.ndarray:
    """[n, canvas, canvas] float32: each mask zero-padded bottom/right to a square, then resized bilinearly."""
    if not masks:
        raise ValueError("an image needs at least one object mask")
    h, w = masks[0].shape
    side = max(h, w)
    out = np.empty((len(masks), canvas, canvas), dtype=np.float32)
    for k, mask in enumerate(masks):
        if mask.shape != (h, w):
            raise ValueError(f"mask {k} has shape {mask.shape}, expected {(h, w)}")
        square = np.zeros((side, side), dtype=np.float32)
        square[:h, :w] = np.asarray(mask, dtype=np.float32)
        out[k] = bilinear_resize(square, canvas, canvas, dtype=np.float32)
    return out


# ---------------------------------------------------------------------------------- prompt


def colva_question(n_query_images: int, candidate_ids: Sequence[str], question: str) -> str:
    """The CoLVA prompt: image lines, object lines (candidate ids as given: ascending), then the question."""
    if n_query_images < 1 or not candidate_ids:
        raise ValueError("CoLVA needs at least one query image and one candidate object")
    n_images = n_query_images + 1
    lines = "".join(f"Image-{k}: <image>\n" for k in range(1, n_images + 1))
    lines += "".join(f"Objects in Image-{k}: <query object>{VPT_CONTEXT}\n" for k in range(1, n_images))
    lines += f"Objects in Image-{n_images}: " + ", ".join(f"<object-{i}>{VPT_CONTEXT}" for i in candidate_ids) + ".\n"
    return lines + question


def build_colva_inputs(prompt: Prompt, max_tiles: int = MAX_TILES, ot_normalize: str = "rescale") -> dict[str, Any]:
    """Everything `model.chat` takes for one MMVM prompt, as numpy arrays and text.

    Returns {"pixel_values": [sum tiles, 3, 448, 448], "num_patches_list": [tiles per image],
    "ot_pixel_values": [n_images, 3, 1024, 1024], "ot_visual_prompts": [[n_objects, 1024, 1024] per image],
    "question": str, "candidate_ids": [ids ascending]}.
    """
    native = prompt.native
    if native is None:
        raise ValueError("CoLVA needs a native-mode prompt (original images and masks in Prompt.native)")
    _check_native(native)
    if len(prompt.images) != len(native.views):
        raise ValueError(
            f"CoLVA needs one overlay image per view: {len(prompt.images)} overlay image(s) for "
            f"{len(native.views)} views (the prompt must carry the rendered overlays in Prompt.images)"
        )
    tiles = [tile_pixel_values(decode_prompt_image(image), max_tiles) for image in prompt.images]
    query_views, cand_view = native.views[:-1], native.views[-1]
    order = list(native.candidate_order)
    candidate_ids = [cand_view.region_ids[i] for i in order]
    visual_prompts = [visual_prompt_stack([view.masks[0]]) for view in query_views]
    visual_prompts.append(visual_prompt_stack([cand_view.masks[i] for i in order]))
    return {
        "pixel_values": np.concatenate(tiles, axis=0),
        "num_patches_list": [t.shape[0] for t in tiles],
        "ot_pixel_values": np.stack([radio_pixel_values(np.asarray(v.image), ot_normalize) for v in native.views]),
        "ot_visual_prompts": visual_prompts,
        "question": colva_question(len(query_views), candidate_ids, prompt.text),
        "candidate_ids": candidate_ids,
    }


def _check_native(native: NativeRegions) -> None:
    if len(native.views) < 2:
        raise ValueError(f"CoLVA needs a query view and a candidate view, got {len(native.views)} view(s)")
    if native.query is not None and (native.query.view_index, native.query.region_index) != (0, 0):
        raise ValueError(f"CoLVA expects the query object as views[0].masks[0], got {native.query}")
    for view in native.views[:-1]:
        if len(view.masks) < 1:
            raise ValueError(f"query view {view.view_id} has no query mask")
    cand = native.views[-1]
    if sorted(native.candidate_order) != list(range(len(cand.masks))):
        raise ValueError(
            f"candidate_order {native.candidate_order} is not a permutation of the {len(cand.masks)} candidate masks"
        )


# ---------------------------------------------------------------------------------- adapter


class ColvaAdapter:
    """CoLVA loaded in-process with transformers' remote code."""

    takes_pixels = True  # the overlay images arrive as pixels (`decode_prompt_image`)

    def __init__(self, options: ModelOptions) -> None:
        extra = dict(options.extra)
        check_known_options(extra, KNOWN_OPTIONS, "colva")
        self._torch = require_module("torch", "local", "The CoLVA adapter")
        transformers = require_module("transformers", "local", "The CoLVA adapter")
        torch = self._torch
        self._checkpoint = option_str(extra, "checkpoint", DEFAULT_CHECKPOINT) or DEFAULT_CHECKPOINT
        self._device = resolve_device(torch, option_str(extra, "device", "auto"))
        self._allow_cpu = option_bool(extra, "allow_cpu", False)
        if not self._device.startswith("cuda") and not self._allow_cpu:
            raise ModelResolutionError(
                f"colva: device {self._device!r} refused before loading: {CPU_REFUSAL}. "
                "Run it on a CUDA GPU (device=cuda)"
            )
        self._dtype = resolve_torch_dtype(torch, option_str(extra, "dtype", "auto"), self._device)
        self._max_tiles = int(option_int(extra, "max_tiles", MAX_TILES) or MAX_TILES)
        self._ot_normalize = option_str(extra, "ot_normalize", "rescale") or "rescale"
        if self._ot_normalize not in ("rescale", "clip"):
            raise ModelResolutionError(f"colva: ot_normalize={self._ot_normalize!r}, expected rescale or clip")
        self._revision = option_str(extra, "revision")
        common: dict[str, Any] = {
            "trust_remote_code": True,
            "local_files_only": option_bool(extra, "local_files_only", False),
        }
        if self._revision:
            common["revision"] = self._revision
        try:
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(self._checkpoint, use_fast=False, **common)
            model = transformers.AutoModel.from_pretrained(
                self._checkpoint,
                torch_dtype=self._dtype,
                low_cpu_mem_usage=True,
                use_flash_attn=option_bool(extra, "use_flash_attn", self._device.startswith("cuda")),
                **common,
            )
        except Exception as exc:
            raise ModelResolutionError(
                f"colva: could not load {self._checkpoint} ({type(exc).__name__}: {exc})"
            ) from exc
        self._model = model.to(self._device).eval()
        self.info = ModelInfo(
            model_id=f"colva:{self._checkpoint}",
            display_name="CoLVA (InternVL2-4B)",
            access="native",
            params_b=4.0,
            provider="colva",
        )
        # native regions AND overlays: the prompt builder's native mode for MMVM supplies both
        self.capabilities = Capabilities(
            max_images=None, native_regions=True, option_logprobs=False, system_prompt=False
        )
        self._batcher: MicroBatcher[Request, BatchResult] = MicroBatcher(
            self._run_batch, max_batch=1, thread_name="cvbench-colva"
        )

    def settings(self) -> Mapping[str, Any]:
        return {
            "backend": "colva",
            "checkpoint": self._checkpoint,
            "revision": self._revision,
            "dtype": str(self._dtype).replace("torch.", ""),
            "max_tiles": self._max_tiles,
            "max_tiles_source": "demo load_image(max_num=12)" if self._max_tiles == MAX_TILES else "option",
            "device": self._device,
            "allow_cpu": self._allow_cpu,
            "ot_normalize": self._ot_normalize,
            "object_list": "all drawn candidates, ids ascending",
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
            finish_reason=result.finish_reason,
            served_model=self._checkpoint,
        )

    async def aclose(self) -> None:
        await self._batcher.aclose()

    def _run_batch(self, requests: list[Request]) -> list[BatchResult]:
        return [self._answer(r) for r in requests]

    def _answer(self, request: Request) -> BatchResult:
        torch = self._torch
        inputs = build_colva_inputs(request.prompt, self._max_tiles, self._ot_normalize)
        to_model = {"device": self._device, "dtype": self._dtype}
        config = request.config
        generation_config: dict[str, Any] = {"max_new_tokens": int(config.max_tokens), "do_sample": False}
        if config.temperature and config.temperature > 0:
            generation_config.update(do_sample=True, temperature=float(config.temperature))
        with torch.inference_mode():
            text = self._model.chat(
                self._tokenizer,
                torch.from_numpy(inputs["pixel_values"]).to(**to_model),
                inputs["question"],
                generation_config,
                num_patches_list=inputs["num_patches_list"],
                ot_pixel_values=torch.from_numpy(inputs["ot_pixel_values"]).to(**to_model),
                ot_visual_prompts=[torch.from_numpy(v).to(**to_model) for v in inputs["ot_visual_prompts"]],
            )
        n_out = len(self._tokenizer.encode(text, add_special_tokens=False))
        return BatchResult(
            text=str(text).strip(),
            finish_reason=None,
            usage=Usage(input_tokens=len(self._tokenizer.encode(inputs["question"])), output_tokens=n_out),
        )


def make_adapter(model_name: str, options: ModelOptions) -> ColvaAdapter:
    """Factory for the registry: `colva` or `colva:HF_REPO_OR_FOLDER` (default zhouyik/colva_internvl2_4b).

    Options: see KNOWN_OPTIONS and docs/local-models.md.
    """
    extra = dict(options.extra)
    if model_name:
        given = extra.get("checkpoint")
        if given is not None and str(given) != model_name:
            raise ModelResolutionError(
                f"colva:{model_name} names the checkpoint, but checkpoint={given!r} was also given; use one"
            )
        extra["checkpoint"] = model_name
    return ColvaAdapter(dataclasses.replace(options, extra=extra))
