"""What the held-out CrossViewBench probe reads, per task type (issue 23).

Fits the probe of bench/heldout_shortcut.py on one generated set and scores it on another, with
every feature column alone and with every column left out; then splits the full probe's hits by
whether the question has a look-alike. A column that scores well alone, or whose removal costs
the most, is what the generator still leaves in the pixels for that type.

    PYTHONPATH=$PWD .venv/bin/python bench/probe_anatomy_cvb.py --type Q7 \\
        --train SET_SEED8/crossviewbench.jsonl --test SET_SEED7/crossviewbench.jsonl

(sets from `generate_crossviewbench(folder, per_type, seed, types)` or `cvbench data synth`).
Column order is that of `option_features` for the type (see bench/heldout_shortcut.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.heldout_shortcut import fit_probe, option_features
from cvbench.core.types import OPTION_LETTERS

Example = tuple[np.ndarray, int, dict[str, Any]]


def examples(jsonl: Path, qtype: str) -> list[Example]:
    out = []
    for line in jsonl.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r["question_type"] == qtype:
            out.append((option_features(r, jsonl.parent), OPTION_LETTERS.index(r["answer"]), r))
    if not out:
        raise SystemExit(f"{jsonl}: no {qtype} questions")
    return out


def hits(train: list[Example], test: list[Example], cols: Sequence[int]) -> list[bool]:
    """Per test question: whether the probe fitted on `train` over columns `cols` is right."""
    w, mean, scale = fit_probe([(x[:, cols], y) for x, y, _ in train])
    return [int(np.argmax(((x[:, cols] - mean) / scale) @ w)) == y for x, y, _ in test]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--type", required=True, help="task type, e.g. Q7")
    ap.add_argument("--train", type=Path, required=True, help="crossviewbench.jsonl the probe is fitted on")
    ap.add_argument("--test", type=Path, required=True, help="crossviewbench.jsonl of another seed, scored")
    args = ap.parse_args(argv)
    train, test = examples(args.train, args.type), examples(args.test, args.type)
    k = train[0][0].shape[1]
    every = list(range(k))
    full = hits(train, test, every)
    chance = float(np.mean([1.0 / x.shape[0] for x, _, _ in test]))
    print(f"{args.type}: {len(test)} questions, chance {100 * chance:.0f}%, probe {100 * np.mean(full):.0f}%")
    print("column  alone  without")
    for c in every:
        alone = np.mean(hits(train, test, [c]))
        without = np.mean(hits(train, test, [j for j in every if j != c]))
        print(f"{c:6d}  {100 * alone:4.0f}%  {100 * without:6.0f}%")
    split = Counter((bool(r["metadata"]["lookalike"]), h) for (_, _, r), h in zip(test, full))
    for flag in (True, False):
        n = split[(flag, True)] + split[(flag, False)]
        if n:
            print(f"look-alike {flag!s:5}: {split[(flag, True)]} of {n} right")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
