"""JPEG decoding through OpenCV (`images.jpeg_rgb`) gives Pillow's pixels bit for bit, so source
views, pixel identities and golden files do not depend on which of the two decoded a file; what
OpenCV should not decode (CMYK) is left to Pillow."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cvbench.core.types import ImageRef
from cvbench.imaging.images import jpeg_rgb, load_image
from cvbench.prompting.encoding import IDENTITY_SCHEMA, identity_of_bytes, pixel_identity


def photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients, sharp edges and noise: every kind of block a JPEG holds."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([x / max(w, 1) * 255, y / max(h, 1) * 255, (x + y) % 64 * 4], axis=-1)
    base[h // 3 : h // 2, w // 4 : w // 2] = (250, 10, 40)
    noisy = base + rng.normal(0, 12, base.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def jpeg(rgb: np.ndarray, mode: str = "RGB", **save: Any) -> bytes:
    image = Image.fromarray(rgb, mode="RGB")
    if mode != "RGB":
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **save)
    return buffer.getvalue()


def pillow_rgb(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def mode_of(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as im:
        return str(im.mode)


CASES = {
    "q90 4:4:4 (the JPEG policy)": {"quality": 90, "subsampling": 0},
    "q75 4:2:0 (Pillow's default)": {"quality": 75},
    "q95 4:2:2": {"quality": 95, "subsampling": 1},
    "q50 4:2:0 optimised Huffman": {"quality": 50, "subsampling": 2, "optimize": True},
    "progressive": {"quality": 85, "progressive": True},
    "progressive 4:4:4": {"quality": 92, "subsampling": 0, "progressive": True},
}
SIZES = [(720, 1280), (37, 23), (1, 1), (17, 1), (9, 33)]


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("hw", SIZES, ids=lambda hw: f"{hw[0]}x{hw[1]}")
def test_colour_jpegs_decode_to_pillows_pixels(case: str, hw: tuple[int, int]) -> None:
    data = jpeg(photo(*hw), **CASES[case])
    fast = jpeg_rgb(data, mode_of(data))
    assert fast is not None
    expected = pillow_rgb(data)
    assert fast.shape == expected.shape and fast.dtype == np.uint8
    assert np.array_equal(fast, expected)
    assert not fast.flags.writeable  # like Pillow's array: nothing draws on a decoded source


def test_greyscale_jpeg_is_replicated_like_pillows_convert() -> None:
    data = jpeg(photo(48, 64), mode="L", quality=80)
    assert mode_of(data) == "L"
    fast = jpeg_rgb(data, "L")
    assert fast is not None and np.array_equal(fast, pillow_rgb(data))


def test_opencv_encoded_jpeg_decodes_the_same() -> None:
    import cv2

    ok, encoded = cv2.imencode(".jpg", photo(99, 131, seed=3), [cv2.IMWRITE_JPEG_QUALITY, 70])
    assert ok
    data = encoded.tobytes()
    fast = jpeg_rgb(data, mode_of(data))
    assert fast is not None and np.array_equal(fast, pillow_rgb(data))


def test_exif_orientation_is_not_applied_by_either_decoder() -> None:
    rgb = photo(40, 90)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": cvbench shows the stored pixels, as Pillow does
    data = jpeg(rgb, quality=90, exif=exif.tobytes())
    fast = jpeg_rgb(data, mode_of(data))
    assert fast is not None and fast.shape == (40, 90, 3)
    assert np.array_equal(fast, pillow_rgb(data))


def test_cmyk_is_left_to_pillow(tmp_path: Path) -> None:
    data = jpeg(photo(30, 40), mode="CMYK", quality=90)
    assert mode_of(data) == "CMYK"
    assert jpeg_rgb(data, "CMYK") is None
    path = tmp_path / "cmyk.jpg"
    path.write_bytes(data)
    assert np.array_equal(load_image(ImageRef(path)), pillow_rgb(data))


def test_a_file_opencv_cannot_read_is_left_to_pillow() -> None:
    assert jpeg_rgb(b"\xff\xd8\xff\xe0 not really a jpeg", "RGB") is None


def test_load_image_and_identity_match_pillows_decode(tmp_path: Path) -> None:
    data = jpeg(photo(120, 160, seed=5), quality=75)
    path = tmp_path / "view.jpg"
    path.write_bytes(data)
    loaded = load_image(ImageRef(path))
    expected = pillow_rgb(data)
    assert np.array_equal(loaded, expected)
    assert identity_of_bytes(data) == pixel_identity(expected, {"format": "jpeg"})
    assert IDENTITY_SCHEMA == "cvbench.image-identity/1"  # the identity's definition is unchanged
