"""Rendering speed on the hardest MMVM case: 37 candidates on a 1920x1080 image.

    .venv/bin/python bench/render_bench.py [--repeats 30] [--out bench/results/render.json]

Times, as medians over repeats (after one warm-up run), wall clock and this process's CPU time:
  candidate_view   render_candidate_view on decoded masks (contours + 37 tags): the budget is
                   "well under 100 ms"
  candidate_view_upstream   the MMVM authors' rule (draw_upstream_mmvm): tree contours + 37 tags
  query_view       render_query_view (one cyan contour)
  crossviewbench   a 3-view 1920x1080 CrossViewBench overlay (mask style, 4 regions) from decoded masks
  build_prompt     the whole MMVM prompt from files: decode 2 JPEGs and 38 polygon masks, render,
                   PNG-encode both views (encoding dominates)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from cvbench.core.types import (
    Capabilities,
    ImageRef,
    Region,
    Sample,
    SourceLocation,
    View,
)
from cvbench.imaging.masks import mask_to_polygons
from cvbench.imaging.render import NAMED_PALETTE, draw_regions, draw_upstream_mmvm, palette, scaled_thickness
from cvbench.prompting.build import PromptSettings, build_prompt
from cvbench.prompting.protocols.mmvm import (
    mmvm_options,
    mmvm_question,
    render_candidate_view,
    render_query_view,
)

HW = (1080, 1920)
N_CANDIDATES = 37


def scene(seed: int) -> np.ndarray:
    """A photo-like busy background (gradients + blotches + noise)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0 : HW[0], 0 : HW[1]]
    img = np.stack([xs * 255 // HW[1], ys * 255 // HW[0], (xs + ys) * 255 // (HW[0] + HW[1])], -1).astype(np.uint8)
    for _ in range(60):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.circle(
            img, (int(rng.integers(0, HW[1])), int(rng.integers(0, HW[0]))), int(rng.integers(10, 120)), colour, -1
        )
    noise = rng.integers(-10, 11, img.shape)
    return np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)


def candidate_masks(seed: int) -> list[np.ndarray]:
    """37 irregular objects of varied size, some touching or overlapping, as in crowded MMVM cases."""
    rng = np.random.default_rng(seed)
    masks = []
    for _ in range(N_CANDIDATES):
        m = np.zeros(HW, np.uint8)
        cx, cy = int(rng.integers(80, HW[1] - 80)), int(rng.integers(80, HW[0] - 80))
        pts = []
        r = rng.integers(25, 110)
        for a in np.linspace(0, 2 * np.pi, 14, endpoint=False):
            rr = r * rng.uniform(0.6, 1.3)
            pts.append((int(cx + rr * np.cos(a)), int(cy + rr * 0.8 * np.sin(a))))
        cv2.fillPoly(m, [np.array(pts, np.int32)], 1)
        masks.append(m.astype(bool))
    return masks


def timings_ms(fn: Callable[[], object], repeats: int) -> dict[str, float]:
    """Wall-clock median/min/max, and the median CPU time of this process (which other
    processes competing for the cores inflate much less than the wall clock)."""
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        cpu.append((time.process_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
    return {
        "median_ms": round(statistics.median(wall), 2),
        "min_ms": round(min(wall), 2),
        "max_ms": round(max(wall), 2),
        "cpu_median_ms": round(statistics.median(cpu), 2),
        "repeats": repeats,
    }


def mmvm_sample(root: Path, image: np.ndarray, query: np.ndarray, masks: list[np.ndarray], ids: list[str]) -> Sample:
    for name, img in (("q.jpg", image), ("c.jpg", image)):
        Image.fromarray(img).save(root / name, quality=92)
    regions = tuple(
        Region(region_id=i, polygons=tuple(tuple(p) for p in mask_to_polygons(m)), declared_hw=HW)
        for i, m in zip(ids, masks)
    )
    options = mmvm_options(ids)
    return Sample(
        sample_id="bench",
        benchmark="mmvm",
        question="",
        options=options,
        answer="A",
        views=(
            View(
                "q",
                ImageRef(root / "q.jpg"),
                (Region("0", polygons=tuple(tuple(p) for p in mask_to_polygons(query)), declared_hw=HW),),
            ),
            View("c", ImageRef(root / "c.jpg"), regions),
        ),
        cluster="bench",
        source=SourceLocation("bench"),
        prerendered_question=mmvm_question(options),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "render.json")
    parser.add_argument("--save-image", type=Path, default=None, help="also write the 37-candidate view here (PNG)")
    args = parser.parse_args(argv)

    image = scene(0)
    masks = candidate_masks(1)
    query = masks[0]
    ids = [str(i + 1) for i in np.random.default_rng(2).permutation(N_CANDIDATES)]
    results: dict[str, dict[str, float]] = {}

    def record(name: str, fn: Callable[[], object], repeats: int) -> None:
        t = timings_ms(fn, repeats)
        results[name] = t
        print(
            f"{name:16s} median {t['median_ms']:8.2f} ms   (min {t['min_ms']:.2f}, max {t['max_ms']:.2f}; "
            f"cpu median {t['cpu_median_ms']:.2f}; n={repeats})"
        )

    load_before = os.getloadavg()[0]

    record("candidate_view", lambda: render_candidate_view(image, masks, ids, np.random.default_rng(3)), args.repeats)
    upstream_colours = [c.rgb for c in palette(len(masks))]
    record(
        "candidate_view_upstream",
        lambda: draw_upstream_mmvm(image, masks, upstream_colours, tags=[str(i) for i in ids]),
        args.repeats,
    )
    record("query_view", lambda: render_query_view(image, query), args.repeats)
    cvb_colours = [c.rgb for c in NAMED_PALETTE[:2]]
    px = scaled_thickness(2, HW)
    record(
        "crossviewbench",
        lambda: [
            draw_regions(image, masks[2 * k : 2 * k + 2], cvb_colours, "mask", alpha=0.4, thickness=px)
            for k in range(3)
        ],
        args.repeats,
    )
    with tempfile.TemporaryDirectory() as tmp:
        sample = mmvm_sample(Path(tmp), image, query, masks, ids)
        settings = PromptSettings(mode="overlay")
        record("build_prompt", lambda: build_prompt(sample, settings, Capabilities(), "all"), max(5, args.repeats // 5))
    if args.save_image is not None:
        out = render_candidate_view(image, masks, ids, np.random.default_rng(3))
        Image.fromarray(out).save(args.save_image)
    payload = {
        "benchmark": "render",
        "case": f"MMVM {N_CANDIDATES} candidates on {HW[1]}x{HW[0]}",
        "budget_ms": {"candidate_view": 100, "candidate_view_upstream": 100},
        "results": results,
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "processor": platform.machine(),
            "opencv": cv2.__version__,
            "numpy": np.__version__,
            "cv2_threads": cv2.getNumThreads(),
            "cpus": os.cpu_count(),
            "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")
    ok = all(results[k]["median_ms"] < 100 for k in ("candidate_view", "candidate_view_upstream"))
    print("candidate views (cvbench contour and upstream rule) within budget (< 100 ms):", "yes" if ok else "NO")
    cpus = os.cpu_count() or 1
    if max(load_before, os.getloadavg()[0]) > cpus:
        print(
            f"note: load average {max(load_before, os.getloadavg()[0]):.1f} on {cpus} CPUs; wall-clock figures are "
            f"inflated by other processes, see cpu_median_ms"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
