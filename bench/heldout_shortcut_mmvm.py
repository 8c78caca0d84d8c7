"""Held-out appearance shortcuts for the synthetic MMVM set (issue 23): rules over the written case
files that the generator does NOT steer by, and a learned probe.

The generator plans the true match's rank under the `mask-heuristic`'s appearance statistics
(HSV histogram 12x4x4, mean CIELAB colour, box aspect; cvbench/imaging/region_stats.py), so that
baseline scores chance by construction. These rules read other statistics of the same files
(FRAME00_ORI.jpg + FRAME00.json, FRAME01_ORI.jpg + FRAME01_CAND.json) and pick the candidate
most like the query:

- `heldout-greyworld-lab`: nearest mean CIELAB colour after per-image grey-world normalisation
  (each image's channels scaled to a common mean, undoing a white balance);
- `heldout-rgb-hist`: RGB histogram intersection, 6x6x6 bins, on the grey-world pixels;
- `heldout-hu-shape`: nearest log-scaled Hu moments of the mask;
- `heldout-area`: nearest mask area (as a share of the image; log scale);
- `heldout-position`: nearest mask centroid (as a share of width and height);
- `heldout-probe`: a logistic regression over per-candidate features (the above distances and
  the region_stats ones, each also standardised within its case) trained on a set generated
  from another seed, picking the candidate with the highest score.

Each is scored per setting (4, 8, 12, all) through cvbench's own candidate selection
(`select_candidates`, the runner's seed 0), so the subsets, ids, options and answers are the
ones a run scores. None of them ever picks "None of the above". Used by
bench/synthetic_validity.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from cvbench.core.types import Sample
from cvbench.imaging.masks import polygons_to_mask
from cvbench.imaging.region_stats import appearance_at
from cvbench.prompting.protocols.mmvm import SETTINGS, select_candidates
from cvbench.tasks.mmvm import iter_mmvm

RUN_SEED = 0  # the seed bench/synthetic_validity.py runs the baselines with (candidate subsets)
HIST_BINS = 6
PROBE_STEPS = 3000
PROBE_L2 = 1e-3


@dataclass(frozen=True)
class Region:
    lab: np.ndarray  # mean CIELAB colour of the grey-world normalised pixels
    hist: np.ndarray  # normalised 6x6x6 RGB histogram of the grey-world pixels
    hu: np.ndarray  # log-scaled Hu moments of the mask
    log_area: float  # log of the mask's share of the image
    centroid: np.ndarray  # (x, y) as shares of width and height
    rs_hist: np.ndarray  # region_stats' HSV histogram (for the probe only)
    rs_lab: np.ndarray  # region_stats' mean CIELAB colour (for the probe only)
    rs_log_aspect: float


def greyworld(image: np.ndarray) -> np.ndarray:
    means = image.reshape(-1, 3).astype(np.float64).mean(axis=0)
    out: np.ndarray = np.clip(image * (means.mean() / np.maximum(means, 1.0)), 0, 255).astype(np.uint8)
    return out


def region(image: np.ndarray, grey: np.ndarray, mask: np.ndarray) -> Region:
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    px = grey[ys, xs].reshape(-1, 1, 3)
    lab = cv2.cvtColor(px, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64).mean(axis=0)
    hist, _ = np.histogramdd(grey[ys, xs].astype(np.float64), bins=(HIST_BINS,) * 3, range=((0, 256),) * 3)
    hu = cv2.HuMoments(cv2.moments(mask.astype(np.uint8), binaryImage=True)).reshape(-1)
    look = appearance_at(image, ys, xs)
    return Region(
        lab=lab,
        hist=hist.reshape(-1) / max(1.0, hist.sum()),
        hu=-np.sign(hu) * np.log10(np.abs(hu) + 1e-30),
        log_area=float(np.log(max(1, xs.size) / (h * w))),
        centroid=np.array([xs.mean() / w, ys.mean() / h]) if xs.size else np.array([0.5, 0.5]),
        rs_hist=look.hist,
        rs_lab=look.lab,
        rs_log_aspect=float(np.log(max(look.aspect, 1e-3))),
    )


def _load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(Image.open(path).convert("RGB"))
    return image, greyworld(image)


def case_regions(sample: Sample) -> tuple[Region, list[Region]]:
    """The query's region and every candidate's (in the sample's region order)."""
    out = []
    for view in sample.views:
        image, grey = _load(view.image.path)
        h, w = image.shape[:2]
        out.append([region(image, grey, polygons_to_mask(r.polygons, h, w)) for r in view.regions])
    return out[0][0], out[-1]


# distances: smaller = more alike
RULES: dict[str, Callable[[Region, Region], float]] = {
    "heldout-greyworld-lab": lambda q, c: float(np.linalg.norm(q.lab - c.lab)),
    "heldout-rgb-hist": lambda q, c: -float(np.minimum(q.hist, c.hist).sum()),
    "heldout-hu-shape": lambda q, c: float(np.abs(q.hu[:4] - c.hu[:4]).sum()),
    "heldout-area": lambda q, c: abs(q.log_area - c.log_area),
    "heldout-position": lambda q, c: float(np.linalg.norm(q.centroid - c.centroid)),
}


PROBE = "heldout-probe"

# The cues whose defining attribute a rule's statistic measures (docs/synthetic.md, "Own cues"):
# there it reads the very difference the case is about, which no scene design can hide from it
# without hiding it from a person too, so its figure on those cues is reported apart ("own cue")
# and its other figures leave those cases out. The four issue baselines have none.
OWN_CUES: dict[str, tuple[str, ...]] = {
    "heldout-greyworld-lab": ("CL",),  # the query's colour
    "heldout-rgb-hist": ("CL",),
    "heldout-hu-shape": ("SP",),  # the query's shape or posture: its silhouette
    "heldout-area": ("SZ",),  # the query's size
    "heldout-position": (),  # image position is no cue (RP is about the neighbour, not the place in the image)
    PROBE: ("CL", "SP", "SZ"),  # it reads all of the above
}

RAW_NAMES = (
    *(name.removeprefix("heldout-") for name in RULES),
    "rs-hist",
    "rs-lab",
    "rs-aspect",
    "lab-L",
    "lab-a",
    "lab-b",
    "hu1",
    "hu2",
    "hu3",
    "hu4",
)
FEATURE_NAMES = tuple(f"raw:{n}" for n in RAW_NAMES) + tuple(f"within:{n}" for n in RAW_NAMES)


def raw_features(q: Region, c: Region) -> list[float]:
    return [rule(q, c) for rule in RULES.values()] + [
        -float(np.minimum(q.rs_hist, c.rs_hist).sum()),
        float(np.linalg.norm(q.rs_lab - c.rs_lab)),
        abs(q.rs_log_aspect - c.rs_log_aspect),
        *np.abs(q.lab - c.lab),
        *np.abs(q.hu[:4] - c.hu[:4]),
    ]


def case_features(q: Region, cands: Sequence[Region]) -> np.ndarray:
    """Per candidate: the raw distances and the same standardised within the case."""
    raw = np.array([raw_features(q, c) for c in cands])
    std = raw.std(axis=0)
    within = (raw - raw.mean(axis=0)) / np.where(std > 1e-9, std, 1.0)
    return np.hstack([raw, within])


@dataclass(frozen=True)
class Case:
    sample: Sample
    features: np.ndarray  # per candidate
    distances: dict[str, np.ndarray]  # rule -> per candidate
    match: int | None  # candidate index of the query object (None: absent from the candidate view)


def load_cases(tsv: Path) -> list[Case]:
    cases = []
    for sample in iter_mmvm(tsv, tsv.parent):
        if not isinstance(sample, Sample):
            raise SystemExit(f"{tsv}: {sample}")
        q, cands = case_regions(sample)
        gt = select_candidates(sample, "all", RUN_SEED).ground_truth
        ids = [r.region_id for r in sample.views[-1].regions]
        cases.append(
            Case(
                sample,
                case_features(q, cands),
                {name: np.array([rule(q, c) for c in cands]) for name, rule in RULES.items()},
                ids.index(gt) if gt is not None else None,
            )
        )
    return cases


@dataclass(frozen=True)
class Probe:
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def scores(self, features: np.ndarray) -> np.ndarray:
        out: np.ndarray = ((features - self.mean) / self.scale) @ self.weights + self.bias
        return out


def train_probe(cases: Sequence[Case]) -> Probe:
    """Logistic regression (per candidate: the match or not), full-batch gradient descent with a
    little L2, the classes weighted equally."""
    rows = [(c.features, c.match) for c in cases if c.match is not None]
    x = np.vstack([f for f, _ in rows])
    y = np.concatenate([np.eye(len(f))[m] for f, m in rows])
    mean, scale = x.mean(axis=0), np.where(x.std(axis=0) > 1e-9, x.std(axis=0), 1.0)
    z = (x - mean) / scale
    sample_w = np.where(y > 0, 0.5 / y.sum(), 0.5 / (len(y) - y.sum()))
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(PROBE_STEPS):
        p = 1.0 / (1.0 + np.exp(-(z @ w + b)))
        g = sample_w * (p - y)
        w -= 1.0 * (z.T @ g + PROBE_L2 * w)
        b -= 1.0 * float(g.sum())
    return Probe(mean, scale, w, b)


def pick(sample: Sample, setting: str, scores: np.ndarray) -> tuple[bool, int]:
    """(right, options) when the candidate with the highest score among those the setting offers is picked."""
    sel = select_candidates(sample, setting, RUN_SEED)
    by_text = {o.text: o.letter for o in sel.options}
    offered = [(i, by_text[s]) for i, s in zip(sel.indices, sel.ids) if s in by_text]
    best = max(offered, key=lambda t: scores[t[0]])
    return best[1] == sel.answer, len(sel.options)


@dataclass
class Cell:
    """One figure's records: per record whether the pick was right, its chance and its case."""

    right: list[bool] = field(default_factory=list)
    chance: list[float] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)


