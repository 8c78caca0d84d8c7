from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from cvbench.prompting import encoding as E
from tests.prompting.test_protocol_data import textured_image


def _png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, names = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        names.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return names


def test_png_encoding_is_lossless_deterministic_and_metadata_free():
    img = textured_image(64, 96, seed=1)
    a = E.encode_image(img, E.ImagePolicy(), "Image 1")
    b = E.encode_image(img.copy(), E.ImagePolicy(), "Image 1")
    assert a.data == b.data and a.sha256 == b.sha256
    assert a.mime == "image/png" and (a.width, a.height) == (96, 64) and a.label == "Image 1"
    assert set(_png_chunks(a.data)) == {b"IHDR", b"IDAT", b"IEND"}
    assert (np.asarray(Image.open(io.BytesIO(a.data)).convert("RGB")) == img).all()


def test_jpeg_encoding_is_deterministic_without_exif():
    img = textured_image(64, 96, seed=2)
    policy = E.ImagePolicy(format="jpeg", jpeg_quality=85)
    a, b = E.encode_image(img, policy, "x"), E.encode_image(img, policy, "x")
    assert a.data == b.data and a.mime == "image/jpeg"
    assert b"Exif" not in a.data[:200]
    decoded = np.asarray(Image.open(io.BytesIO(a.data)).convert("RGB")).astype(int)
    assert np.abs(decoded - img.astype(int)).mean() < 6


@pytest.mark.parametrize(
    "hw, policy, expected",
    [
        ((1080, 1920), E.ImagePolicy(max_side=1024), (576, 1024)),
        ((1080, 1920), E.ImagePolicy(max_pixels=1920 * 1080 // 4), (540, 960)),
        ((1080, 1920), E.ImagePolicy(max_side=1500, max_pixels=500_000), (530, 942)),
        ((300, 400), E.ImagePolicy(max_side=1024), (300, 400)),  # never upscaled
        ((300, 400), E.ImagePolicy(), (300, 400)),
    ],
)
def test_fitted_size_respects_max_side_and_max_pixels(hw, policy, expected):
    got = E.fitted_size(hw, policy)
    assert got == expected
    if policy.max_side:
        assert max(got) <= policy.max_side
    if policy.max_pixels:
        assert got[0] * got[1] <= policy.max_pixels


def test_encode_applies_the_resize_policy():
    img = textured_image(400, 800, seed=3)
    out = E.encode_image(img, E.ImagePolicy(max_side=200), "Image 1")
    assert (out.width, out.height) == (200, 100)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"format": "webp"}, "format"),
        ({"jpeg_quality": 0}, "jpeg_quality"),
        ({"max_side": 3}, "max_side"),
        ({"max_pixels": 10}, "max_pixels"),
    ],
)
def test_invalid_policies_name_the_field(kwargs, field):
    with pytest.raises(E.EncodingError, match=field):
        E.ImagePolicy(**kwargs)


def test_policy_is_recorded():
    d = E.ImagePolicy(format="jpeg", jpeg_quality=80, max_side=768).as_dict()
    assert d["format"] == "jpeg" and d["jpeg_quality"] == 80 and d["max_side"] == 768 and d["max_pixels"] is None


def test_concat_vertical_stacks_parts_under_label_bands():
    a = np.full((50, 120, 3), 200, np.uint8)
    b = np.full((70, 80, 3), 30, np.uint8)
    out = E.concat_vertical([a, b], ["Image 1", "Image 2"])
    assert out.shape[1] == 120 and out.dtype == np.uint8
    band = max(32, round(120 * 0.035))
    rule = max(2, band // 12)
    assert out.shape[0] == band + 50 + rule + band + 70
    assert (out[band : band + 50] == 200).all()  # part 1 unchanged
    top2 = band + 50 + rule + band
    assert (out[top2 : top2 + 70, :80] == 30).all()  # part 2 unchanged, left-aligned
    assert (out[top2 : top2 + 70, 80:] == 255).all()  # padded with white, not stretched
    label1 = out[:band]
    assert (label1 < 100).any(axis=2).sum() > 20  # the label text is drawn
    assert (out[band + 50 : band + 50 + rule] == 0).all()  # separator rule


def test_concat_vertical_rejects_mismatched_labels():
    with pytest.raises(E.EncodingError, match="labels"):
        E.concat_vertical([np.zeros((4, 4, 3), np.uint8)], ["a", "b"])
    with pytest.raises(E.EncodingError, match="at least one"):
        E.concat_vertical([], [])


def test_passthrough_keeps_bytes_and_sniffs_type():
    buf = io.BytesIO()
    Image.fromarray(textured_image(20, 30, seed=4)).save(buf, format="JPEG")
    img = E.passthrough_image(buf.getvalue(), 30, 20, "Image 1")
    assert img.data == buf.getvalue() and img.mime == "image/jpeg"
    with pytest.raises(E.EncodingError, match="unrecognised"):
        E.passthrough_image(b"not an image", 1, 1, "x")


def test_stacked_note_names_every_image():
    note = E.stacked_note(3)
    assert "3 views stacked vertically" in note and "Image 1" in note and "Image 3" in note
