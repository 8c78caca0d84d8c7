"""What cvbench draws is the same pixels under every supported library version: text comes from
the project's bitmap font, MMVM views follow the authors' drawing rule, and an image's identity
is its pixels and encoding settings, not the encoder's bytes. (CI also runs the golden and
snapshot suites under the lowest allowed versions.)"""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest

from cvbench.imaging import bitmap_font as F
from cvbench.imaging import render as R
from cvbench.prompting.encoding import (
    ImagePolicy,
    encode_image,
    identity_of_bytes,
    pixel_identity,
)


def test_every_glyph_is_5_by_9_and_distinct():
    shapes = {ch: g.shape for ch, g in F.GLYPHS.items()}
    assert set(shapes.values()) == {(F.GLYPH_H, F.GLYPH_W)}
    bitmaps = {g.tobytes() for ch, g in F.GLYPHS.items() if ch != " "}
    assert len(bitmaps) == len(F.GLYPHS) - 1  # no two characters look the same
    for ch in "0123456789" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        assert F.GLYPHS[ch][: F.CAP_ROWS].any() and not F.GLYPHS[ch][F.CAP_ROWS :].any()


def test_text_mask_is_integer_block_scaling():
    one, three = F.text_mask("A7", 1), F.text_mask("A7", 3)
    assert one.shape == (9, 11) and three.shape == (27, 33)
    assert (three[::3, ::3] == one).all() and three.sum() == 9 * one.sum()
    assert F.text_size("A7", 3) == (33, 27)
    with pytest.raises(ValueError, match="no glyph for '€'"):
        F.text_mask("5€", 2)


# A fixed digest of the drawn pixels: any change to the font, tag placement or blending shows here
# first (then update it deliberately with the goldens).
def test_tags_draw_known_pixels():
    img = np.full((120, 200, 3), 90, np.uint8)
    masks = [np.zeros((120, 200), bool) for _ in range(2)]
    masks[0][10:70, 10:90] = True
    masks[1][40:110, 100:190] = True
    out = R.draw_regions(
        img,
        masks,
        [(230, 0, 0), (255, 225, 0)],
        "marks",
        alpha=0.4,
        thickness=2,
        tags=["12", "B"],
        text_rgb=(255, 255, 255),
    )
    digest = hashlib.sha256(out.tobytes()).hexdigest()
    again = R.draw_regions(
        img,
        masks,
        [(230, 0, 0), (255, 225, 0)],
        "marks",
        alpha=0.4,
        thickness=2,
        tags=["12", "B"],
        text_rgb=(255, 255, 255),
    )
    assert hashlib.sha256(again.tobytes()).hexdigest() == digest
    white = (out == 255).all(axis=2)
    assert white[10:70, 10:90].sum() > 20 and white[40:110, 100:190].sum() > 20  # both tags' ink


def _ring(h: int = 200, w: int = 300) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    r2 = (xx - 150) ** 2 + (yy - 100) ** 2
    return (r2 < 80**2) & (r2 > 30**2)


def test_upstream_rule_draws_holes_at_thickness_two_on_any_size():
    ring = _ring()
    out, layout = R.draw_upstream_mmvm(np.zeros((200, 300, 3), np.uint8), [ring], [(0, 255, 255)])
    assert layout is None
    drawn = (out == (0, 255, 255)).all(axis=2)
    assert drawn[100, 150 - 30 : 150 - 26].any(), "the hole's contour is drawn (tree retrieval)"
    assert not drawn[100, 140:160].any()
    big = np.zeros((1080, 1920), bool)
    big[200:800, 300:1500] = True
    out_big, _ = R.draw_upstream_mmvm(np.zeros((1080, 1920, 3), np.uint8), [big], [(0, 255, 255)])
    row = (out_big[500] == (0, 255, 255)).all(axis=1)
    scaled = R.draw_regions(
        np.zeros((1080, 1920, 3), np.uint8),
        [big],
        [(0, 255, 255)],
        "contour",
        alpha=0.4,
        thickness=R.scaled_thickness(2, (1080, 1920)),
    )
    scaled_row = (scaled[500] == (0, 255, 255)).all(axis=1)
    assert 1 <= row[280:320].sum() <= 3 < scaled_row[280:320].sum()  # thickness 2 at 1920x1080 too


def test_upstream_font_rule_fifteen_percent_of_the_largest_piece_then_minimum():
    big = np.zeros((600, 900), bool)
    big[0:400, 0:600] = True  # 15% of 400 = 60 px: 60 // 7 = 8
    small = np.zeros((600, 900), bool)
    small[450:590, 650:880] = True  # 15% of 140 = 21 px: 3
    masks = [big, small]
    _out, layout = R.draw_upstream_mmvm(
        np.zeros((600, 900, 3), np.uint8), masks, [(230, 0, 0), (0, 90, 255)], tags=["3", "11"]
    )
    assert layout is not None
    assert layout.per_object_scale == (8, 3) and layout.scale == 3
    assert layout.centres[0] == (299, 199)  # centroid of the piece (polygon moments)
    tiny = np.zeros((600, 900), bool)
    tiny[5:15, 700:712] = True  # nothing fits: the fallback scale
    _, fallback = R.draw_upstream_mmvm(
        np.zeros((600, 900, 3), np.uint8), [big, tiny], [(1, 2, 3), (4, 5, 6)], tags=["3", "4"]
    )
    assert fallback is not None and fallback.scale == R.UPSTREAM_MIN_SCALE


def test_identity_follows_pixels_not_encoder_bytes():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
    image = encode_image(pixels, ImagePolicy(format="png"), "Image 1")
    assert image.sha256 == pixel_identity(pixels, {"format": "png"})
    other_bytes = cv2.imencode(".png", pixels[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes()
    assert hashlib.sha256(other_bytes).hexdigest() != image.bytes_sha256  # another zlib setting: other bytes
    decoded = cv2.imdecode(np.frombuffer(other_bytes, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    assert pixel_identity(decoded, {"format": "png"}) == image.sha256  # ... the same identity
    jpeg = encode_image(pixels, ImagePolicy(format="jpeg", jpeg_quality=90), "Image 1")
    assert jpeg.sha256 != image.sha256  # lossy: the decoded pixels differ
    assert jpeg.sha256 == identity_of_bytes(jpeg.data)  # recomputable from what a server receives
    assert jpeg.sha256 != encode_image(pixels, ImagePolicy(format="jpeg", jpeg_quality=80), "Image 1").sha256
