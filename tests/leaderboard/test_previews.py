"""Downscaled JPEG previews for the sample browser (pure functions)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cvbench.leaderboard.previews import PreviewSettings, preview_jpeg, preview_size


@pytest.mark.parametrize(
    ("size", "max_side", "expected"),
    [
        ((1920, 1080), 1024, (1024, 576)),
        ((1080, 1920), 1024, (576, 1024)),
        ((1280, 720), 1280, (1280, 720)),  # exactly the limit: kept
        ((640, 480), 1024, (640, 480)),  # never enlarged
        ((4000, 3), 100, (100, 1)),  # never collapses to zero
    ],
)
def test_preview_size(size: tuple[int, int], max_side: int, expected: tuple[int, int]) -> None:
    assert preview_size(*size, max_side) == expected


def test_preview_is_a_deterministic_downscaled_jpeg() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(1080, 1920, 3), dtype=np.uint8)
    rgb[200:600, 300:900] = (255, 0, 0)
    settings = PreviewSettings(max_side=1024, quality=85)
    data = preview_jpeg(rgb, settings)
    assert data == preview_jpeg(rgb, settings)
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG" and im.size == (1024, 576) and im.mode == "RGB"
        red = np.asarray(im)[200:300, 250:450].astype(int).mean(axis=(0, 1))
    assert red[0] > 200 and red[1] < 60 and red[2] < 60  # the content survives the downscale
    assert len(data) < rgb.nbytes // 4


def test_bad_settings_and_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        PreviewSettings(max_side=8)
    with pytest.raises(ValueError, match="quality"):
        PreviewSettings(quality=100)
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        preview_jpeg(np.zeros((10, 10), dtype=np.uint8), PreviewSettings())
    assert PreviewSettings(max_side=512, quality=70).suffix == ".preview-512-q70.jpg"
