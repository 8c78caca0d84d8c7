"""CrossViewer's evaluation settings, as its authors evaluated it (docs/formats.md §3.1).

The published numbers depend on settings that live in the upstream eval config YAML
(`CrossViewer/configs/*.yaml`, read by `scripts/eval_mc.py`), not in the model's `forward`
defaults. This module reads such a config into `CrossViewerEvalConfig` and holds the pure
rules the dataset code applies before the model sees a sample: the per-view object cap with
referenced objects kept and refs remapped, and the host-side region
token count including the max-pixels clamp of the model's GPU preprocessing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cvbench.core.types import NativeRegions, NativeView, RegionRef
from cvbench.model_adapters.local_common import bilinear_resize

PATCH_SIZE = 14
# The model's fallback when its processor names no max_pixels (`_prepare_pixelrefer_gpu_full`).
DEFAULT_MAX_RESIZE_PIXELS = 28 * 28 * 1280


class EvalConfigError(ValueError):
    """A CrossViewer eval config that cannot be used (names the file and the key)."""


@dataclass(frozen=True)
class CrossViewerEvalConfig:
    """The eval-relevant keys of an upstream CrossViewer config (`model:` and `data:` sections)."""

    source: str  # the YAML path, or "released q225w_scene_disjoint defaults"
    use_all_views_for_vqa: bool = True
    max_objects_per_sample: int = 6  # <= 0: no cap
    match_mode: str = "greedy"
    defer_region_token_expansion: bool = True
    mask_num: int = 32
    region_placeholder: str = "<region>"
    region_token_num: int | None = None  # None: mask_num
    include_options_in_question: bool = True
    use_processor: bool = False
    return_raw_images: bool = True
    use_additional_inputs: bool = False
    num_object_tokens: int = 10
    num_cross_attn_heads: int = 8
    contrast_dim: int = 256
    region_source: str = "fused"
    pixelrefer_mode: str = "gpu_full"
    preprocess_on_gpu: bool = True
    attn_implementation: str | None = "flash_attention_2"
    low_cpu_mem_usage: bool = True
    freeze_vision_encoder: bool = True
    freeze_llm: bool = True
    freeze_pos_encoder: bool = False
    unfreeze_lm_head: bool = False
    cutoff_len: int | None = None
    temperature: float = 0.07
    info_nce_weight: float = 1.0
    vqa_weight: float = 0.5
    triplet_weight: float = 0.1

    def record(self) -> dict[str, Any]:
        return asdict(self)


# The values of the released `CrossViewer/configs/q225w_scene_disjoint.yaml`, the config of the
# published checkpoint; used when the user names no config.
RELEASED_Q225W = CrossViewerEvalConfig(source="released q225w_scene_disjoint defaults")

# key in the YAML -> (section, field, type). eval_mc.py's own fallbacks apply to absent keys.
_KEYS: dict[str, tuple[str, type, Any]] = {
    "use_all_views_for_vqa": ("model", bool, False),
    "match_mode": ("model", str, "gt"),
    "num_object_tokens": ("model", int, None),
    "num_cross_attn_heads": ("model", int, None),
    "contrast_dim": ("model", int, None),
    "region_source": ("model", str, "fused"),
    "pixelrefer_mode": ("model", str, "full"),
    "preprocess_on_gpu": ("model", bool, False),
    "attn_implementation": ("model", str, None),
    "low_cpu_mem_usage": ("model", bool, True),
    "freeze_vision_encoder": ("model", bool, None),
    "freeze_llm": ("model", bool, True),
    "freeze_pos_encoder": ("model", bool, False),
    "unfreeze_lm_head": ("model", bool, False),
    "max_objects_per_sample": ("data", int, -1),
    "defer_region_token_expansion": ("data", bool, False),
    "mask_num": ("data", int, 32),
    "region_placeholder": ("data", str, "<region>"),
    "region_token_num": ("data", int, None),
    "include_options_in_question": ("data", bool, True),
    "use_processor": ("data", bool, True),
    "return_raw_images": ("data", bool, False),
    "use_additional_inputs": ("data", bool, False),
    "cutoff_len": ("data", int, None),
}
_LOSS_KEYS: dict[str, tuple[type, Any]] = {
    "temperature": (float, None),
    "info_nce_weight": (float, 1.0),
    "vqa_weight": (float, 0.5),
    "triplet_weight": (float, 0.0),
}


def load_eval_config(path: Path) -> CrossViewerEvalConfig:
    """Read an upstream CrossViewer YAML. Absent keys take the value `eval_mc.py` falls back to."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EvalConfigError(f"crossviewer config {path}: cannot read ({exc})") from exc
    except yaml.YAMLError as exc:
        raise EvalConfigError(f"crossviewer config {path}: not valid YAML ({exc})") from exc
    if not isinstance(data, Mapping):
        raise EvalConfigError(f"crossviewer config {path}: expected a mapping with model:/data: sections")
    return eval_config_from_mapping(data, str(path))


