"""What each API provider accepts as images, and fitting a prompt's images to it before any call.

An `ImageContract` is the provider's documented limits (formats, bytes per image and per request,
pixels per side, a count-dependent side limit) and the size it resizes to itself. From it:

- `run_image_policy` gives the run's `ImagePolicy`: the provider's effective size (no bytes or
  CPU spent on pixels the model never sees) and JPEG 4:4:4 at quality 90 by default, unless the
  user asked for a format (`--image-format png` keeps it lossless) or a smaller size;
- `fit_prompt` re-encodes any image still over a limit (smaller, never lower JPEG quality) and
  raises `ImagePolicyError`, naming the sample and the limit, for a request that cannot fit,
  so such a request is never sent.

The contract is recorded with the run (config.json `image_contract`) and is part of its identity.
Sources (checked for this release):
- Anthropic: docs.anthropic.com/en/docs/build-with-claude/vision ("Evaluate image size";
  5 MB per image, 8000x8000 px, 2000x2000 px when a request has more than 20 images, images with
  a long edge over 1568 px or over about 1.15 megapixels are downscaled) and
  docs.anthropic.com/en/api/overview (32 MB per Messages request).
- OpenAI: platform.openai.com/docs/guides/images-vision ("Image input requirements": PNG,
  JPEG, WEBP, non-animated GIF; up to 50 MB of images per request; detail "high" first fits the
  image in 2048x2048, then scales its short side to 768 px).
- Google: ai.google.dev/gemini-api/docs/image-understanding (PNG, JPEG, WEBP, HEIC, HEIF;
  inline data up to 20 MB per request in total; images are tiled in 768x768 tiles).
- An OpenAI-compatible server (`openai-compatible:`, documented for `vllm serve`) publishes no
  image limits, so the contract has none; its formats are those every common server decodes
  from a base64 `image_url` data URL (read in each server's source, 2026-12):
  vLLM `vllm/multimodal/media/connector.py` (`MediaConnector._load_data_url`: any media type,
  base64 only) and `media/image.py` (`ImageMediaIO.load_bytes`: `PIL.Image.open`, any format
  Pillow reads); SGLang `python/sglang/srt/utils` (`load_image`: `data:` URLs through
  `PIL.Image.open`); TGI `router/src/validation.rs` (`fetch_image`/`format_from_mimetype`: PNG,
  JPEG, GIF, WebP, TIFF); llama.cpp `tools/server` (`data:image/...;base64` only, decoded by
  `tools/mtmd/mtmd-helper.cpp` with stb_image: JPEG and PNG, no WebP); LMDeploy
  `lmdeploy/vl/media/image.py` (`PIL.Image.open`). JPEG and PNG are accepted by all five, so the
  default is JPEG (q90, 4:4:4) and `--image-format png` stays available.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from cvbench.core.types import PromptImage, RenderedPrompt
from cvbench.model_adapters.aliases import find_alias
from cvbench.prompting.build import PromptError, build_prompt
from cvbench.prompting.encoding import ImagePolicy, encode_image

MB = 1_000_000
MAX_SHRINK_STEPS = 12
SHRINK = 0.85


class ImagePolicyError(PromptError):
    """A prompt's images cannot fit the provider's limits; the message names the sample and the limit."""


@dataclass(frozen=True)
class ImageContract:
    provider: str
    formats: tuple[str, ...]
    max_image_bytes: int | None = None  # per image
    max_request_bytes: int | None = None  # all images of one request together
    counts_base64: bool = True  # the limits apply to the base64 text that travels in the JSON body
    max_side: int | None = None  # hard limit per side, px
    many_images: int | None = None  # above this many images in one request ...
    many_images_max_side: int | None = None  # ... each side may be at most this
    max_images: int | None = None
    effective_max_side: int | None = None  # the provider downsizes beyond these itself
    effective_max_pixels: int | None = None
    default_format: str = "jpeg"
    jpeg_quality: int = 90  # >= 90 keeps JPEG chroma at 4:4:4 (encoding.encode_image)
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def side_limit(self, n_images: int) -> int | None:
        if self.many_images is not None and n_images > self.many_images and self.many_images_max_side is not None:
            return min(x for x in (self.max_side, self.many_images_max_side) if x is not None)
        return self.max_side

    def describe(self) -> str:
        """One line for `cvbench models`."""
        parts = [f"{'/'.join(f.split('/')[1] for f in self.formats)}"]
        b64 = " base64" if self.counts_base64 else ""
        if self.max_image_bytes:
            parts.append(f"<= {_size(self.max_image_bytes)}{b64}/image")
        if self.max_request_bytes:
            parts.append(f"<= {_size(self.max_request_bytes)}{b64}/request")
        if self.max_side:
            parts.append(f"<= {self.max_side} px/side")
        if self.many_images:
            parts.append(f"<= {self.many_images_max_side} px/side above {self.many_images} images")
        if self.effective_max_pixels or self.effective_max_side:
            sent = []
            if self.effective_max_side:
                sent.append(f"long side {self.effective_max_side} px")
            if self.effective_max_pixels:
                sent.append(f"{self.effective_max_pixels / 1e6:.2f} MP")
            parts.append("sent at " + " / ".join(sent))
        parts.append(f"default {self.default_format}")
        return ", ".join(parts)


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n / MB:g} MB"


CONTRACTS: dict[str, ImageContract] = {
    "anthropic": ImageContract(
        provider="anthropic",
        formats=("image/jpeg", "image/png", "image/gif", "image/webp"),
        max_image_bytes=5 * 1024 * 1024,
        max_request_bytes=32 * MB,
        max_side=8000,
        many_images=20,
        many_images_max_side=2000,
        max_images=100,
        effective_max_side=1568,
        effective_max_pixels=1_150_000,
        source="docs.anthropic.com/en/docs/build-with-claude/vision",
    ),
    "openai": ImageContract(
        provider="openai",
        formats=("image/jpeg", "image/png", "image/webp", "image/gif"),
        max_request_bytes=50 * MB,
        effective_max_side=2048,
        source="platform.openai.com/docs/guides/images-vision",
    ),
    "google": ImageContract(
        provider="google",
        formats=("image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"),
        max_request_bytes=20 * MB,
        source="ai.google.dev/gemini-api/docs/image-understanding",
    ),
    # no published limits (the server's own model decides the size); the formats every common
    # server decodes from a data URL (the module docstring names the sources)
    "openai-compatible": ImageContract(
        provider="openai-compatible",
        formats=("image/jpeg", "image/png"),
        source="vLLM, SGLang, TGI, llama.cpp server, LMDeploy: image_url data URL decoding (see image_policy.py)",
    ),
}


def contract_for(provider: str) -> ImageContract | None:
    return CONTRACTS.get(provider)


def contract_for_model(spec: str) -> ImageContract | None:
    """The image contract of a model string or alias, without building its adapter (no key needed)."""

    alias = find_alias(spec)
    target = alias.target if alias is not None and alias.access == "api" and alias.target else spec
    return contract_for(target.partition(":")[0].strip())


def _smaller(*values: int | None) -> int | None:
    given = [v for v in values if v is not None]
    return min(given) if given else None


def run_image_policy(
    contract: ImageContract | None,
    image_format: str | None,
    jpeg_quality: int | None,
    max_side: int | None,
    max_pixels: int | None,
) -> ImagePolicy:
    """The run's ImagePolicy: the user's choices, within the provider's effective size and limits."""
    if contract is None:
        return ImagePolicy(
            format=image_format or "png", jpeg_quality=jpeg_quality or 90, max_side=max_side, max_pixels=max_pixels
        )
    policy = ImagePolicy(
        format=image_format or contract.default_format,
        jpeg_quality=jpeg_quality or contract.jpeg_quality,
        max_side=_smaller(max_side, contract.effective_max_side, contract.max_side),
        max_pixels=_smaller(max_pixels, contract.effective_max_pixels),
    )
    if policy.mime not in contract.formats:
        raise ImagePolicyError(
            f"{contract.provider} does not accept {policy.mime} (accepts {', '.join(contract.formats)})"
        )
    return policy


