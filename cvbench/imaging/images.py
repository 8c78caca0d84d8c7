"""Reading images (and video frames) from disk, with a decompression-bomb guard.

This is I/O at the edge: everything downstream works on RGB uint8 numpy arrays.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from cvbench.core.types import ImageRef

# Largest image cvbench decodes. Benchmark frames are at most 4K; anything far larger is
# treated as a decompression bomb rather than allocated.
MAX_IMAGE_PIXELS = 64_000_000
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"}


class ImageError(ValueError):
    """An image that is missing, unreadable, or unsafe to decode."""


def image_size(ref: ImageRef) -> tuple[int, int]:
    """(height, width) without decoding the pixels (images); videos decode the frame."""
    if ref.frame is not None or ref.path.suffix.lower() in VIDEO_SUFFIXES:
        h, w = load_image(ref).shape[:2]
        return h, w
    _require_file(ref.path)
    try:
        with Image.open(ref.path) as im:
            w, h = im.size
    except Exception as exc:
        raise ImageError(f"{ref.path}: not a readable image ({exc})") from exc
    _check_pixels(ref.path, w, h)
    return h, w


def load_image(ref: ImageRef) -> np.ndarray:
    """The image (or video frame) as H x W x 3 uint8 RGB."""
    if ref.frame is not None or ref.path.suffix.lower() in VIDEO_SUFFIXES:
        return _load_video_frame(ref.path, ref.frame or 0)
    _require_file(ref.path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(ref.path) as im:
                _check_pixels(ref.path, *im.size)
                if im.format == "JPEG":
                    fast = jpeg_rgb(ref.path.read_bytes(), im.mode)
                    if fast is not None:
                        return fast
                im.load()
                # convert() copies even an RGB image: skip it when the decoder already gives RGB
                return np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
    except ImageError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ImageError(f"{ref.path}: refused to decode, image too large ({exc})") from exc
    except Exception as exc:
        raise ImageError(f"{ref.path}: not a readable image ({exc})") from exc


# OpenCV's JPEG decoder, as Pillow's: colour (grey replicated), EXIF orientation not applied.
# OpenCV >= 4.11 has libjpeg-turbo write RGB directly (IMREAD_COLOR_RGB): the same decoded values
# in the other channel order, one pass over the image fewer than BGR + cvtColor (~0.4 ms a 720p view)
_RGB_FLAG: int | None = getattr(cv2, "IMREAD_COLOR_RGB", None)
_JPEG_FLAGS = (cv2.IMREAD_COLOR if _RGB_FLAG is None else _RGB_FLAG) | cv2.IMREAD_IGNORE_ORIENTATION


def jpeg_rgb(data: bytes, mode: str) -> np.ndarray | None:
    """The RGB pixels of a JPEG file whose Pillow mode is `mode`, decoded by OpenCV, or None
    where Pillow must decode it (modes other than RGB and L: CMYK/YCCK; a file OpenCV refuses).

    Why: Pillow keeps RGB as 4 bytes a pixel and packs it to 3 in a second pass (`tobytes`);
    OpenCV decodes straight into the 3-byte array, about 40% less CPU per view
    (docs/performance.md). Both decode with libjpeg-turbo's defaults (integer IDCT, fancy
    upsampling), so the pixels are Pillow's bit for bit; tests/imaging/test_jpeg_decode.py
    checks that over the subsamplings, progressive and restart-marker files, greyscale, odd sizes
    and EXIF orientation, and the golden suites check it under the lowest allowed versions. The
    array is read-only, like Pillow's."""
    if mode not in ("RGB", "L"):
        return None
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), _JPEG_FLAGS)
    if decoded is None or decoded.ndim != 3 or decoded.shape[2] != 3 or decoded.dtype != np.uint8:
        return None
    rgb = decoded if _RGB_FLAG is not None else cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    rgb.flags.writeable = False
    return rgb


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise ImageError(f"{path}: image file not found")


def _check_pixels(path: Path, width: int, height: int) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageError(
            f"{path}: refused to decode a {width}x{height} image "
            f"(over {MAX_IMAGE_PIXELS:,} pixels; likely a decompression bomb)"
        )


def _load_video_frame(path: Path, frame: int) -> np.ndarray:
    _require_file(path)
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise ImageError(f"{path}: video could not be opened")
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(frame))
        ok, bgr = cap.read()
        if not ok or bgr is None:
            raise ImageError(f"{path}: frame {frame} could not be read")
        _check_pixels(path, bgr.shape[1], bgr.shape[0])
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()
