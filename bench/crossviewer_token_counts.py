"""Check cvbench's host-side CrossViewer region-token count against the upstream function itself.

Run by hand with a checkout of Thinkirin/Crossview-Suite (cvbench never vendors its code):

    python bench/crossviewer_token_counts.py --repo /path/to/Crossview-Suite [--trials 300]

It imports `crossviewer.gpu_preprocess.resize_image_mask_torch` from the checkout and compares its
token count with `cvbench.model_adapters.crossviewer_eval.region_token_count` on random masks
(boxes, lines, scattered pixels, image-edge objects) at three max-pixel clamps, including the
model's fallback 28*28*1280. Prints the number of masks compared and every disagreement; exit
status 1 when any.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def random_mask(rng: np.random.Generator, trial: int) -> np.ndarray:
    h, w = (int(x) for x in rng.integers(20, 900, size=2))
    mask = np.zeros((h, w), bool)
    kind = trial % 4
    if kind == 0:
        mask[rng.integers(0, h, 5), rng.integers(0, w, 5)] = True
    elif kind == 1:
        top, left = int(rng.integers(0, h)), int(rng.integers(0, w))
        mask[top : top + int(rng.integers(1, h)), left : left + int(rng.integers(1, w))] = True
    elif kind == 2:
        mask[int(rng.integers(0, h)), int(rng.integers(0, w // 2)) :] = True
    else:  # touching the far image edge (upstream's crop end is exclusive there)
        mask[h - int(rng.integers(1, 4)) :, w - int(rng.integers(1, 40)) :] = True
    return mask


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, required=True, help="checkout of Thinkirin/Crossview-Suite")
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import torch

    sys.path.insert(0, str(args.repo / "CrossViewer"))
    from crossviewer.gpu_preprocess import resize_image_mask_torch  # type: ignore[import-not-found]

    from cvbench.model_adapters.crossviewer_eval import region_token_count

    rng = np.random.default_rng(args.seed)
    compared = 0
    bad: list[str] = []
    for trial in range(args.trials):
        mask = random_mask(rng, trial)
        image = torch.zeros((*mask.shape, 3), dtype=torch.uint8)
        for max_pixels in (28 * 28 * 1280, 150_000, None):
            _, _, nums, _ = resize_image_mask_torch(
                [image],
                [torch.from_numpy(mask.astype(np.float32))],
                [0],
                patch_size=14,
                max_tokens=32,
                max_resize_pixels=max_pixels,
            )
            ours = region_token_count(mask, max_tokens=32, max_resize_pixels=max_pixels)
            compared += 1
            if ours != int(nums[0]):
                bad.append(
                    f"trial {trial} {mask.shape} area {int(mask.sum())} max_pixels {max_pixels}: "
                    f"upstream {nums[0]}, cvbench {ours}"
                )
    print(f"compared {compared} counts; {len(bad)} disagree")
    for line in bad:
        print("  " + line)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