def wire_bytes(image: PromptImage, contract: ImageContract) -> int:
    n = len(image.data)
    return 4 * math.ceil(n / 3) if contract.counts_base64 else n


def _decode(image: PromptImage) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(image.data)) as img:
        return np.asarray(img.convert("RGB"))


def _fits(image: PromptImage, contract: ImageContract, side: int | None) -> bool:
    if side is not None and max(image.width, image.height) > side:
        return False
    return contract.max_image_bytes is None or wire_bytes(image, contract) <= contract.max_image_bytes


def _fit_one(
    image: PromptImage, contract: ImageContract, policy: ImagePolicy, side: int | None, sample_id: str
) -> PromptImage:
    if _fits(image, contract, side):
        return image
    rgb = _decode(image)
    long_side = max(image.width, image.height)
    target = min(long_side, side) if side is not None else long_side
    for _ in range(MAX_SHRINK_STEPS):
        fitted = encode_image(rgb, replace(policy, max_side=max(16, target), max_pixels=None), image.label)
        if _fits(fitted, contract, side):
            return fitted
        target = int(target * SHRINK)
    limit = f"{contract.max_image_bytes:,} bytes{' (base64)' if contract.counts_base64 else ''} per image"
    raise ImagePolicyError(
        f"sample {sample_id}: {image.label} cannot fit {contract.provider}'s limit of {limit} "
        f"even at {target} px on its long side ({policy.format}); use --image-format jpeg or a "
        f"smaller --max-side"
    )


