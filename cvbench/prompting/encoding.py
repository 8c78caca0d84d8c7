"""Image presentation: the resize policy, deterministic PNG/JPEG encoding, vertical concatenation.

Public API
----------
- ``ImagePolicy(format="png", jpeg_quality=90, max_side=None, max_pixels=None)``; ``as_dict()``
- ``fitted_size(hw, policy) -> (height, width)``: the size an image of size hw is shown at
- ``resize_rgb(rgb, hw) -> ndarray``, ``resize_mask_area(mask, hw) -> ndarray``
- ``fit_to_policy(rgb, policy) -> ndarray``
- ``encode_image(rgb, policy, label) -> PromptImage``: fitted to the policy, then encoded with
  fixed settings and no metadata, so the same pixels always give the same bytes (with
  ``policy.defer_encoding`` and PNG: encoded on first use of the bytes, see PromptImage.deferred)
- ``passthrough_image(data, width, height, label) -> PromptImage``: shipped bytes, unchanged
- ``concat_vertical(images, labels) -> ndarray``: parts stacked top to bottom, each under a
  label band ("Image 1", ...), for single-image models
- ``stacked_note(n) -> str``: the sentence that tells a model how a stacked image is laid out
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import cv2
import numpy as np
from PIL import Image

from cvbench.core.types import PromptImage
from cvbench.imaging.bitmap_font import CAP_ROWS, text_mask
from cvbench.imaging.images import jpeg_rgb

FORMATS: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg"}
PNG_COMPRESS_LEVEL = 6


class EncodingError(ValueError):
    pass


@dataclass(frozen=True)
class ImagePolicy:
    """How images are presented to a model; recorded in every run and prompt.

    `defer_encoding` (in-process models): lossless images are encoded only when something needs
    their bytes (`PromptImage.deferred`); the model reads the pixels. Not part of the recorded
    policy or of equality: the images, their identities and every key are the same either way."""

    format: str = "png"  # "png" | "jpeg"
    jpeg_quality: int = 90
    max_side: int | None = None  # longest side in pixels after resizing (None: no limit)
    max_pixels: int | None = None  # width * height after resizing (None: no limit)
    defer_encoding: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise EncodingError(f"image format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise EncodingError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if self.max_side is not None and self.max_side < 16:
            raise EncodingError(f"max_side must be >= 16, got {self.max_side}")
        if self.max_pixels is not None and self.max_pixels < 256:
            raise EncodingError(f"max_pixels must be >= 256, got {self.max_pixels}")

    @property
    def mime(self) -> str:
        return FORMATS[self.format]

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "jpeg_quality": self.jpeg_quality if self.format == "jpeg" else None,
            "max_side": self.max_side,
            "max_pixels": self.max_pixels,
            "png_compress_level": PNG_COMPRESS_LEVEL,
            "png_encoder": "opencv-libpng",
            "jpeg_encoder": "pillow-libjpeg",
            "resize": "cv2.INTER_AREA",
        }


def fitted_size(hw: tuple[int, int], policy: ImagePolicy) -> tuple[int, int]:
    """(height, width) scaled down uniformly to satisfy max_side and max_pixels; never scaled up."""
    h, w = int(hw[0]), int(hw[1])
    scale = 1.0
    if policy.max_side is not None and max(h, w) > policy.max_side:
        scale = min(scale, policy.max_side / max(h, w))
    if policy.max_pixels is not None and h * w > policy.max_pixels:
        scale = min(scale, math.sqrt(policy.max_pixels / (h * w)))
    if scale >= 1.0:
        return h, w
    nh, nw = max(1, math.floor(h * scale)), max(1, math.floor(w * scale))
    return nh, nw


def resize_rgb(rgb: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if rgb.shape[:2] == tuple(hw):
        return rgb
    return cv2.resize(rgb, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)


def resize_mask_area(mask: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """A mask at a new size: a pixel is in it when at least half its area was (no thin part vanishes
    more than nearest-neighbour would drop it)."""
    if mask.shape == tuple(hw):
        return mask
    frac = cv2.resize(mask.astype(np.float32), (hw[1], hw[0]), interpolation=cv2.INTER_AREA)
    return frac >= 0.5


def fit_to_policy(rgb: np.ndarray, policy: ImagePolicy) -> np.ndarray:
    return resize_rgb(rgb, fitted_size(rgb.shape[:2], policy))


def _check_rgb(rgb: np.ndarray, label: str) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise EncodingError(f"{label}: image must be H x W x 3 uint8 RGB, got shape {rgb.shape} dtype {rgb.dtype}")


def encode_image(rgb: np.ndarray, policy: ImagePolicy, label: str) -> PromptImage:
    """The image fitted to the policy and encoded; identical pixels always give identical bytes
    (fixed encoder settings, no EXIF/text chunks/timestamps)."""
    _check_rgb(rgb, label)
    fitted = np.ascontiguousarray(fit_to_policy(rgb, policy))
    if policy.format == "png" and policy.defer_encoding:
        identity = pixel_identity(fitted, encoding_params(policy))
        return PromptImage.deferred(fitted, partial(encode_png, label=label), policy.mime, label, identity)
    if policy.format == "png":
        data = encode_png(fitted, label)
    else:
        buf = io.BytesIO()
        Image.fromarray(fitted, mode="RGB").save(
            buf,
            format="JPEG",
            quality=policy.jpeg_quality,
            subsampling=_jpeg_subsampling(policy.jpeg_quality),
            optimize=False,
            progressive=False,
        )
        data = buf.getvalue()
    h, w = fitted.shape[:2]
    shown = fitted if policy.format == "png" else _decode_rgb(data)  # lossy: the pixels the model decodes
    return PromptImage(
        data=data,
        mime=policy.mime,
        width=int(w),
        height=int(h),
        label=label,
        pixel_identity=pixel_identity(shown, encoding_params(policy)),
    )


def encode_png(rgb: np.ndarray, label: str) -> bytes:
    # libpng via OpenCV: about twice as fast as Pillow at the same level, and writes no
    # time or text chunks (IHDR, IDAT, IEND only)
    ok, encoded = cv2.imencode(
        ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESS_LEVEL]
    )
    if not ok:
        raise EncodingError(f"{label}: PNG encoding failed")
    return encoded.tobytes()


def _decode_rgb(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        if im.format == "JPEG":
            fast = jpeg_rgb(data, im.mode)  # the same pixels as Pillow's, decoded cheaper
            if fast is not None:
                return fast
        # convert() copies even an RGB image: skip it when the decoder already gives RGB
        return np.asarray(im if im.mode == "RGB" else im.convert("RGB"))


IDENTITY_SCHEMA = "cvbench.image-identity/1"


def encoding_params(policy: ImagePolicy) -> dict[str, Any]:
    """What, beside the decoded pixels, the identity covers: the format. For a lossy format the
    pixels hashed are the decoded ones, which already show the quality and subsampling."""
    return {"format": policy.format}


def pixel_identity(rgb: np.ndarray, params: dict[str, Any]) -> str:
    """SHA-256 over a schema tag, the format, the size and the RGB pixels a decoder shows (for
    PNG the pixels encoded, for JPEG the pixels decoded from the bytes): another zlib build or
    another byte layout of the same JPEG gives the same identity, a different picture does not;
    and the identity can be recomputed from the bytes a server received."""
    h = hashlib.sha256(IDENTITY_SCHEMA.encode())
    h.update(json.dumps(params, sort_keys=True).encode())
    h.update(f"{rgb.shape[0]}x{rgb.shape[1]}x{rgb.shape[2]}".encode())
    h.update(np.ascontiguousarray(rgb, dtype=np.uint8).data)  # the same bytes as tobytes(), without the copy
    return h.hexdigest()


def identity_of_bytes(data: bytes) -> str:
    """The identity of an encoded PNG or JPEG file's bytes (what encode_image records for it)."""
    fmt = {"image/png": "png", "image/jpeg": "jpeg"}.get(sniff_mime(data))
    if fmt is None:
        raise EncodingError("identity_of_bytes takes PNG or JPEG bytes")
    return pixel_identity(_decode_rgb(data), {"format": fmt})


