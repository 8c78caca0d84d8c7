"""What each provider's image policy does to one 1920x1080 view: bytes on the wire, encode CPU
time, the size sent, and overlay legibility (a 2-px contour and a small ID tag).

    .venv/bin/python bench/image_policy_bench.py [--reps 5]

The view is photo-like (gradient, sensor-like noise, textured shapes) with a 2-px yellow contour
and a 12-px-high ID tag drawn at full size. Per policy: the encoded bytes and their base64 size
(what travels in the JSON body), the median encode time (resize + encode, one core), the size
sent, the share of contour pixels that are still contour-coloured after resize + encode + decode
("contour kept"), and the tag's height after resizing. Results: bench/results/image_policy.json.
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import write_result

from cvbench.model_adapters.image_policy import CONTRACTS, run_image_policy
from cvbench.prompting.encoding import (
    ImagePolicy,
    encode_image,
    fitted_size,
    resize_mask_area,
)

H, W = 1080, 1920
CONTOUR = (255, 255, 0)
TAG_PX = 12


def photo_view(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(RGB view with the overlay drawn, the contour's pixel mask)."""
    import cv2

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    img = np.stack([60 + 0.05 * xx, 90 + 0.06 * yy, 140 - 0.03 * xx], axis=-1)
    img += rng.normal(0, 12, size=(H, W, 3)).astype(np.float32)
    for _ in range(12):
        cx, cy = int(rng.integers(100, W - 100)), int(rng.integers(100, H - 100))
        colour = rng.uniform(0, 255, size=3)
        layer = np.zeros((H, W), dtype=np.uint8)
        cv2.ellipse(
            layer,
            (cx, cy),
            (int(rng.integers(30, 200)), int(rng.integers(30, 150))),
            float(rng.uniform(0, 180)),
            0,
            360,
            1,
            -1,
        )
        sel = layer.astype(bool)
        img[sel] = colour + rng.normal(0, 18, size=(int(sel.sum()), 3))
    rgb = np.clip(img, 0, 255).astype(np.uint8)
    contour = np.zeros((H, W), dtype=np.uint8)
    cv2.ellipse(contour, (700, 500), (260, 180), 20.0, 0, 360, 1, 2)
    rgb[contour.astype(bool)] = CONTOUR
    cv2.putText(rgb, "17", (700, 500), cv2.FONT_HERSHEY_SIMPLEX, TAG_PX / 22.0, (255, 255, 255), 1, cv2.LINE_AA)
    return rgb, contour.astype(bool)


def measure(name: str, policy: ImagePolicy, rgb: np.ndarray, contour: np.ndarray, reps: int) -> dict[str, Any]:
    from PIL import Image

    times = []
    image = None
    for _ in range(reps):
        start = time.process_time()
        image = encode_image(rgb, policy, name)
        times.append(time.process_time() - start)
    assert image is not None
    decoded = np.asarray(Image.open(io.BytesIO(image.data)).convert("RGB")).astype(np.int32)
    mask = resize_mask_area(contour, fitted_size((H, W), policy))
    distance = np.abs(decoded - np.array(CONTOUR)).sum(axis=2)
    kept = float((distance[mask] < 90).mean()) if mask.any() else 0.0
    scale = image.width / W
    return {
        "policy": name,
        "settings": policy.as_dict(),
        "sent_px": [image.width, image.height],
        "megapixels": round(image.width * image.height / 1e6, 3),
        "bytes": len(image.data),
        "base64_bytes": len(base64.b64encode(image.data)),
        "encode_ms_median": round(1000 * statistics.median(times), 1),
        "contour_kept": round(kept, 3),
        "tag_height_px": round(TAG_PX * scale, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    rgb, contour = photo_view()
    policies = {"full size, png (before policies)": ImagePolicy(format="png")}
    for provider, contract in CONTRACTS.items():
        policies[f"{provider} default"] = run_image_policy(contract, None, None, None, None)
        policies[f"{provider} --image-format png"] = run_image_policy(contract, "png", None, None, None)
    rows = [measure(name, policy, rgb, contour, args.reps) for name, policy in policies.items()]
    print(f"{'policy':36} {'sent':>11} {'bytes':>10} {'base64':>10} {'ms':>7} {'contour':>8} {'tag px':>7}")
    for r in rows:
        print(
            f"{r['policy']:36} {r['sent_px'][0]:>5}x{r['sent_px'][1]:<5} {r['bytes']:>10,} {r['base64_bytes']:>10,} "
            f"{r['encode_ms_median']:>7} {r['contour_kept']:>8} {r['tag_height_px']:>7}"
        )
    path = write_result("image_policy", {"view": [W, H], "reps": args.reps, "rows": rows})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