Tally = dict[str, dict[str, Cell]]  # dimension -> label -> records


def tally(cases: Sequence[Case], scorer: Callable[[Case], np.ndarray], own: Sequence[str] = ()) -> Tally:
    """Every figure's records. With `own` cues (those the rule reads itself, OWN_CUES) the figures of
    the other cues leave out cases that also carry an own cue (as a second label), and
    `overall_off_cue` holds the cases without any."""
    out: Tally = defaultdict(lambda: defaultdict(Cell))
    for case in cases:
        scores = scorer(case)
        cues = case.sample.cues
        reads = any(c in own for c in cues)
        for setting in SETTINGS:
            right, n_opts = pick(case.sample, setting, scores)
            labels = [("overall", "mmvm"), ("mmvm_setting", setting)]
            if own and not reads:
                labels.append(("overall_off_cue", "mmvm"))
            for cue in cues:
                if cue in own or not reads:
                    labels += [("mmvm_cue", cue), ("mmvm_cue_setting", f"{cue}@{setting}")]
            for dim, label in labels:
                cell = out[dim][label]
                cell.right.append(right)
                cell.chance.append(1.0 / n_opts)
                cell.cases.append(case.sample.sample_id)
    return out


def _by_rule(name: str) -> Callable[[Case], np.ndarray]:
    return lambda c: -c.distances[name]


