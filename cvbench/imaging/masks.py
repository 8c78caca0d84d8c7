"""Mask codecs and geometry: COCO RLE (via pycocotools), COCO polygons, bbox fallback.

All functions are pure. Masks are H x W numpy bool arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import cv2
import numpy as np
from pycocotools import mask as coco_mask

from cvbench.core.types import Region


class MaskError(ValueError):
    """A region whose geometry cannot be turned into a mask at all."""


@dataclass(frozen=True)
class DecodedMask:
    mask: np.ndarray  # H x W bool, at the image size
    source: str  # "rle" | "polygons" | "bbox"
    warnings: tuple[str, ...] = ()


# ------------------------------------------------------------------------------ RLE


def rle_size(rle: Mapping[str, Any]) -> tuple[int, int]:
    size = rle.get("size")
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise MaskError(f"RLE 'size' must be [H, W] with positive integers, got {size!r}")
    return int(size[0]), int(size[1])


def decode_rle(rle: Mapping[str, Any]) -> np.ndarray:
    """Decode a COCO RLE; `counts` as str (compressed) or list[int] (uncompressed)."""
    h, w = rle_size(rle)
    counts = rle.get("counts")
    if isinstance(counts, list):
        if not all(isinstance(c, int) and c >= 0 for c in counts):
            raise MaskError("uncompressed RLE 'counts' must be non-negative integers")
        if sum(counts) != h * w:
            raise MaskError(f"uncompressed RLE counts sum to {sum(counts)}, expected H*W = {h * w}")
        compressed = coco_mask.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    elif isinstance(counts, (str, bytes)):
        raw = counts.encode("utf-8") if isinstance(counts, str) else counts
        # pycocotools decodes a corrupt string silently into garbage, so check the run total first
        total = sum(compressed_run_lengths(raw))
        if total != h * w:
            raise MaskError(f"compressed RLE runs sum to {total}, expected H*W = {h * w}")
        compressed = {"size": [h, w], "counts": raw}
    else:
        raise MaskError(f"RLE 'counts' must be a string or a list of integers, got {type(counts).__name__}")
    try:
        decoded = coco_mask.decode(compressed)
    except Exception as exc:  # pycocotools raises bare exceptions on garbage
        raise MaskError(f"RLE could not be decoded: {exc}") from exc
    if decoded.shape[:2] != (h, w):
        raise MaskError(f"RLE decoded to {decoded.shape[:2]}, expected {(h, w)}")
    return cast("np.ndarray", decoded.astype(bool))


def compressed_run_lengths(counts: bytes) -> list[int]:
    """Run lengths of a compressed COCO RLE string (used only to validate it).

    The format: each run is a signed varint of 5-bit groups stored as chr(48 + group), with
    0x20 marking continuation and 0x10 the sign of the final group; from the third run on,
    each value is a delta from the run two places before.
    """
    runs: list[int] = []
    i = 0
    while i < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if i >= len(counts):
                raise MaskError("compressed RLE string ends inside a run")
            c = counts[i] - 48
            if c < 0 or c > 63:
                raise MaskError(f"compressed RLE has an invalid character {chr(counts[i])!r}")
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            shift += 5
            i += 1
            if not more and (c & 0x10):
                value |= -1 << shift
        if len(runs) > 2:
            value += runs[-2]
        if value < 0:
            raise MaskError("compressed RLE has a negative run length")
        runs.append(value)
    return runs


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """Compressed COCO RLE with `counts` as a utf-8 string (the CrossViewBench on-disk form)."""
    enc = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(enc["size"][0]), int(enc["size"][1])], "counts": enc["counts"].decode("utf-8")}


def encode_rle_uncompressed(mask: np.ndarray) -> dict[str, Any]:
    """Uncompressed COCO RLE: column-major run lengths starting with a run of zeros."""
    flat = np.asarray(mask, dtype=bool).flatten(order="F")
    h, w = mask.shape[:2]
    if flat.size == 0:
        return {"size": [h, w], "counts": []}
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs = [0] + runs
    return {"size": [int(h), int(w)], "counts": [int(r) for r in runs]}


# ------------------------------------------------------------------------------ polygons


def valid_polygons(polygons: Sequence[Sequence[float]]) -> list[list[float]]:
    """Keep polygons with an even number of coordinates and at least 3 points (6 numbers)."""
    return [list(map(float, p)) for p in polygons if len(p) >= 6 and len(p) % 2 == 0]


def polygons_to_mask(polygons: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """Union of COCO polygons rasterised at (height, width). Invalid polygons are dropped."""
    polys = valid_polygons(polygons)
    if not polys:
        raise MaskError("no valid polygon (each needs an even count of at least 6 numbers)")
    rles = coco_mask.frPyObjects(polys, height, width)
    merged = coco_mask.merge(rles, intersect=False)
    return cast("np.ndarray", coco_mask.decode(merged).astype(bool))


def mask_to_polygons(mask: np.ndarray, min_points: int = 3) -> list[list[float]]:
    """Outer contours of a mask as COCO polygons (flat x, y lists)."""
    out = []
    for c in contours(mask):
        if len(c) >= min_points:
            out.append([float(v) for v in c.reshape(-1)])
    return out


# ------------------------------------------------------------------------------ bbox


def bbox_to_mask(bbox_xyxy: Sequence[float], height: int, width: int) -> np.ndarray:
    """Filled box: coordinates rounded, clipped to the image, end inclusive."""
    if len(bbox_xyxy) != 4:
        raise MaskError(f"bbox_xyxy must have 4 numbers, got {len(bbox_xyxy)}")
    x1, y1, x2, y2 = (round(float(v)) for v in bbox_xyxy)
    x1, x2 = max(0, min(x1, width - 1)), max(0, min(x2, width - 1))
    y1, y2 = max(0, min(y1, height - 1)), max(0, min(y2, height - 1))
    mask = np.zeros((height, width), dtype=bool)
    if x2 >= x1 and y2 >= y1:
        mask[y1 : y2 + 1, x1 : x2 + 1] = True
    return mask


# ------------------------------------------------------------------------------ regions


def resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    return cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)


def decode_region(region: Region, image_hw: tuple[int, int]) -> DecodedMask:
    """The region's mask at the image size.

    Order: RLE, else polygons, else the bbox. An invalid RLE falls back to the bbox (as
    upstream does) with a warning; a size that differs from the image is resized with a
    warning (upstream resizes silently). Raises MaskError when nothing usable is left.
    """
    h, w = image_hw
    warnings: list[str] = []
    if region.rle is not None:
        try:
            mask = decode_rle(region.rle)
            if mask.shape != (h, w):
                warnings.append(f"mask size {list(mask.shape)} differs from image size {[h, w]}; resized")
                mask = resize_mask(mask, h, w)
            return DecodedMask(mask, "rle", tuple(warnings))
        except MaskError as exc:
            if region.bbox_xyxy is None:
                raise MaskError(
                    f"region {region.region_id}: invalid RLE ({exc}) and no bbox_xyxy to fall back to"
                ) from exc
            warnings.append(f"invalid RLE ({exc}); used bbox_xyxy")
            return DecodedMask(bbox_to_mask(region.bbox_xyxy, h, w), "bbox", tuple(warnings))
    if region.polygons:
        dh, dw = region.declared_hw or (h, w)
        try:
            mask = polygons_to_mask(region.polygons, dh, dw)
        except MaskError as exc:
            raise MaskError(f"region {region.region_id}: {exc}") from exc
        if (dh, dw) != (h, w):
            warnings.append(f"annotation size {[dh, dw]} differs from image size {[h, w]}; rescaled")
            mask = resize_mask(mask, h, w)
        return DecodedMask(mask, "polygons", tuple(warnings))
    if region.bbox_xyxy is not None:
        warnings.append("no RLE; used bbox_xyxy")
        return DecodedMask(bbox_to_mask(region.bbox_xyxy, h, w), "bbox", tuple(warnings))
    raise MaskError(f"region {region.region_id}: no RLE, polygon or bbox")


# ------------------------------------------------------------------------------ geometry


def area(mask: np.ndarray) -> int:
    return int(np.count_nonzero(mask))


def bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight (x1, y1, x2, y2), end inclusive; None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def centroid(mask: np.ndarray) -> tuple[float, float] | None:
    """(x, y) mean of the mask pixels; None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    return float(xs.mean()), float(ys.mean())


def contours(mask: np.ndarray) -> list[np.ndarray]:
    """Outer contours, each an N x 2 int array of (x, y) points, largest first."""
    found, _ = cv2.findContours(np.ascontiguousarray(mask, dtype=np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    pieces = [c.reshape(-1, 2) for c in found]
    pieces.sort(key=lambda c: cv2.contourArea(c.reshape(-1, 1, 2)), reverse=True)
    return pieces


def interior_point(mask: np.ndarray) -> tuple[int, int] | None:
    """The pixel (x, y) farthest from the mask border (distance transform); None if empty."""
    if not mask.any():
        return None
    padded = np.pad(mask.astype(np.uint8), 1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    # among the (near-)deepest pixels, the one closest to the centroid: a centred tag on plateaus
    ys, xs = np.nonzero(dist >= dist.max() - 0.5)
    cx, cy = centroid(mask)  # type: ignore[misc]
    i = int(np.argmin((xs - cx) ** 2 + (ys - cy) ** 2))
    return int(xs[i]), int(ys[i])