def eval_config_from_mapping(data: Mapping[str, Any], source: str) -> CrossViewerEvalConfig:
    values: dict[str, Any] = {}
    for key, (section, kind, fallback) in _KEYS.items():
        values[key] = _typed(data, section, key, kind, fallback, source)
    for key, (kind, fallback) in _LOSS_KEYS.items():
        values[key] = _typed(data, "loss", key, kind, fallback, source)
    for key in ("num_object_tokens", "num_cross_attn_heads", "contrast_dim", "freeze_vision_encoder", "temperature"):
        if values[key] is None:  # eval_mc.py indexes these without a fallback: upstream would fail too
            section = "loss" if key == "temperature" else "model"
            raise EvalConfigError(f"crossviewer config {source}: {section}.{key} is required")
    if values["match_mode"] not in ("greedy", "hungarian", "gt", "none"):
        raise EvalConfigError(
            f"crossviewer config {source}: model.match_mode={values['match_mode']!r}, expected "
            "greedy, hungarian, gt or none"
        )
    return CrossViewerEvalConfig(source=source, **values)


def _typed(data: Mapping[str, Any], section: str, key: str, kind: type, fallback: Any, source: str) -> Any:
    block = data.get(section) or {}
    if not isinstance(block, Mapping):
        raise EvalConfigError(f"crossviewer config {source}: {section}: must be a mapping")
    value = block.get(key, fallback)
    if value is None:
        return None
    if kind is bool and not isinstance(value, bool):
        raise EvalConfigError(f"crossviewer config {source}: {section}.{key}={value!r}, expected true or false")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise EvalConfigError(f"crossviewer config {source}: {section}.{key}={value!r}, expected an integer")
    if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise EvalConfigError(f"crossviewer config {source}: {section}.{key}={value!r}, expected a number")
    if kind is str and not isinstance(value, str):
        raise EvalConfigError(f"crossviewer config {source}: {section}.{key}={value!r}, expected a string")
    return float(value) if kind is float else value


# ---------------------------------------------------------------------------------- object cap


@dataclass(frozen=True)
class CappedRegions:
    native: NativeRegions
    kept: tuple[tuple[int, ...], ...]  # per view: the ORIGINAL object indices kept, in their new order

    @property
    def changed(self) -> bool:
        return any(kept != tuple(range(len(view.masks))) for kept, view in zip(self.kept, self.native.views))


