"""Visual prompting: a Sample plus the model's declared capabilities -> the Prompt it receives.

The benchmark's protocol (``cvbench.prompting.protocols``) decides the marks and the wording;
this module picks the mode from the model's capabilities (never from its name), presents the
images (resize policy, encoding, vertical stacking for single-image models) and records
everything that decided what the model saw in ``Prompt.protocol``.

Public API
----------
- ``PromptSettings(mode="auto", style=None, alpha=0.4, thickness=2, image=ImagePolicy(), seed=0, ablation=None)``
  with ``style_for(benchmark) -> str`` and ``as_dict() -> dict`` (provenance).
  mode: "auto" | "overlay" | "native" | "prerendered"; style: "contour" | "mask" | "box" | "marks"
  or None for the benchmark default (MMVM: contour, CrossViewBench: mask).
- ``resolve_mode(sample, settings, capabilities) -> str``: auto gives native to a model that
  declares native regions and overlay to every other; prerendered only on request, only for
  MMVM samples that ship overlays and the TSV question.
- ``build_prompt(sample, settings, capabilities, setting="all") -> Prompt``; raises
  ``PromptError`` (a ValueError naming the sample and its source) when the sample cannot be shown.
- I/O edge for ``cvbench render``: ``find_sample(task, sample_id, data_dir=None) -> Sample`` and
  ``write_prompt_files(prompt, out_dir) -> list[Path]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cvbench.core import options as declared
from cvbench.core.types import (
    Capabilities,
    ImageRef,
    Prompt,
    PromptImage,
    PromptMode,
    RenderedPrompt,
    Sample,
    TaskFacts,
)
from cvbench.imaging.images import ImageError, load_image
from cvbench.imaging.masks import MaskError
from cvbench.imaging.render import ALL_STYLES
from cvbench.prompting.ablation import ABLATIONS, ablate_images, ablate_output
from cvbench.prompting.encoding import (
    EncodingError,
    ImagePolicy,
    concat_vertical,
    encode_image,
    fitted_size,
    passthrough_image,
    stacked_note,
)
from cvbench.prompting.protocols import ProtocolError, ProtocolOutput, ShippedImage
from cvbench.prompting.protocols.crossviewbench import build_crossviewbench
from cvbench.prompting.protocols.mmvm import build_mmvm
from cvbench.tasks.loading import iter_task_samples
from cvbench.tasks.registry import get_task

__all__ = [
    "DEFAULT_STYLES",
    "MODES",
    "PromptError",
    "PromptSettings",
    "build_prompt",
    "find_sample",
    "resolve_mode",
    "write_prompt_files",
]

MODES: tuple[str, ...] = ("auto", "overlay", "native", "prerendered")
DEFAULT_STYLES: dict[str, str] = {"mmvm": "upstream", "crossviewbench": "mask"}


class PromptError(ValueError):
    """A sample that cannot be rendered into a prompt; the message names the sample."""


@dataclass(frozen=True)
class PromptSettings:
    mode: str = declared.MODE.default
    style: str | None = declared.STYLE.default  # None: the benchmark's default style
    alpha: float = declared.ALPHA.default  # fill opacity for the "mask" and "marks" styles
    thickness: int = declared.THICKNESS.default  # line width at <= 1024 px on the long side (scaled up beyond)
    image: ImagePolicy = field(default_factory=ImagePolicy)
    seed: int = declared.SEED.default
    ablation: str | None = None  # "images" | "marks" | "text" (cvbench.prompting.ablation); None: none

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"prompt mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.style is not None and self.style not in ALL_STYLES:
            raise ValueError(f"overlay style must be one of {', '.join(ALL_STYLES)}, got {self.style!r}")
        declared.check_fields(self, (declared.ALPHA, declared.THICKNESS, declared.SEED))  # OptionError: a ValueError
        if self.ablation is not None and self.ablation not in ABLATIONS:
            raise ValueError(f"ablation must be one of {', '.join(ABLATIONS)}, got {self.ablation!r}")

    def style_for(self, benchmark: str) -> str:
        if self.style is not None:
            return self.style
        if benchmark not in DEFAULT_STYLES:
            raise ValueError(f"no default overlay style for benchmark {benchmark!r}")
        return DEFAULT_STYLES[benchmark]

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "style": self.style,
            "default_styles": dict(DEFAULT_STYLES),
            "alpha": self.alpha,
            "thickness": self.thickness,
            "image": self.image.as_dict(),
            "seed": self.seed,
            # only when set: a run without an ablation keeps the settings (and cache keys) it always had
            **({"ablation": self.ablation} if self.ablation is not None else {}),
        }


def _has_prerendered(sample: Sample) -> bool:
    return (
        sample.benchmark == "mmvm"
        and bool(sample.prerendered_question)
        and all(v.prerendered is not None for v in sample.views)
    )


def resolve_mode(sample: Sample, settings: PromptSettings, capabilities: Capabilities) -> PromptMode:
    """The mode for this sample and model: "overlay" | "native" | "prerendered"."""
    if settings.mode == "auto":
        return "native" if capabilities.native_regions else "overlay"
    if settings.mode == "native" and not capabilities.native_regions:
        raise PromptError(
            f"{sample.source} [{sample.sample_id}]: mode 'native' was requested but the model does "
            f"not declare native region inputs; use mode auto or overlay"
        )
    if settings.mode == "prerendered" and not _has_prerendered(sample):
        what = (
            "only MMVM samples ship pre-rendered overlays"
            if sample.benchmark != "mmvm"
            else "the sample lacks its pre-rendered overlay images or TSV question"
        )
        raise PromptError(f"{sample.source} [{sample.sample_id}]: mode 'prerendered' is impossible: {what}")
    if settings.mode not in _MODES:
        raise PromptError(f"unknown prompt mode {settings.mode!r}; expected auto, overlay, native or prerendered")
    return _MODES[settings.mode]


_MODES: dict[str, PromptMode] = {"overlay": "overlay", "native": "native", "prerendered": "prerendered"}


def _present_one(
    view: np.ndarray | ShippedImage, label: str, policy: ImagePolicy, capabilities: Capabilities
) -> tuple[PromptImage, str]:
    if isinstance(view, ShippedImage):
        image = passthrough_image(view.data, view.width, view.height, label)
        if (
            fitted_size((view.height, view.width), policy) == (view.height, view.width)
            and image.mime in capabilities.image_formats
        ):
            return image, "shipped-bytes"
        return encode_image(load_image(ImageRef(view.path)), policy, label), "shipped-reencoded"
    return encode_image(view, policy, label), "rendered"


def _as_array(view: np.ndarray | ShippedImage) -> np.ndarray:
    return load_image(ImageRef(view.path)) if isinstance(view, ShippedImage) else view


def _present(
    out: ProtocolOutput, policy: ImagePolicy, capabilities: Capabilities
) -> tuple[tuple[PromptImage, ...], str, list[dict[str, Any]], str]:
    """(images, text, image records, layout)."""
    if policy.mime not in capabilities.image_formats:
        raise EncodingError(
            f"image format {policy.format} is not accepted by the model "
            f"(accepts {', '.join(capabilities.image_formats)})"
        )
    n = len(out.views)
    limit = capabilities.max_images
    if limit is not None and limit < 1:
        raise EncodingError(f"the model accepts max_images={limit}; cannot show {n} views")
    if limit is None or n <= limit:
        presented = [_present_one(v, label, policy, capabilities) for v, label in zip(out.views, out.view_labels)]
        images = tuple(img for img, _ in presented)
        records = [_image_record(img, how) for img, how in presented]
        return images, out.text, records, "separate"
    combined = concat_vertical([_as_array(v) for v in out.views], list(out.view_labels))
    image = encode_image(combined, policy, f"{out.view_labels[0]}-{out.view_labels[-1]} stacked")
    return (image,), stacked_note(n) + "\n\n" + out.text, [_image_record(image, "stacked")], "stacked"


def _image_record(image: PromptImage, how: str) -> dict[str, Any]:
    return {
        "label": image.label,
        "mime": image.mime,
        "width": image.width,
        "height": image.height,
        "identity": image.sha256,
        "source": how,
    }


def _strip_sample_prefix(message: str, sample_id: str) -> str:
    prefix = f"sample {sample_id}: "
    return message.removeprefix(prefix)


def build_prompt(
    sample: Sample, settings: PromptSettings, capabilities: Capabilities, setting: str = "all"
) -> RenderedPrompt:
    """Exactly what the model receives for this sample under this candidate setting (`.prompt`),
    with the answer and protocol record the runner keeps beside it."""
    mode = resolve_mode(sample, settings, capabilities)
    try:
        style = settings.style_for(sample.benchmark)
        if sample.benchmark == "mmvm":
            out = build_mmvm(
                sample,
                mode=mode,
                style=style,
                alpha=settings.alpha,
                thickness=settings.thickness,
                policy=settings.image,
                seed=settings.seed,
                setting=setting,
            )
        elif sample.benchmark == "crossviewbench":
            if setting != "all":
                raise ProtocolError(f"CrossViewBench has only the setting 'all', got {setting!r}")
            out = build_crossviewbench(
                sample,
                mode=mode,
                style=style,
                alpha=settings.alpha,
                thickness=settings.thickness,
                policy=settings.image,
            )
        else:
            raise ProtocolError(f"unknown benchmark {sample.benchmark!r}")
        out = ablate_output(out, sample, settings.ablation, mode, settings.image)
        images, text, image_records, layout = _present(out, settings.image, capabilities)
        if settings.ablation == "images":
            images = ablate_images(images, settings.ablation)
            image_records = [_image_record(img, "blank") for img in images]
    except (ProtocolError, EncodingError, ImageError, MaskError, ValueError) as exc:
        raise PromptError(
            f"{sample.source} [{sample.sample_id}]: {_strip_sample_prefix(str(exc), sample.sample_id)}"
        ) from exc
    protocol = {
        **out.record,
        "image_policy": settings.image.as_dict(),
        "image_layout": layout,
        "images": image_records,
        "capabilities": _capabilities_record(capabilities),
    }
    prompt = Prompt(
        sample_id=sample.sample_id,
        text=text,
        images=images,
        options=out.options,
        mode=mode,
        setting=setting,
        native=out.native,
        task=TaskFacts(sample.benchmark, sample.task_type),
    )
    return RenderedPrompt(prompt, out.answer, protocol)


def _capabilities_record(c: Capabilities) -> dict[str, Any]:
    return {"max_images": c.max_images, "native_regions": c.native_regions, "image_formats": list(c.image_formats)}


# ------------------------------------------------------------------------------ I/O edge: `cvbench render`


def find_sample(task: str, sample_id: str, data_dir: str | Path | None = None) -> Sample:
    """One sample of a task by id, through the task loaders (synthetic tasks are generated on first use)."""

    spec = get_task(task)
    seen = 0
    for item in iter_task_samples(spec, data_dir):
        seen += 1
        if isinstance(item, Sample):
            if item.sample_id == sample_id:
                return item
        elif item.sample_id == sample_id:
            raise PromptError(f"task {task}: sample {sample_id} is invalid: {item}")
    raise PromptError(f"task {task}: no sample with id {sample_id!r} among {seen} samples")


_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


def write_prompt_files(prompt: RenderedPrompt, out_dir: str | Path) -> list[Path]:
    """The exact images the model receives (view_<k>.<ext>, bytes unchanged), prompt.txt and prompt.json;
    in native mode also original_<v>.png and mask_<v>_<k>.png (0/255) per view and region."""
    import json

    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    image_files = []
    for k, image in enumerate(prompt.images):
        path = out / f"view_{k}.{_EXTENSIONS.get(image.mime, 'bin')}"
        path.write_bytes(image.data)
        written.append(path)
        image_files.append(
            {
                "file": path.name,
                "label": image.label,
                "mime": image.mime,
                "width": image.width,
                "height": image.height,
                "sha256": image.bytes_sha256,
                "identity": image.sha256,
            }
        )
    native_record: dict[str, Any] | None = None
    if prompt.native is not None:
        views = []
        for v, view in enumerate(prompt.native.views):
            original = out / f"original_{v}.png"
            Image.fromarray(view.image).save(original, compress_level=6)
            written.append(original)
            mask_files = []
            for k, mask in enumerate(view.masks):
                mask_path = out / f"mask_{v}_{k}.png"
                Image.fromarray(mask.astype(np.uint8) * 255).save(mask_path, compress_level=6)
                written.append(mask_path)
                mask_files.append(mask_path.name)
            views.append(
                {
                    "view_id": view.view_id,
                    "original": original.name,
                    "region_ids": list(view.region_ids),
                    "masks": mask_files,
                }
            )
        n = prompt.native
        native_record = {
            "views": views,
            "refs": [[r.view_index, r.region_index] for r in n.refs],
            "token_counts": list(n.token_counts) if n.token_counts is not None else None,
            "query": [n.query.view_index, n.query.region_index] if n.query is not None else None,
            "candidate_order": list(n.candidate_order),
        }
    text_path = out / "prompt.txt"
    text_path.write_text(prompt.text, encoding="utf-8")
    written.append(text_path)
    record = {
        "sample_id": prompt.sample_id,
        "mode": prompt.mode,
        "setting": prompt.setting,
        "text": prompt.text,
        "options": [[o.letter, o.text] for o in prompt.options],
        "answer": prompt.answer,
        "images": image_files,
        "native": native_record,
        "protocol": dict(prompt.protocol),
        "content_digest": prompt.prompt.content_digest(),
    }
    json_path = out / "prompt.json"
    json_path.write_text(json.dumps(record, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    written.append(json_path)
    return written
