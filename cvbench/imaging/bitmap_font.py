"""A 5x9 bitmap font drawn by hand for this project, and text rasterised from it.

Why not a library font: OpenCV's Hershey text (``putText``/``getTextSize``) draws different
pixels in each of opencv 4.8, 5.0 and 5.1 (measured; see docs/visual-prompting.md), and
FreeType output depends on the FreeType build. Text drawn here is integer-only block scaling
of fixed bitmaps, so every supported library version gives the same pixels.

Each glyph is 5 columns by 9 rows: rows 0-6 hold capitals and digits, rows 2-6 the x-height,
rows 7-8 descenders. Glyphs are advanced by 6 columns (one blank column between letters).

Public API
----------
- ``GLYPH_W``, ``GLYPH_H``, ``ADVANCE``, ``CAP_ROWS``; ``has_glyph(ch)``
- ``text_mask(text, scale) -> ndarray``: bool ink mask, (9*scale) x (6*len-1)*scale
- ``text_size(text, scale) -> (width, height)``
- ``outline(ink, radius) -> ndarray``: the ink grown by `radius` px (a legibility halo)
"""

from __future__ import annotations

from functools import lru_cache
from typing import cast

import numpy as np

GLYPH_W, GLYPH_H, ADVANCE, CAP_ROWS = 5, 9, 6, 7

_ROWS: dict[str, str] = {
    " ": "..... ..... ..... ..... ..... ..... ..... ..... .....",
    "0": ".###. #...# #..## #.#.# ##..# #...# .###. ..... .....",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###. ..... .....",
    "2": ".###. #...# ....# ...#. ..#.. .#... ##### ..... .....",
    "3": "####. ....# ....# .###. ....# ....# ####. ..... .....",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#. ..... .....",
    "5": "##### #.... ####. ....# ....# #...# .###. ..... .....",
    "6": "..##. .#... #.... ####. #...# #...# .###. ..... .....",
    "7": "##### ....# ...#. ..#.. .#... .#... .#... ..... .....",
    "8": ".###. #...# #...# .###. #...# #...# .###. ..... .....",
    "9": ".###. #...# #...# .#### ....# ...#. .##.. ..... .....",
    "A": ".###. #...# #...# ##### #...# #...# #...# ..... .....",
    "B": "####. #...# #...# ####. #...# #...# ####. ..... .....",
    "C": ".###. #...# #.... #.... #.... #...# .###. ..... .....",
    "D": "###.. #..#. #...# #...# #...# #..#. ###.. ..... .....",
    "E": "##### #.... #.... ####. #.... #.... ##### ..... .....",
    "F": "##### #.... #.... ####. #.... #.... #.... ..... .....",
    "G": ".###. #...# #.... #.### #...# #...# .#### ..... .....",
    "H": "#...# #...# #...# ##### #...# #...# #...# ..... .....",
    "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###. ..... .....",
    "J": "..### ...#. ...#. ...#. ...#. #..#. .##.. ..... .....",
    "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...# ..... .....",
    "L": "#.... #.... #.... #.... #.... #.... ##### ..... .....",
    "M": "#...# ##.## #.#.# #.#.# #...# #...# #...# ..... .....",
    "N": "#...# #...# ##..# #.#.# #..## #...# #...# ..... .....",
    "O": ".###. #...# #...# #...# #...# #...# .###. ..... .....",
    "P": "####. #...# #...# ####. #.... #.... #.... ..... .....",
    "Q": ".###. #...# #...# #...# #.#.# #..#. .##.# ..... .....",
    "R": "####. #...# #...# ####. #.#.. #..#. #...# ..... .....",
    "S": ".#### #.... #.... .###. ....# ....# ####. ..... .....",
    "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..... .....",
    "U": "#...# #...# #...# #...# #...# #...# .###. ..... .....",
    "V": "#...# #...# #...# #...# #...# .#.#. ..#.. ..... .....",
    "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#. ..... .....",
    "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...# ..... .....",
    "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#.. ..... .....",
    "Z": "##### ....# ...#. ..#.. .#... #.... ##### ..... .....",
    "a": "..... ..... .###. ....# .#### #...# .#### ..... .....",
    "b": "#.... #.... ####. #...# #...# #...# ####. ..... .....",
    "c": "..... ..... .###. #.... #.... #.... .###. ..... .....",
    "d": "....# ....# .#### #...# #...# #...# .#### ..... .....",
    "e": "..... ..... .###. #...# ##### #.... .###. ..... .....",
    "f": "..##. .#..# .#... ###.. .#... .#... .#... ..... .....",
    "g": "..... ..... .#### #...# #...# #...# .#### ....# .###.",
    "h": "#.... #.... ####. #...# #...# #...# #...# ..... .....",
    "i": "..#.. ..... .##.. ..#.. ..#.. ..#.. .###. ..... .....",
    "j": "...#. ..... ..##. ...#. ...#. ...#. ...#. #..#. .##..",
    "k": "#.... #.... #..#. #.#.. ##... #.#.. #..#. ..... .....",
    "l": ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###. ..... .....",
    "m": "..... ..... ##.#. #.#.# #.#.# #.#.# #.#.# ..... .....",
    "n": "..... ..... ####. #...# #...# #...# #...# ..... .....",
    "o": "..... ..... .###. #...# #...# #...# .###. ..... .....",
    "p": "..... ..... ####. #...# #...# #...# ####. #.... #....",
    "q": "..... ..... .#### #...# #...# #...# .#### ....# ....#",
    "r": "..... ..... #.##. ##..# #.... #.... #.... ..... .....",
    "s": "..... ..... .#### #.... .###. ....# ####. ..... .....",
    "t": ".#... .#... ###.. .#... .#... .#..# ..##. ..... .....",
    "u": "..... ..... #...# #...# #...# #..## .##.# ..... .....",
    "v": "..... ..... #...# #...# #...# .#.#. ..#.. ..... .....",
    "w": "..... ..... #...# #...# #.#.# #.#.# .#.#. ..... .....",
    "x": "..... ..... #...# .#.#. ..#.. .#.#. #...# ..... .....",
    "y": "..... ..... #...# #...# #...# #...# .#### ....# .###.",
    "z": "..... ..... ##### ...#. ..#.. .#... ##### ..... .....",
    "-": "..... ..... ..... ##### ..... ..... ..... ..... .....",
    ".": "..... ..... ..... ..... ..... .##.. .##.. ..... .....",
    ":": "..... .##.. .##.. ..... .##.. .##.. ..... ..... .....",
    "(": "...#. ..#.. .#... .#... .#... ..#.. ...#. ..... .....",
    ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#... ..... .....",
    "#": ".#.#. ##### .#.#. .#.#. ##### .#.#. ..... ..... .....",
    "?": ".###. #...# ....# ...#. ..#.. ..... ..#.. ..... .....",
    "/": "....# ...#. ...#. ..#.. .#... .#... #.... ..... .....",
}