def apply_object_cap(native: NativeRegions, cap: int) -> CappedRegions:
    """Per view with more than `cap` objects: the referenced objects (ascending), then the first
    others up to the cap; region refs are remapped to the new positions. `cap <= 0`: no cap."""
    if cap <= 0:
        return CappedRegions(native, tuple(tuple(range(len(v.masks))) for v in native.views))
    referenced: list[set[int]] = [set() for _ in native.views]
    for ref in native.refs:
        if 0 <= ref.view_index < len(native.views) and 0 <= ref.region_index < len(native.views[ref.view_index].masks):
            referenced[ref.view_index].add(ref.region_index)
    kept_all: list[tuple[int, ...]] = []
    views: list[NativeView] = []
    for v, view in enumerate(native.views):
        n = len(view.masks)
        if n <= cap:
            kept_all.append(tuple(range(n)))
            views.append(view)
            continue
        keep = sorted(referenced[v])  # referenced objects survive even beyond the cap, as upstream
        keep += [i for i in range(n) if i not in referenced[v]][: max(0, cap - len(keep))]
        kept_all.append(tuple(keep))
        views.append(
            NativeView(
                view_id=view.view_id,
                image=view.image,
                masks=tuple(view.masks[i] for i in keep),
                region_ids=tuple(view.region_ids[i] for i in keep),
            )
        )
    position = [{old: new for new, old in enumerate(kept)} for kept in kept_all]
    refs = tuple(RegionRef(r.view_index, position[r.view_index][r.region_index]) for r in native.refs)
    capped = NativeRegions(
        views=tuple(views),
        refs=refs,
        token_counts=native.token_counts,
        query=native.query,
        candidate_order=native.candidate_order,
    )
    return CappedRegions(capped, tuple(kept_all))


# ---------------------------------------------------------------------------------- token counts


def region_token_count(
    mask: np.ndarray,
    patch_size: int = PATCH_SIZE,
    max_tokens: int = 32,
    max_resize_pixels: int | None = DEFAULT_MAX_RESIZE_PIXELS,
) -> int:
    """How many `<REGION>` tokens an object gets, as the model's GPU preprocessing counts them.

    The mask's bounding box grown by two patches per side (clipped; the far edge exclusive, as
    upstream slices it) is scaled by `ceil(sqrt(196 * max_tokens / area))` (objects over 100
    patches of area are shrunk instead), each side rounded up to a multiple of the patch size;
    when that exceeds `max_resize_pixels` both sides shrink by the same factor, floored to the
    patch size (the clamp). The count is the crop's mask resampled bilinearly (float32,
    half-pixel centres) onto the patch grid, summed and truncated, capped at `max_tokens`.
    An empty mask, or a crop that comes out empty, counts 0.
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
    crop = binary[top:bottom, left:right].astype(np.float32)
    if crop.size == 0:  # upstream then falls back to an all-zero mask of the whole image
        return 0
    crop_h, crop_w = crop.shape
    scale = float(math.ceil(math.sqrt(patch_size * patch_size * max_tokens / area)))
    if scale == 1 and area / (patch_size * patch_size) > 100:
        scale = 1.0 / math.sqrt((area / (patch_size * patch_size)) / 100)
    resize_h = max(patch_size, int(math.ceil(crop_h * scale / patch_size) * patch_size))
    resize_w = max(patch_size, int(math.ceil(crop_w * scale / patch_size) * patch_size))
    if max_resize_pixels is not None and resize_h * resize_w > max_resize_pixels:
        shrink = math.sqrt(max_resize_pixels / (resize_h * resize_w))
        resize_h = max(patch_size, math.floor(resize_h * shrink / patch_size) * patch_size)
        resize_w = max(patch_size, math.floor(resize_w * shrink / patch_size) * patch_size)
    return min(max_tokens, int(_grid_sum(crop, resize_h // patch_size, resize_w // patch_size)))


def _grid_sum(crop: np.ndarray, grid_h: int, grid_w: int) -> float:
    """Sum of the crop resampled bilinearly onto the grid, in float32.

    With torch installed (the CrossViewer adapter requires it) this is the same operation the
    upstream preprocessing runs (`F.interpolate(..., "bilinear", align_corners=False)` then a
    float32 sum), so counts agree to the last bit on a CPU; a count whose exact value is an
    integer can otherwise come out one lower or higher from float32 rounding. numpy otherwise.
    """
    try:
        import torch
    except ImportError:
        return float(bilinear_resize(crop, grid_h, grid_w, np.float32).sum(dtype=np.float32))
    tensor = torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32))[None, None]
    grid = torch.nn.functional.interpolate(tensor, size=(grid_h, grid_w), mode="bilinear", align_corners=False)[0, 0]
    return float(grid.sum().item())
