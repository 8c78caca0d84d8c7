"""JPEG decoding, Pillow vs OpenCV, side by side: CPU ms per view and whether the pixels are equal.

cvbench decodes a JPEG twice per view on the API path: the source view (`images.load_image`) and
the JPEG it sends (its pixel identity, `encoding._decode_rgb`). Both now go through
`images.jpeg_rgb` (OpenCV) where it gives Pillow's pixels; this script measures the two decoders
interleaved on the same bytes (photo-like smooth and noisy views of bench/floor.py, 1280x720 and
1920x1080; sources as Pillow's default q75 4:2:0, prompt images as the policy's q90 4:4:4) and
checks bit equality on every file.

    python bench/decode_bench.py [--reps 7]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import machine, write_result
from floor import SIZES, photo_view

from cvbench.imaging.images import jpeg_rgb


def pillow_decode(data: bytes) -> np.ndarray:
    """What cvbench did before: Pillow's decode, then its RGB array."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im if im.mode == "RGB" else im.convert("RGB"))


def opencv_decode(data: bytes) -> np.ndarray:
    out = jpeg_rgb(data, "RGB")
    assert out is not None
    return out


def jpeg(rgb: np.ndarray, **save: Any) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buffer, format="JPEG", **save)
    return buffer.getvalue()


def cpu_ms_per_file(fn: Any, files: list[bytes]) -> float:
    start = time.process_time()
    for data in files:
        fn(data)
    return (time.process_time() - start) * 1000 / len(files)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=7, help="interleaved rounds (medians reported)")
    parser.add_argument("--views", type=int, default=4, help="distinct views per kind")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    result: dict[str, Any] = {"machine": machine(), "reps": args.reps, "kinds": {}}
    for size, hw in SIZES.items():
        for content, noise in (("smooth", 2.0), ("noisy", 12.0)):
            views = [photo_view(hw, rng, noise)[0] for _ in range(args.views)]
            for role, save in (
                ("source q75 4:2:0", {"quality": 75}),
                ("prompt q90 4:4:4", {"quality": 90, "subsampling": 0}),
            ):
                files = [jpeg(v, **save) for v in views]
                equal = all(np.array_equal(pillow_decode(f), opencv_decode(f)) for f in files)
                pil, cv = [], []
                for _ in range(args.reps):  # interleaved: both see the same load
                    pil.append(cpu_ms_per_file(pillow_decode, files))
                    cv.append(cpu_ms_per_file(opencv_decode, files))
                name = f"{size} {content} {role}"
                fig = {
                    "pillow_ms": round(statistics.median(pil), 2),
                    "opencv_ms": round(statistics.median(cv), 2),
                    "ratio_opencv_over_pillow": round(statistics.median(c / p for c, p in zip(cv, pil)), 3),
                    "pixels_equal": equal,
                    "kb": round(sum(map(len, files)) / len(files) / 1024, 1),
                }
                result["kinds"][name] = fig
                print(
                    f"{name:34s} Pillow {fig['pillow_ms']:6.2f} ms  OpenCV {fig['opencv_ms']:6.2f} ms  "
                    f"ratio {fig['ratio_opencv_over_pillow']:.3f}  equal {equal}",
                    flush=True,
                )
    result["all_pixels_equal"] = all(k["pixels_equal"] for k in result["kinds"].values())
    print("written", write_result("decode", result))
    return 0 if result["all_pixels_equal"] else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