POOLED = ("overall", "overall_off_cue", "mmvm_cue")  # figures over all four settings: each case counts 4 times

Summary = Callable[[Sequence[bool], Sequence[float], Sequence[str] | None], dict[str, Any]]


def heldout_mmvm(tsv: Path, train_tsv: Path | None, summary: Summary) -> dict[str, dict[str, Any]]:
    """Per held-out rule (and the probe, fitted on the set at `train_tsv`, generated from another
    seed; None: no probe): the same figures as a baseline's in bench/synthetic_validity.py
    (`summary(right, chances, cases)`, `cases` given for a figure pooled over the settings), and
    the cues it reads itself (`own_cues`)."""
    cases = load_cases(tsv)
    scorers: dict[str, Callable[[Case], np.ndarray]] = {name: _by_rule(name) for name in RULES}
    train: list[Case] = []
    if train_tsv is not None:
        train = load_cases(train_tsv)
        probe = train_probe(train)
        scorers[PROBE] = lambda c: probe.scores(c.features)
    results: dict[str, dict[str, Any]] = {}
    for name, scorer in scorers.items():
        own = OWN_CUES[name]
        res: dict[str, Any] = {"own_cues": list(own)}
        for dim, labels in tally(cases, scorer, own).items():
            res[dim] = {
                lab: summary(c.right, c.chance, c.cases if dim in POOLED else None) for lab, c in sorted(labels.items())
            }
        if name == PROBE:
            res["trained_on"] = {"tsv": str(train_tsv), "cases": len(train)}
        results[name] = res
    return results
