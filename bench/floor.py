"""The honest floor: per view and per sample, what each step of turning a CrossViewBench sample into
a request costs, on photo-like views (smooth gradients and shapes with mild noise, and the noisy
variant of bench/common.py) at 1280x720 and 1920x1080.

Steps per view: source JPEG decode (cvbench's loader), mask decode (COCO RLE, 9 objects, 2 drawn),
drawing (the CrossViewBench mask overlay), each candidate encoding (PNG level 6 = cvbench's PNG
policy, PNG level 1, WebP lossless method 0, JPEG q90 4:4:4 = the API default policy, and the
decode that JPEG pixel identity adds), base64 + JSON body, and one HTTP POST of that body to an
instant server on 127.0.0.1.

The floor (per sample of 3 views): decode + masks + drawing + the fastest encoding acceptable
for the target: JPEG q90 4:4:4 for API providers (their policy), none for in-process models.

    python bench/floor.py [--reps 5]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import InstantServer, machine, write_result

VIEWS_PER_SAMPLE = 3
SIZES = {"720p": (720, 1280), "1080p": (1080, 1920)}


def photo_view(hw: tuple[int, int], rng: np.random.Generator, noise: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """Gradient background, 9 shaded blurred shapes, sensor-like noise of `noise` sigma."""
    import cv2

    h, w = hw
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(40, 200, size=3).astype(np.float32)
    img = np.stack([base[c] + 0.05 * (c - 1) * xx + 0.04 * yy for c in range(3)], axis=-1)
    ids = np.zeros((h, w), dtype=np.int16)
    for k in range(1, 10):
        layer = np.zeros((h, w), dtype=np.uint8)
        cx, cy = int(rng.integers(w // 10, w - w // 10)), int(rng.integers(h // 10, h - h // 10))
        axes = (int(rng.integers(w // 50, w // 8)), int(rng.integers(h // 30, h // 6)))
        cv2.ellipse(layer, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        sel = layer.astype(bool)
        shade = 0.6 + 0.4 * (yy[sel] - cy + axes[1]) / (2 * axes[1] + 1)
        img[sel] = rng.uniform(0, 255, size=3).astype(np.float32) * shade[:, None]
        ids[sel] = k
    img = cv2.GaussianBlur(img, (0, 0), 1.5)
    if noise:
        img += rng.normal(0, noise, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8), [ids == k for k in range(1, 10) if (ids == k).any()]


def cpu_ms(fn: Callable[[], Any], reps: int) -> tuple[float, Any]:
    """Median process CPU ms of `fn` over reps runs (CPU, not wall: the machine is shared)."""
    times, out = [], None
    for _ in range(reps):
        t = time.process_time()
        out = fn()
        times.append((time.process_time() - t) * 1000)
    return float(np.median(times)), out


def data_url(data: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(data).decode()


def measure_view(hw: tuple[int, int], noise: float, reps: int, server: InstantServer, folder: Path) -> dict[str, Any]:
    import cv2
    from PIL import Image

    from cvbench.core.types import ImageRef
    from cvbench.imaging.images import load_image
    from cvbench.imaging.masks import decode_rle, encode_rle
    from cvbench.imaging.render import draw_fill, palette
    from cvbench.prompting.encoding import ImagePolicy, _decode_rgb, encode_image

    rng = np.random.default_rng(0)
    rgb, masks = photo_view(hw, rng, noise)
    path = folder / f"v-{hw[0]}-{noise}.jpg"
    Image.fromarray(rgb).save(path, quality=95)  # a camera-like source file
    rles = [encode_rle(m) for m in masks]
    out: dict[str, Any] = {"source_jpeg_bytes": path.stat().st_size}
    out["source_decode_ms"], view = cpu_ms(lambda: load_image(ImageRef(path)), reps)
    out["mask_decode_ms"], decoded = cpu_ms(lambda: [decode_rle(r) for r in rles], reps)
    colours = palette(2)

    def draw() -> np.ndarray:
        img = view
        for m, c in zip(decoded[:2], colours):
            img = draw_fill(img, m, c.rgb, 0.4)
        return img

    out["drawing_ms"], drawn = cpu_ms(draw, reps)
    bgr = cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR)
    enc: dict[str, dict[str, float]] = {}

    def pillow_jpeg() -> bytes:
        buf = io.BytesIO()
        Image.fromarray(drawn).save(buf, format="JPEG", quality=90, subsampling=0)
        return buf.getvalue()

    candidates: dict[str, Callable[[], bytes]] = {
        "png6_cvbench": lambda: encode_image(drawn, ImagePolicy(format="png"), "v").data,
        "png1": lambda: cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes(),
        "webp_lossless_opencv": lambda: cv2.imencode(".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, 101])[1].tobytes(),
        "jpeg_q90_444_raw": pillow_jpeg,
        "jpeg_q90_444_cvbench": lambda: encode_image(drawn, ImagePolicy(format="jpeg"), "v").data,
    }
    for name, fn in candidates.items():
        ms, data = cpu_ms(fn, reps)
        enc[name] = {"cpu_ms": round(ms, 2), "bytes": len(data)}
    jpeg = pillow_jpeg()
    out["jpeg_identity_decode_ms"], _ = cpu_ms(lambda: _decode_rgb(jpeg), reps)
    out["encodings"] = enc
    out["base64_body_ms"], body = cpu_ms(
        lambda: json.dumps({"messages": [{"content": [{"image_url": {"url": data_url(jpeg)}}]}]}).encode(),
        reps,
    )
    conn = http.client.HTTPConnection("127.0.0.1", server.port)

    def post() -> bytes:
        conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        return conn.getresponse().read()

    out["http_post_ms"], _ = cpu_ms(post, reps)
    conn.close()
    for key in list(out):
        if key.endswith("_ms"):
            out[key] = round(out[key], 2)
    prep = out["source_decode_ms"] + out["mask_decode_ms"] + out["drawing_ms"]
    out["floor_in_process_ms"] = round(prep, 2)
    out["floor_api_ms"] = round(prep + enc["jpeg_q90_444_raw"]["cpu_ms"], 2)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"machine": machine(), "views_per_sample": VIEWS_PER_SAMPLE, "views": {}}
    with tempfile.TemporaryDirectory() as tmp, InstantServer() as server:
        for size, hw in SIZES.items():
            for content, noise in (("smooth", 2.0), ("noisy", 12.0)):
                row = measure_view(hw, noise, args.reps, server, Path(tmp))
                result["views"][f"{size}-{content}"] = row
                enc = row["encodings"]
                print(
                    f"{size} {content:6s} decode {row['source_decode_ms']:6.1f}  masks {row['mask_decode_ms']:5.1f}  "
                    f"draw {row['drawing_ms']:5.1f}  png6 {enc['png6_cvbench']['cpu_ms']:6.1f}  "
                    f"png1 {enc['png1']['cpu_ms']:5.1f}  webp {enc['webp_lossless_opencv']['cpu_ms']:5.1f}  "
                    f"jpeg {enc['jpeg_q90_444_raw']['cpu_ms']:5.1f} "
                    f"(+id decode {row['jpeg_identity_decode_ms']:4.1f})  "
                    f"body {row['base64_body_ms']:4.1f}  http {row['http_post_ms']:4.1f}  ms CPU/view"
                )
    smooth = result["views"]["720p-smooth"]
    result["floor_api_cpu_s_per_sample"] = round(VIEWS_PER_SAMPLE * smooth["floor_api_ms"] / 1000, 4)
    result["floor_in_process_cpu_s_per_sample"] = round(VIEWS_PER_SAMPLE * smooth["floor_in_process_ms"] / 1000, 4)
    print(
        f"floor per 3-view 720p smooth sample: API (JPEG q90 4:4:4) {result['floor_api_cpu_s_per_sample']:.4f} CPU-s, "
        f"in-process {result['floor_in_process_cpu_s_per_sample']:.4f} CPU-s"
    )
    print("written", write_result("floor", result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
