"""Ablations: the same prompt with one kind of evidence taken away (`cvbench run --ablate KIND`).

A pure transform of what the protocol produced, applied by ``build_prompt`` (docs/ablations.md):

- ``images`` ("blind"): every image the model receives is replaced by a uniform grey blank of the
  same size and format (after layout, so a stacked image is blank too); the text is unchanged. In
  native mode the original images handed to the model are blank as well; the masks are kept, so
  a native model still receives the region shapes (the only evidence left).
- ``marks`` ("unmarked"): the views are shown without overlays (the original images, fitted to
  the same image policy); the text is unchanged, so it still names marks that are not drawn. In
  native mode every mask becomes the whole image: the region tokens still exist but no longer
  point at any object.
- ``text`` ("options only"): CrossViewBench overlay mode only. The question stem is replaced by
  a fixed instruction, the marked images and the option lines are kept. Refused for MMVM (its
  stem is one fixed template for every question: removing it removes no question-specific
  information) and for native mode (the `<region>` tokens live in the stem).

Public API
----------
- ``ABLATIONS``, ``ROW_KINDS`` (kind -> leaderboard row label), ``AblationError(ValueError)``
- ``check_ablation(ablation, benchmark, mode)``: raises when the ablation means nothing there
- ``check_run_ablation(ablation, benchmarks, mode, native_regions)``: the same, for a whole run
- ``ablate_output(out, sample, ablation, mode, policy) -> ProtocolOutput``: before presentation
- ``ablate_images(images, ablation) -> tuple[PromptImage, ...]``: after presentation
- ``ablation_record(ablation) -> dict``: what config.json and results.json record
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from cvbench.core.types import NativeRegions, NativeView, PromptImage, Sample
from cvbench.imaging.images import load_image
from cvbench.prompting.encoding import ImagePolicy, encode_image, fitted_size, resize_rgb
from cvbench.prompting.protocols import ProtocolOutput

__all__ = [
    "ABLATIONS",
    "BLANK_RGB",
    "ROW_KINDS",
    "TEXT_ABLATION_STEM",
    "AblationError",
    "ablate_images",
    "ablate_output",
    "ablation_record",
    "check_ablation",
    "check_run_ablation",
]

ABLATIONS: tuple[str, ...] = ("images", "marks", "text")
# how an ablated run is labelled beside its model (leaderboard rows, compare)
ROW_KINDS: dict[str, str] = {"images": "blind", "marks": "unmarked", "text": "options only"}
BLANK_RGB: tuple[int, int, int] = (128, 128, 128)
TEXT_ABLATION_STEM = "Answer with the letter of one option."
_MIMES_TO_FORMAT = {"image/png": "png", "image/jpeg": "jpeg"}


class AblationError(ValueError):
    """An ablation that means nothing for this benchmark or mode; the message says why."""


def check_ablation(ablation: str | None, benchmark: str, mode: str) -> None:
    """Raise AblationError when `ablation` cannot be applied to `benchmark` prompts in `mode`."""
    if ablation is None:
        return
    if ablation not in ABLATIONS:
        raise AblationError(f"ablation must be one of {', '.join(ABLATIONS)}, got {ablation!r}")
    if ablation != "text":
        return
    if benchmark == "mmvm":
        raise AblationError(
            "--ablate text is refused for MMVM: its question stem is the same fixed template for every "
            "question, so removing it removes no question-specific information (only the instruction); "
            "use --ablate images (blind) or --ablate marks (docs/ablations.md)"
        )
    if mode == "native":
        raise AblationError(
            "--ablate text is refused in native mode: the <region> tokens that tie the masks to the "
            "question live in the question stem; use --mode overlay, or --ablate images/marks (docs/ablations.md)"
        )


def _original_view(sample: Sample, index: int, policy: ImagePolicy) -> np.ndarray:
    """View `index`'s original image fitted to the policy: what the protocol draws marks on."""
    original = load_image(sample.views[index].image)
    return resize_rgb(original, fitted_size(original.shape[:2], policy))