def _jpeg_subsampling(quality: int) -> int:
    return 0 if quality >= 90 else 2  # 4:4:4 at high quality, else 4:2:0 (Pillow's codes)


def sniff_mime(data: bytes) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    raise EncodingError("unrecognised image bytes (not PNG, JPEG, WebP or GIF)")


def passthrough_image(data: bytes, width: int, height: int, label: str) -> PromptImage:
    """A shipped image file's bytes, unchanged (MMVM prerendered overlays)."""
    mime = sniff_mime(data)
    identity = identity_of_bytes(data) if mime in ("image/png", "image/jpeg") else None
    return PromptImage(data=data, mime=mime, width=int(width), height=int(height), label=label, pixel_identity=identity)


# ------------------------------------------------------------------------------ concatenation

LABEL_BG = (255, 255, 255)
LABEL_FG = (0, 0, 0)
SEPARATOR = (0, 0, 0)


def _label_band(width: int, text: str, band_h: int) -> np.ndarray:
    """A white band with `text` in black, its capitals about 55% of the band tall (bitmap font:
    the same pixels under every supported library version)."""
    band = np.full((band_h, width, 3), LABEL_BG, dtype=np.uint8)
    scale = max(2, round(band_h * 0.55 / CAP_ROWS))
    ink = text_mask(text, scale)[: CAP_ROWS * scale]  # labels are "Image k": no descenders
    x = max(2, round(band_h * 0.25))
    y = (band_h - ink.shape[0]) // 2
    w = min(ink.shape[1], width - x)
    if w > 0:
        band[y : y + ink.shape[0], x : x + w][ink[:, :w]] = LABEL_FG
    return band


def concat_vertical(images: Sequence[np.ndarray], labels: Sequence[str]) -> np.ndarray:
    """Parts stacked top to bottom on the widest part's width (narrower parts are padded on the
    right with white, never scaled), each preceded by a white band with its label in black and
    separated by a black rule."""
    if not images:
        raise EncodingError("concat_vertical needs at least one image")
    if len(images) != len(labels):
        raise EncodingError(f"{len(images)} images but {len(labels)} labels")
    for img, label in zip(images, labels):
        _check_rgb(img, label)
    width = max(img.shape[1] for img in images)
    band_h = max(32, round(width * 0.035))
    rule_h = max(2, band_h // 12)
    parts: list[np.ndarray] = []
    for k, (img, label) in enumerate(zip(images, labels)):
        if k:
            parts.append(np.full((rule_h, width, 3), SEPARATOR, dtype=np.uint8))
        parts.append(_label_band(width, label, band_h))
        if img.shape[1] < width:
            pad = np.full((img.shape[0], width - img.shape[1], 3), LABEL_BG, dtype=np.uint8)
            img = np.concatenate([img, pad], axis=1)
        parts.append(img)
    return np.ascontiguousarray(np.concatenate(parts, axis=0))


def stacked_note(n: int) -> str:
    return (
        f"The image shows {n} views stacked vertically, labelled Image 1 to Image {n} from top to bottom; "
        f'"the first image" means Image 1, "the second image" Image 2, and so on.'
    )