def _parse(rows: str) -> np.ndarray:
    lines = rows.split()
    if len(lines) != GLYPH_H or any(len(line) != GLYPH_W for line in lines):
        raise ValueError(f"malformed glyph rows {rows!r}")
    return np.array([[c == "#" for c in line] for line in lines], dtype=bool)


GLYPHS: dict[str, np.ndarray] = {ch: _parse(rows) for ch, rows in _ROWS.items()}


def has_glyph(ch: str) -> bool:
    return ch in GLYPHS


def text_size(text: str, scale: int) -> tuple[int, int]:
    """(width, height) in px of `text` at integer `scale` (height always covers descenders)."""
    if scale < 1:
        raise ValueError(f"text scale must be an integer >= 1, got {scale}")
    n = len(text)
    return (max(0, n * ADVANCE - 1) * scale, GLYPH_H * scale)


@lru_cache(maxsize=1024)
def _text_mask_cached(text: str, scale: int) -> np.ndarray:
    missing = sorted({ch for ch in text if ch not in GLYPHS})
    if missing:
        raise ValueError(f"no glyph for {''.join(missing)!r} in the built-in font (text {text!r})")
    width = max(0, len(text) * ADVANCE - 1)
    unit = np.zeros((GLYPH_H, width), dtype=bool)
    for i, ch in enumerate(text):
        unit[:, i * ADVANCE : i * ADVANCE + GLYPH_W] = GLYPHS[ch]
    mask = np.repeat(np.repeat(unit, scale, axis=0), scale, axis=1)
    mask.setflags(write=False)
    return mask


def text_mask(text: str, scale: int) -> np.ndarray:
    """The ink of `text`: a read-only bool array of shape text_size(text, scale)[::-1]."""
    text_size(text, scale)  # validates the scale
    return _text_mask_cached(text, int(scale))


def outline(ink: np.ndarray, radius: int) -> np.ndarray:
    """`ink` grown by `radius` px in the 8 directions (a square structuring element), padded so
    that nothing is cut at the edges: the result is (h + 2r) x (w + 2r)."""
    if radius < 0:
        raise ValueError(f"outline radius must be >= 0, got {radius}")
    h, w = ink.shape
    padded = np.zeros((h + 2 * radius, w + 2 * radius), dtype=bool)
    padded[radius : radius + h, radius : radius + w] = ink
    grown = padded.copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy or dx:
                grown[max(0, dy) : h + 2 * radius + min(0, dy), max(0, dx) : w + 2 * radius + min(0, dx)] |= padded[
                    max(0, -dy) : h + 2 * radius + min(0, -dy), max(0, -dx) : w + 2 * radius + min(0, -dx)
                ]
    return cast("np.ndarray", grown)
