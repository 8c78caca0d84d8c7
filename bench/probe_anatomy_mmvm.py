"""What the held-out MMVM probe learns (issue 23): its standardised coefficients, and its accuracy per
cue when each feature group is dropped (or kept alone) and the probe refitted.

    PYTHONPATH=$PWD .venv/bin/python bench/probe_anatomy_mmvm.py --train DIR_SEED8 --test DIR_SEED7

DIR_* are synthetic MMVM sets (`cvbench data synth --benchmark mmvm`). Besides the probe's own
features (query-candidate distances, raw and standardised within the case) it also scores
*diagnostic* candidate-only features (the candidate's own area, distance from the image centre,
frame contact, convex fill in the candidate view, standardised within the case), which a rule
that never looks at the query could read: a match that stands out by itself in the candidate view.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.heldout_shortcut_mmvm import FEATURE_NAMES, Case, load_cases, tally, train_probe
from cvbench.imaging.masks import polygons_to_mask
from cvbench.imaging.region_stats import region_features

GROUPS: dict[str, tuple[str, ...]] = {
    "colour": ("greyworld-lab", "rgb-hist", "rs-hist", "rs-lab", "lab-L", "lab-a", "lab-b"),
    "shape": ("hu-shape", "hu1", "hu2", "hu3", "hu4", "rs-aspect"),
    "area": ("area",),
    "position": ("position",),
}
DIAGNOSTIC = ("own-log-area", "own-centre-dist", "own-border", "own-fill")


def columns(names: Sequence[str], keep: set[str], within: bool | None = None) -> list[int]:
    """Indices of the probe's features whose base name is in `keep` (raw, within-case or both)."""
    out = []
    for i, name in enumerate(FEATURE_NAMES):
        kind, base = name.split(":", 1)
        if base in keep and (within is None or (kind == "within") == within):
            out.append(i)
    return out


def diagnostic(case: Case) -> np.ndarray:
    """Candidate-only statistics of the candidate view, standardised within the case."""
    view = case.sample.views[-1]
    from PIL import Image

    image = np.asarray(Image.open(view.image.path).convert("RGB"))
    h, w = image.shape[:2]
    rows = []
    for r in view.regions:
        f = region_features(image, polygons_to_mask(r.polygons, h, w))
        cx, cy = f.centroid
        rows.append([np.log(max(f.area, 1e-6)), float(np.hypot(cx - 0.5, cy - 0.5)), float(f.border), f.fill])
    raw = np.array(rows)
    std = raw.std(axis=0)
    return np.asarray((raw - raw.mean(axis=0)) / np.where(std > 1e-9, std, 1.0))


def score(train: Sequence[Case], test: Sequence[Case], cols: list[int]) -> dict[str, float]:
    probe = train_probe([replace(c, features=c.features[:, cols]) for c in train])
    t = tally(test, lambda c: probe.scores(c.features[:, cols]))
    out = {"overall": float(np.mean(t["overall"]["mmvm"].right))}
    out.update({cue: float(np.mean(v.right)) for cue, v in sorted(t["mmvm_cue"].items())})
    return out


def line(label: str, figures: dict[str, float]) -> str:
    return f"{label:28s} " + " ".join(f"{k} {100 * v:4.0f}" for k, v in figures.items())


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=Path, required=True, help="set the probe is fitted on")
    ap.add_argument("--test", type=Path, required=True, help="set it is scored on")
    ap.add_argument("--diagnostic", action="store_true", help="also fit on candidate-only features")
    args = ap.parse_args(argv)
    tsv = "mllm_match_eval_full.tsv"
    train, test = load_cases(args.train / tsv), load_cases(args.test / tsv)
    every = list(range(len(FEATURE_NAMES)))
    probe = train_probe(train)
    print("standardised coefficients (a positive weight on a distance: the match is FARTHER from the query)")
    for i in np.argsort(-np.abs(probe.weights)):
        print(f"  {FEATURE_NAMES[i]:24s} {probe.weights[i]:+.3f}")
    print(line("all features", score(train, test, every)))
    every_name = set(sum(GROUPS.values(), ()))
    for kind in (False, True):
        label = "within-case only" if kind else "raw only"
        print(line(label, score(train, test, columns(FEATURE_NAMES, every_name, kind))))
    for group, names in GROUPS.items():
        drop = [i for i in every if i not in columns(FEATURE_NAMES, set(names))]
        print(line(f"without {group}", score(train, test, drop)))
        print(line(f"{group} only", score(train, test, columns(FEATURE_NAMES, set(names)))))
    if args.diagnostic:
        extra_train = [replace(c, features=diagnostic(c)) for c in train]
        extra_test = [replace(c, features=diagnostic(c)) for c in test]
        print(line("candidate-only diagnostic", score(extra_train, extra_test, list(range(len(DIAGNOSTIC))))))
        p = train_probe(extra_train)
        print("  " + ", ".join(f"{n} {w:+.2f}" for n, w in zip(DIAGNOSTIC, p.weights)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
