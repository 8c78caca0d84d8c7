"""Answer parsing speed: `parse_answer` over 100,000 responses of realistic shapes.

    .venv/bin/python bench/parse_bench.py [--n 100000] [--seed 0]

The responses mix what models actually write (bare letters, "Answer: (C)", markdown, a long
chain of reasoning ending in a letter, <think> blocks, option texts, numeric MMVM options,
refusals, several letters), with 2, 4 or 26 options. Prints responses/second overall and per
shape, the share of each parse status, and writes bench/results/parse.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, write_result

from cvbench.core.seeding import rng_for
from cvbench.core.types import OPTION_LETTERS, Option
from cvbench.scoring.parsing import parse_answer

REASONING = (
    "Looking at the first image, the object highlighted in red sits on the table near the left edge. "
    "In the second image the camera moved to the right, so the same object should appear closer to the "
    "centre. Comparing colour, shape and position of the candidates, "
)


def make_options(kind: int) -> tuple[Option, ...]:
    if kind == 2:
        return (Option("A", "Yes"), Option("B", "No"))
    if kind == 4:
        return tuple(
            Option(OPTION_LETTERS[k], f"the {w} one") for k, w in enumerate(["first", "second", "third", "fourth"])
        )
    ids = list(range(1, 26))
    return tuple(Option(OPTION_LETTERS[k], str(i)) for k, i in enumerate(ids)) + (
        Option("Z", "None of the above choices are correct"),
    )


SHAPES = {
    "bare": lambda L, o: L,
    "answer_colon": lambda L, o: f"Answer: ({L})",
    "markdown": lambda L, o: f"**{L}**",
    "letter_and_text": lambda L, o: f"{L}. {o.text}",
    "reasoning_then_letter": lambda L, o: REASONING * 3 + f"the best match is the {o.text}.\n\n{L}",
    "answer_is": lambda L, o: REASONING + f"so the answer is {L}.",
    "think_block": lambda L, o: f"<think>{REASONING * 4}</think>\nThe answer is {L}",
    "option_text": lambda L, o: o.text,
    "refusal": lambda L, o: "I'm sorry, but I cannot determine which object is the same from these images.",
    "several_letters": lambda L, o: f"It is either A or {L}, hard to say; answer is A or answer is {L}.",
}


def build(n: int, seed: int) -> list[tuple[str, str, tuple[Option, ...]]]:
    rng = rng_for(seed, "parse-bench")
    option_sets = {k: make_options(k) for k in (2, 4, 26)}
    names = list(SHAPES)
    items = []
    for i in range(n):
        shape = names[i % len(names)]
        options = option_sets[(2, 4, 26)[int(rng.integers(0, 3))]]
        opt = options[int(rng.integers(0, len(options)))]
        items.append((shape, SHAPES[shape](opt.letter, opt), options))
    return items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    items = build(args.n, args.seed)
    statuses: Counter[str] = Counter()
    per_shape: dict[str, float] = Counter()
    counts: Counter[str] = Counter()
    cpu0 = time.process_time()
    start = time.perf_counter()
    for shape, text, options in items:
        t = time.perf_counter()
        statuses[parse_answer(text, options).status] += 1
        per_shape[shape] += time.perf_counter() - t
        counts[shape] += 1
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    result = {
        "benchmark": "parse",
        "n": args.n,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "responses_per_s": round(args.n / wall),
        "us_per_response": round(wall / args.n * 1e6, 2),
        "per_shape_us": {k: round(per_shape[k] / counts[k] * 1e6, 2) for k in SHAPES},
        "statuses": dict(statuses),
        "machine": machine(),
    }
    print(
        f"parse_answer: {args.n} responses in {wall:.2f} s ({result['responses_per_s']:,}/s, "
        f"{result['us_per_response']} us each; cpu {cpu:.2f} s)"
    )
    for k, v in result["per_shape_us"].items():
        print(f"  {k:24s} {v:8.2f} us")
    print(f"  statuses: {dict(statuses)}")
    print(f"wrote {write_result('parse', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