def fit_prompt(rendered: RenderedPrompt, contract: ImageContract | None, policy: ImagePolicy) -> RenderedPrompt:
    """The rendered prompt with every image within the contract's per-image limits (re-encoded smaller
    where needed) and checked against the per-request ones; ImagePolicyError otherwise."""
    prompt = rendered.prompt
    if contract is None or not prompt.images:
        return rendered
    n = len(prompt.images)
    if contract.max_images is not None and n > contract.max_images:
        raise ImagePolicyError(
            f"sample {prompt.sample_id}: {n} images, over {contract.provider}'s limit of "
            f"{contract.max_images} per request"
        )
    for image in prompt.images:
        if image.mime not in contract.formats:
            raise ImagePolicyError(
                f"sample {prompt.sample_id}: {image.label} is {image.mime}; {contract.provider} "
                f"accepts {', '.join(contract.formats)}"
            )
    side = contract.side_limit(n)
    images = tuple(_fit_one(image, contract, policy, side, prompt.sample_id) for image in prompt.images)
    total = sum(wire_bytes(i, contract) for i in images)
    if contract.max_request_bytes is not None and total > contract.max_request_bytes:
        raise ImagePolicyError(
            f"sample {prompt.sample_id}: {n} images take {total:,} bytes"
            f"{' (base64)' if contract.counts_base64 else ''}, over {contract.provider}'s limit of "
            f"{contract.max_request_bytes:,} per request; use --image-format jpeg or a smaller "
            f"--max-side / --max-pixels"
        )
    if images == prompt.images:
        return rendered
    protocol = _refit_records(rendered.protocol, prompt.images, images)
    return RenderedPrompt(replace(prompt, images=images), rendered.answer, protocol)


def _refit_records(
    protocol: Mapping[str, Any], old: tuple[PromptImage, ...], new: tuple[PromptImage, ...]
) -> dict[str, Any]:
    out = dict(protocol)
    records = list(out.get("images") or [])
    if len(records) == len(new):
        for i, (before, after) in enumerate(zip(old, new)):
            if before is not after:
                records[i] = {
                    **records[i],
                    "mime": after.mime,
                    "width": after.width,
                    "height": after.height,
                    "sha256": after.sha256,
                    "source": f"{records[i].get('source', '')}+fitted",
                }
        out["images"] = records
    return out


def build_fitted_prompt(
    sample: Any, settings: Any, capabilities: Any, setting: str, contract: ImageContract | None
) -> RenderedPrompt:
    """`prompting.build_prompt`, then `fit_prompt` (one call for the runner's CPU pool)."""

    return fit_prompt(build_prompt(sample, settings, capabilities, setting), contract, settings.image)
