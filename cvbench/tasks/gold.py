"""Gold answers as the upstream CrossViewer evaluation reads them, beside cvbench's reading.

Upstream (`scripts/eval_mc.py`, `answer_to_label`; docs/formats.md §1.1), given the
answer as a string (`str(answer).strip()`) and the option lines:
1. a string starting with a letter gives that letter, upper-cased (so an option TEXT such as
   "the middle one" gives "T");
2. else the whitespace-normalised, lower-cased answer equal to an option text gives that option;
   else the options whose text contains it or is contained in it, if exactly one;
3. else a string of digits: the first option whose text starts with it, else the 1-based index;
4. else nothing: upstream SKIPS the sample (it leaves the denominator).

cvbench's own reading (`tasks.crossviewbench.normalise_answer`) accepts a letter, an option line
or text, or a number only when exactly one reading fits. `gold_divergence` states where the two
differ; such samples are listed by `cvbench data verify`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from cvbench.core.types import Option

_LEADING_LETTER = re.compile(r"^([A-Za-z])")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def upstream_gold(raw: Any, options: Sequence[Option]) -> str | None:
    """The letter upstream's evaluation takes as correct, or None when it skips the sample."""
    if raw is None or not options:
        return None
    answer = str(raw).strip()
    match = _LEADING_LETTER.match(answer)
    if match:
        return match.group(1).upper()
    wanted = _norm(answer)
    contained: list[str] = []
    for option in options:
        text = _norm(option.text)
        if wanted == text:
            return option.letter
        if wanted and (wanted in text or text in wanted):
            contained.append(option.letter)
    if len(contained) == 1:
        return contained[0]
    if answer.isdigit():
        for option in options:
            if _norm(option.text).startswith(answer):
                return option.letter
        index = int(answer) - 1
        if 0 <= index < len(options):
            return options[index].letter
    return None


def gold_divergence(raw: Any, options: Sequence[Option], ours: str | None, our_error: str | None = None) -> str | None:
    """Why upstream's gold answer differs from cvbench's (`ours`, or `our_error` when cvbench
    cannot resolve it), or None when both read the same letter."""
    theirs = upstream_gold(raw, options)
    letters = {o.letter for o in options}
    if ours is not None and theirs == ours:
        return None
    if theirs is None:
        upstream = "upstream skips the sample (no letter, option text or number it can read)"
    elif theirs not in letters:
        upstream = (
            f"upstream reads {theirs!r} (from the leading letter), which is no option, so it is always scored wrong"
        )
    else:
        upstream = f"upstream reads {theirs}"
    mine = f"cvbench reads {ours}" if ours is not None else f"cvbench cannot resolve it ({our_error})"
    return f"answer {raw!r}: {upstream}; {mine}"