def _blank_native(native: NativeRegions) -> NativeRegions:
    views = tuple(replace(v, image=_blank(v.image.shape[0], v.image.shape[1])) for v in native.views)
    return replace(native, views=views)


def _whole_image_masks(native: NativeRegions) -> NativeRegions:
    views: list[NativeView] = []
    for v in native.views:
        full = np.ones(v.image.shape[:2], dtype=bool)
        views.append(replace(v, masks=tuple(full for _ in v.masks)))
    return replace(native, views=tuple(views))


def _blank(height: int, width: int) -> np.ndarray:
    out = np.empty((height, width, 3), np.uint8)
    out[:] = BLANK_RGB
    return out


def ablate_output(
    out: ProtocolOutput, sample: Sample, ablation: str | None, mode: str, policy: ImagePolicy
) -> ProtocolOutput:
    """The protocol output with the text, marks or native regions ablated (images are blanked
    later, by `ablate_images`, on exactly what is sent). Records the ablation in the protocol record."""
    if ablation is None:
        return out
    check_ablation(ablation, sample.benchmark, mode)
    record: dict[str, Any] = {**out.record, "ablation": _record(ablation, mode)}
    if ablation == "images":
        native = _blank_native(out.native) if out.native is not None else None
        return replace(out, native=native, record=record)
    if ablation == "marks":
        if len(out.views) != len(sample.views):
            raise AblationError(
                f"sample {sample.sample_id}: the protocol shows {len(out.views)} views for "
                f"{len(sample.views)} in the sample; cannot tell which original each one is"
            )
        views = tuple(_original_view(sample, k, policy) for k in range(len(sample.views)))
        native = _whole_image_masks(out.native) if out.native is not None else None
        return replace(out, views=views, native=native, record=record)
    if not out.options:
        raise AblationError(f"sample {sample.sample_id}: --ablate text keeps only the options, but it has none")
    text = TEXT_ABLATION_STEM + "\n\n" + "\n".join(o.line for o in out.options)
    return replace(out, text=text, record=record)


def _record(ablation: str, mode: str) -> dict[str, Any]:
    what = {
        "images": "every image sent is a uniform blank of the same size"
        + ("; native images blank, masks kept" if mode == "native" else ""),
        "marks": "original images without overlays; text unchanged"
        + ("; every native mask is the whole image" if mode == "native" else ""),
        "text": f"question stem replaced by {TEXT_ABLATION_STEM!r}; images and options kept",
    }[ablation]
    return {"kind": ablation, "row_kind": ROW_KINDS[ablation], "what": what, "blank_rgb": list(BLANK_RGB)}


def ablate_images(images: tuple[PromptImage, ...], ablation: str | None) -> tuple[PromptImage, ...]:
    """Under the images ablation, each image replaced by a blank of its size, format and label."""
    if ablation != "images":
        return images
    out = []
    for image in images:
        policy = ImagePolicy(format=_MIMES_TO_FORMAT.get(image.mime, "png"))
        out.append(encode_image(_blank(image.height, image.width), policy, image.label))
    return tuple(out)


def check_run_ablation(ablation: str | None, benchmarks: list[str], mode: str, native_regions: bool) -> None:
    """`check_ablation` for every benchmark of a run before it starts (mode "auto" resolved as
    `build.resolve_mode` does: native for a model that declares native regions)."""
    effective = ("native" if native_regions else "overlay") if mode == "auto" else mode
    for benchmark in dict.fromkeys(benchmarks):
        check_ablation(ablation, benchmark, effective)


def ablation_record(ablation: str) -> dict[str, str]:
    """config.json and results.json (`model.ablation`) of an ablated run: the kind and its row label."""
    return {"kind": ablation, "row_kind": ROW_KINDS[ablation]}
