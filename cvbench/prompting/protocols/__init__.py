"""Benchmark visual-prompt protocols (MMVM, CrossViewBench) and what they share.

A protocol turns a Sample into a ``ProtocolOutput``: the question text, the rendered views (RGB
arrays) or shipped image files, the options and answer for this prompt, native regions when
asked, and the ``record`` (everything that decided what the model saw). Encoding, resizing
for the policy and concatenation for single-image models happen afterwards in
``cvbench.prompting.build``.

Public API
----------
- ``ProtocolError(ValueError)``: the sample cannot be presented (image missing, mask invalid, ...)
- ``LoadedView``: a view's original image at its presentation size and the masks of chosen regions
- ``load_view(view, policy, region_indices=None) -> LoadedView``
- ``ShippedImage``: an upstream image file passed through unchanged
- ``ProtocolOutput``
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from cvbench.core.types import NativeRegions, Option, View
from cvbench.imaging.images import ImageError, load_image
from cvbench.imaging.masks import MaskError, decode_region, interior_point
from cvbench.prompting.encoding import (
    ImagePolicy,
    fitted_size,
    resize_mask_area,
    resize_rgb,
)


class ProtocolError(ValueError):
    """A sample that cannot be presented under the requested protocol settings."""


@dataclass(frozen=True)
class LoadedView:
    view_id: str
    original: np.ndarray  # the original image at full size (H x W x 3 uint8)
    image: np.ndarray  # the original fitted to the image policy: what gets drawn on
    masks: tuple[np.ndarray, ...]  # at `image` size, one per entry of region_indices
    full_masks: tuple[np.ndarray, ...]  # at full size (for native regions)
    region_indices: tuple[int, ...]
    warnings: tuple[str, ...] = ()

    @property
    def scale(self) -> float:
        return float(self.image.shape[1] / self.original.shape[1])


def load_view(
    view: View, policy: ImagePolicy, region_indices: Sequence[int] | None = None, *, allow_empty: bool = False
) -> LoadedView:
    """Decode a view's original image and the masks of `region_indices` (default: all regions).

    Masks are decoded at the full image size (the geometry's own frame), then resized to the
    size the policy presents the image at, so lines and tags are drawn at the final resolution.
    An empty mask is an error unless `allow_empty` (native regions follow the upstream rule instead).
    """
    indices = tuple(range(len(view.regions))) if region_indices is None else tuple(region_indices)
    try:
        original = load_image(view.image)
    except ImageError as exc:
        raise ProtocolError(f"view {view.view_id!r}: {exc}") from exc
    hw = original.shape[:2]
    target = fitted_size(hw, policy)
    warnings: list[str] = []
    full: list[np.ndarray] = []
    for i in indices:
        if not 0 <= i < len(view.regions):
            raise ProtocolError(f"view {view.view_id!r}: region index {i} out of range ({len(view.regions)} regions)")
        region = view.regions[i]
        try:
            decoded = decode_region(region, (hw[0], hw[1]))
        except MaskError as exc:
            raise ProtocolError(f"view {view.view_id!r}, region {region.region_id!r}: {exc}") from exc
        if not decoded.mask.any() and not allow_empty:
            raise ProtocolError(f"view {view.view_id!r}, region {region.region_id!r}: the mask is empty")
        warnings.extend(f"view {view.view_id!r}, region {region.region_id!r}: {w}" for w in decoded.warnings)
        full.append(decoded.mask)
    image = resize_rgb(original, target)
    # a sliver that vanishes when downscaled keeps its deepest pixel, so every region stays visible
    shown = tuple(
        s if s.any() else _keep_something(s, f, target) for s, f in ((resize_mask_area(m, target), m) for m in full)
    )
    return LoadedView(
        view_id=view.view_id,
        original=original,
        image=image,
        masks=shown,
        full_masks=tuple(full),
        region_indices=indices,
        warnings=tuple(warnings),
    )


def _keep_something(shown: np.ndarray, full: np.ndarray, target: tuple[int, int]) -> np.ndarray:
    point = interior_point(full)
    out = shown.copy()
    if point is not None:
        x = min(int(point[0] * target[1] / full.shape[1]), target[1] - 1)
        y = min(int(point[1] * target[0] / full.shape[0]), target[0] - 1)
        out[y, x] = True
    return cast("np.ndarray", out)


@dataclass(frozen=True)
class ShippedImage:
    """An upstream image file whose bytes are sent unchanged when no resize is needed."""

    path: Path
    data: bytes
    height: int
    width: int


@dataclass(frozen=True)
class ProtocolOutput:
    text: str
    views: tuple[np.ndarray | ShippedImage, ...]  # in presentation order
    view_labels: tuple[str, ...]
    options: tuple[Option, ...]
    answer: str | None
    native: NativeRegions | None = None
    record: dict[str, Any] = field(default_factory=dict)
