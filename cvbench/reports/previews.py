"""Downscaled JPEG previews of the images a model saw, for sample browsers of large sites.

A preview is a pure function of the exact image's pixels and the preview settings, so the same
image always gives the same bytes and a preview can be named after the image it shows.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

IMAGE_MODES: tuple[str, ...] = ("exact", "preview", "none")


@dataclass(frozen=True)
class PreviewSettings:
    max_side: int = 1024  # the longer side, in pixels; smaller images keep their size
    quality: int = 85  # JPEG quality

    def __post_init__(self) -> None:
        if self.max_side < 16:
            raise ValueError(f"preview size must be at least 16 pixels, got {self.max_side}")
        if not 1 <= self.quality <= 95:
            raise ValueError(f"preview JPEG quality must be 1-95, got {self.quality}")

    @property
    def suffix(self) -> str:
        """The part of a preview's file name that says how it was made."""
        return f".preview-{self.max_side}-q{self.quality}.jpg"


def preview_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) scaled so the longer side is at most `max_side`; never enlarged."""
    longest = max(width, height)
    if longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def preview_jpeg(rgb: np.ndarray, settings: PreviewSettings) -> bytes:
    """The preview of an H x W x 3 uint8 RGB image as JPEG bytes (4:2:0, no metadata)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 image, got shape {rgb.shape} of {rgb.dtype}")
    image = Image.fromarray(np.ascontiguousarray(rgb))
    size = preview_size(image.width, image.height, settings.max_side)
    if size != image.size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=settings.quality, optimize=True, subsampling=2)
    return buffer.getvalue()
