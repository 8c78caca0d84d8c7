"""How MMVM marks its images and words its question: facts of the upstream format.

The upstream MMVM images carry their marks (the query in cyan; each candidate in its own colour
with a white numeric id on a box of that colour) and the TSV carries the question in fixed words
with "A. <id>" option lines (docs/formats.md section 2.2). The loader checks against these rules,
the synthetic generator writes data by them and the prompt protocol redraws marks with them, so
they live here, below all three.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from cvbench.core.types import OPTION_LETTERS, Option
from cvbench.imaging.render import (
    MMVM_STYLES,
    QUERY_CYAN,
    PaletteColour,
    draw_regions,
    palette,
    scaled_thickness,
    tag_font,
)

MMVM_QUESTION_BODY = (
    "Here are two images. In the second image, I have marked several visual objects with their contours in "
    "different colors, and each is identified by a white numeric ID against a background that matches the "
    "contour's color. Could you please tell me which of these marked objects is the same as the object marked "
    "with a cyan contour in the first image? Please make a choice from the following options: "
)
NONE_OF_THE_ABOVE = "None of the above choices are correct"
MAX_ID_OPTIONS = 25
TAG_TEXT_RGB = (255, 255, 255)

# The same question for the other styles: only the words for the marks change.
_STYLE_BODIES: dict[str, str] = {
    "upstream": MMVM_QUESTION_BODY,
    "contour": MMVM_QUESTION_BODY,
    "mask": (
        "Here are two images. In the second image, I have marked several visual objects with semi-transparent "
        "masks in different colors, and each is identified by a white numeric ID against a background that matches "
        "the mask's color. Could you please tell me which of these marked objects is the same as the object marked "
        "with a cyan mask in the first image? Please make a choice from the following options: "
    ),
    "box": (
        "Here are two images. In the second image, I have marked several visual objects with bounding boxes in "
        "different colors, and each is identified by a white numeric ID against a background that matches the "
        "box's color. Could you please tell me which of these marked objects is the same as the object marked "
        "with a cyan box in the first image? Please make a choice from the following options: "
    ),
    "marks": (
        "Here are two images. In the second image, I have marked several visual objects with semi-transparent "
        "masks and outlines in different colors, and each is identified by a white numeric ID against a background "
        "that matches the mark's color. Could you please tell me which of these marked objects is the same as the "
        "object marked in cyan in the first image? Please make a choice from the following options: "
    ),
}


# ------------------------------------------------------------------------------ text


def id_order_key(region_id: str | int) -> tuple[int, int | str]:
    text = str(region_id).strip()
    return (0, int(text)) if text.isdigit() else (1, text)


def mmvm_options(candidate_ids: Iterable[str | int]) -> tuple[Option, ...]:
    """Options "A. <id>" with ids ascending (at most 25), then "<next>. None of the above choices are correct"."""
    ids = sorted({str(i).strip() for i in candidate_ids}, key=id_order_key)[:MAX_ID_OPTIONS]
    options = [Option(OPTION_LETTERS[k], i) for k, i in enumerate(ids)]
    options.append(Option(OPTION_LETTERS[len(ids)], NONE_OF_THE_ABOVE))
    return tuple(options)


def upstream_option_ids(ids: Sequence[str], rng: np.random.Generator) -> tuple[str, ...]:
    """The ids offered as options, by upstream's rule (CoLVA demo `chat_with_colva.py`): with more
    than 25 candidates, the FIRST 25 OF A SHUFFLE of the ids (so the match may be left out and "None
    of the above" become correct), then sorted; otherwise all ids, sorted. The shuffle is drawn
    from `rng` (upstream's is unseeded)."""
    ordered = sorted((str(i).strip() for i in ids), key=id_order_key)
    if len(ordered) <= MAX_ID_OPTIONS:
        return tuple(ordered)
    shuffled = [ordered[int(k)] for k in rng.permutation(len(ordered))]
    return tuple(sorted(shuffled[:MAX_ID_OPTIONS], key=id_order_key))


def question_body(style: str = "contour") -> str:
    if style not in _STYLE_BODIES:
        raise ValueError(f"unknown style {style!r}; expected one of {', '.join(MMVM_STYLES)}")
    return _STYLE_BODIES[style]


def mmvm_question(options: Sequence[Option], style: str = "contour") -> str:
    """The full question: the body, a newline, then each option line followed by a newline (as upstream)."""
    if not options:
        raise ValueError("an MMVM question needs options")
    return question_body(style) + "\n" + "".join(o.line + "\n" for o in options)


# ------------------------------------------------------------------------------ rendering


def render_query_view(
    image: np.ndarray, mask: np.ndarray, *, style: str = "contour", alpha: float = 0.4, thickness: int = 2
) -> np.ndarray:
    """The query object in cyan, no tag; thickness 2 on images up to 1024 px, scaled up beyond."""
    px = scaled_thickness(thickness, image.shape[:2])
    return draw_regions(image, [mask], [QUERY_CYAN], "mask" if style == "marks" else style, alpha=alpha, thickness=px)


def candidate_colours(n: int, rng: np.random.Generator) -> tuple[PaletteColour, ...]:
    """The n most distinct palette colours (none near white or cyan), assigned in an order drawn from rng."""
    colours = palette(n)
    return tuple(colours[i] for i in rng.permutation(n))


def render_candidate_view(
    image: np.ndarray,
    masks: Sequence[np.ndarray],
    ids: Sequence[str | int],
    rng: np.random.Generator,
    *,
    style: str = "contour",
    alpha: float = 0.4,
    thickness: int = 2,
    colours: Sequence[PaletteColour] | None = None,
) -> np.ndarray:
    """Each candidate in its own colour, with its id in white on a box of that colour (one font per image).

    Colours: `colours` when given, else ``candidate_colours(len(masks), rng)`` (rng is used for nothing else).
    """
    if len(masks) != len(ids):
        raise ValueError(f"{len(masks)} masks but {len(ids)} ids")
    chosen = tuple(colours) if colours is not None else candidate_colours(len(masks), rng)
    px = scaled_thickness(thickness, image.shape[:2])
    return draw_regions(
        image,
        masks,
        [c.rgb for c in chosen],
        style,
        alpha=alpha,
        thickness=px,
        tags=[str(i) for i in ids],
        text_rgb=TAG_TEXT_RGB,
        font=tag_font(image.shape[:2]),
    )
