"""Ink masks for what is printed on objects: short texts and marker symbols (pure, cached)."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from cvbench.imaging.bitmap_font import CAP_ROWS, text_mask

MARKERS: tuple[str, ...] = ("dot", "cross", "triangle", "star", "stripes", "diamond", "ring", "checker")
_S = 96  # texture rows


@lru_cache(maxsize=256)
def decal_texture(kind: str, value: str) -> np.ndarray:
    """Ink coverage in [0, 1] as a float64 (rows, cols) array; rows run top to bottom."""
    if kind == "text":
        return _text(value)
    if kind == "marker":
        return _marker(value)
    raise ValueError(f"unknown decal kind {kind!r} (expected 'text' or 'marker')")


def _text(text: str) -> np.ndarray:
    """Block capitals from the built-in bitmap font, about 60% of the texture tall (no library
    text renderer: those draw different pixels across versions)."""
    scale = round(_S * 0.6 / CAP_ROWS)
    ink = text_mask(text, scale)[: CAP_ROWS * scale]
    width = max(_S, int(ink.shape[1] + _S * 0.2))
    canvas = np.zeros((_S, width), dtype=np.float64)
    x, y = (width - ink.shape[1]) // 2, (_S - ink.shape[0]) // 2
    canvas[y : y + ink.shape[0], x : x + ink.shape[1]][ink] = 1.0
    return canvas


def _marker(name: str) -> np.ndarray:
    if name not in MARKERS:
        raise ValueError(f"unknown marker {name!r}; expected one of {MARKERS}")
    s = _S
    c = s // 2
    img = np.zeros((s, s), dtype=np.uint8)
    if name == "dot":
        cv2.circle(img, (c, c), int(s * 0.36), 255, -1, cv2.LINE_AA)
    elif name == "ring":
        cv2.circle(img, (c, c), int(s * 0.34), 255, int(s * 0.12), cv2.LINE_AA)
    elif name == "cross":
        w = int(s * 0.13)
        cv2.line(img, (int(s * 0.18), int(s * 0.18)), (int(s * 0.82), int(s * 0.82)), 255, w, cv2.LINE_AA)
        cv2.line(img, (int(s * 0.82), int(s * 0.18)), (int(s * 0.18), int(s * 0.82)), 255, w, cv2.LINE_AA)
    elif name == "triangle":
        pts = np.array([[c, int(s * 0.12)], [int(s * 0.9), int(s * 0.85)], [int(s * 0.1), int(s * 0.85)]], np.int32)
        cv2.fillPoly(img, [pts], 255, cv2.LINE_AA)
    elif name == "diamond":
        pts = np.array([[c, int(s * 0.08)], [int(s * 0.88), c], [c, int(s * 0.92)], [int(s * 0.12), c]], np.int32)
        cv2.fillPoly(img, [pts], 255, cv2.LINE_AA)
    elif name == "star":
        ang = np.pi / 2 + np.arange(10) * np.pi / 5
        rad = np.where(np.arange(10) % 2 == 0, s * 0.44, s * 0.18)
        pts = np.stack([c + rad * np.cos(ang), c - rad * np.sin(ang)], axis=1).astype(np.int32)
        cv2.fillPoly(img, [pts], 255, cv2.LINE_AA)
    elif name == "stripes":
        for k in range(3):
            y0 = int(s * (0.12 + 0.29 * k))
            cv2.rectangle(img, (int(s * 0.08), y0), (int(s * 0.92), y0 + int(s * 0.16)), 255, -1)
    elif name == "checker":
        q = s // 4
        for i in range(4):
            for j in range(4):
                if (i + j) % 2 == 0:
                    img[i * q : (i + 1) * q, j * q : (j + 1) * q] = 255
    return img.astype(np.float64) / 255.0
