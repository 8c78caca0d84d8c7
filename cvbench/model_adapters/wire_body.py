"""Request bodies assembled from a small JSON skeleton and the images' ready base64 text.

Only the small part of a body (model, text, settings) is serialised; each image's base64 text,
prepared once in the prompt pool (`PromptImage.data_url_json`), is spliced in as bytes where a
per-process slot token stands in the skeleton. Base64 and MIME types need no JSON escaping, so
the result is the JSON document the SDK would serialise, without re-encoding megabytes of
base64 (docs/performance.md, the serial part).
"""

from __future__ import annotations

import inspect
import json
import secrets
from collections.abc import Callable, Sequence
from typing import Any

from cvbench.core.types import PromptImage

# a token that cannot occur in a prompt by chance: marks where each image's text goes
IMAGE_SLOT = f"cvbench-image-slot-{secrets.token_hex(16)}"
_IMAGE_SLOT_JSON = json.dumps(IMAGE_SLOT).encode("ascii")


Literal = tuple[bytes | memoryview, ...]


def data_url_literal(image: PromptImage) -> Literal:
    """The image's data URL as a JSON string literal (OpenAI `image_url.url`)."""
    return (image.data_url_json,)


def base64_literal(image: PromptImage) -> Literal:
    """The image's bare base64 text as a JSON string literal (Anthropic `source.data`): a quote
    and a view into the data URL literal after its `data:...;base64,` prefix (it ends in the
    closing quote), so nothing is copied."""
    prefix = len(b'"data:') + len(image.mime.encode("ascii")) + len(b";base64,")
    return (b'"', memoryview(image.data_url_json)[prefix:])


def splice_images(
    document: dict[str, Any], images: Sequence[PromptImage], literal_of: Callable[[PromptImage], Literal]
) -> bytes:
    """`document` (holding `IMAGE_SLOT` once per image, in order) as compact JSON bytes with
    each slot replaced by `literal_of(image)`."""
    skeleton = json.dumps(document, separators=(",", ":")).encode("ascii")
    pieces = skeleton.split(_IMAGE_SLOT_JSON)
    if len(pieces) != len(images) + 1:  # the slot token in the prompt text itself: impossible by chance
        raise ValueError("image slot marker found in the prompt text")
    out: list[bytes | memoryview] = [pieces[0]]
    for image, piece in zip(images, pieces[1:]):
        out += [*literal_of(image), piece]
    return b"".join(out)


def takes_raw_body(client: Any) -> bool:
    """Whether this SDK's client (or client class) sends a ready request body
    (`client.post(..., content=bytes)`, the SDK's documented way to make a custom request; newer
    releases take `content`)."""
    post = getattr(client, "post", None)
    try:
        return post is not None and "content" in inspect.signature(post).parameters
    except (TypeError, ValueError):
        return False
