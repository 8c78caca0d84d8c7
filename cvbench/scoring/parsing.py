"""Strict answer parsing, shared by every task: response text -> one option letter, or unparsed.

The rules, in order (the first that decides wins):

1. empty text -> unparsed ("empty"); `<think>...</think>` blocks are ignored.
2. the whole text is an answer form: "A", "(A)", "A.", "**A**", "A) red", "A. 1", "Answer: A",
   "The answer is A. 1", "Option B" -> that letter.
3. explicit answer statements anywhere ("answer is C", "Answer: (C)", "final answer: **C**",
   "I choose option C"): all of them must name the same letter, else unparsed ("several letters").
4. the last non-empty line is an answer form (reasoning followed by a bare "C").
5. the text (after an optional "Answer:" prefix) equals one option's text, compared
   case- and punctuation-insensitively as a whole; numeric texts compare as whole numbers only
   ("11" never matches option "1").
6. "(B)" or "option B" mentions: exactly one distinct letter -> that letter.
7. otherwise unparsed, with the reason: a refusal, several letters, a letter outside the
   options, or no answer found.

Letters are upper case A-Z; a lower-case letter counts only when it is the whole answer
("b", "(b)"). A letter that is not among the options is never accepted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from cvbench.core.types import OPTION_LETTERS, Option, ParsedAnswer

_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_MARKUP = re.compile(r"[*_`#]+")
# a bare answer form: optional "option"/"answer:" prefix, the letter, optional brackets and a tail
# that is punctuation or the option text after "." / ")" / ":"
_LETTER_FORM = re.compile(
    r"""^\s*(?:(?:the\s+)?(?:final\s+|correct\s+)?answer\s*(?:is|:|=|-)?\s*(?:option\s*)?|option\s*|choice\s*)?
        [\(\[\{]?\s*(?P<letter>[A-Za-z])\s*[\)\]\}]?
        (?:\s*(?:[.:)\]]|-\s)(?P<tail>.*))?\s*[.!]?\s*$""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL,
)
_ANSWER_STATEMENT = re.compile(
    r"""(?:\banswer\s*(?:is|would\s+be|should\s+be|will\s+be|:|=)|\bI\s+(?:would\s+)?(?:choose|pick|select)|
        \bmy\s+(?:choice|pick)\s+is|\bcorrect\s+(?:option|choice)\s+is)
        \s*:?\s*(?:option\s*|choice\s*)?[\(\[]?\s*(?P<letter>[A-Z])(?![A-Za-z0-9])""",
    re.IGNORECASE | re.VERBOSE,
)
_LETTER_IS_CORRECT = re.compile(
    r"(?<![A-Za-z0-9'])(?:option\s+|choice\s+)?\(?(?P<letter>[A-Z])\)?\s+is\s+(?:the\s+)?(?:correct|right|best)\b"
    r"(?:\s+(?:answer|option|choice))?"
)
_PAREN_LETTER = re.compile(r"\((?P<letter>[A-Z])\)")
_OPTION_MENTION = re.compile(r"\b(?i:option|choice)\s+\(?(?P<letter>[A-Z])(?![A-Za-z0-9])")
_STANDALONE_LETTER = re.compile(r"(?<![A-Za-z0-9'])(?P<letter>[A-Z])(?![A-Za-z0-9'])")
_ANSWER_PREFIX = re.compile(r"^\s*(?:(?:the\s+)?(?:final\s+)?answer\s*(?:is|:|=)\s*)", re.IGNORECASE)
_REFUSAL = re.compile(
    r"\b(?:I\s*(?:'m|am)\s+(?:sorry|unable|not\s+able)|I\s+(?:cannot|can't|can\s*not|won't)|"
    r"unable\s+to\s+(?:determine|answer|identify|tell)|cannot\s+(?:be\s+)?determined?|"
    r"can't\s+(?:be\s+)?determined?|not\s+possible\s+to\s+(?:determine|tell)|as\s+an\s+AI)",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?$")


def parse_answer(text: str | None, options: Sequence[Option]) -> ParsedAnswer:
    """The single option letter `text` commits to, or `unparsed` with the reason."""
    if text is None or not text.strip():
        return ParsedAnswer(None, "unparsed", "empty")
    letters = {o.letter for o in options}
    body = _MARKUP.sub("", _THINK.sub("", text)).strip()
    if not body:
        return ParsedAnswer(None, "unparsed", "empty")

    whole = _letter_form(body, options)
    if whole is not None:
        return _accept(whole, letters)

    stated = _distinct(
        [m.group("letter") for m in _ANSWER_STATEMENT.finditer(body)]
        + [m.group("letter") for m in _LETTER_IS_CORRECT.finditer(body)]
    )
    stated = [s for s in stated if s.isupper()]
    if len(stated) > 1:
        return ParsedAnswer(None, "unparsed", f"several letters: {', '.join(stated)}")
    if len(stated) == 1:
        return _accept(stated[0], letters)

    lines = [ln for ln in body.splitlines() if ln.strip()]
    if len(lines) > 1:
        last = _letter_form(lines[-1], options, allow_lower=False)
        if last is not None:
            return _accept(last, letters)

    by_text = _match_option_text(body, options)
    if by_text is not None:
        return ParsedAnswer(by_text, "parsed", "option text")

    mentioned = _distinct(
        [m.group("letter") for m in _PAREN_LETTER.finditer(body)]
        + [m.group("letter") for m in _OPTION_MENTION.finditer(body)]
    )
    if len(mentioned) == 1:
        return _accept(mentioned[0], letters)
    if len(mentioned) > 1:
        return ParsedAnswer(None, "unparsed", f"several letters: {', '.join(mentioned)}")

    if _REFUSAL.search(body):
        return ParsedAnswer(None, "unparsed", "refusal")
    loose = _distinct(
        m.group("letter")
        for m in _STANDALONE_LETTER.finditer(body)
        if m.group("letter") in letters and not _is_word(body, m)
    )
    if len(loose) > 1:
        return ParsedAnswer(None, "unparsed", f"several letters: {', '.join(loose)}")
    return ParsedAnswer(None, "unparsed", "no answer found")


TIE_PREFIX = "tied option scores"


def answer_from_scores(
    scores: Mapping[str, float], options: Sequence[Option], tie_break: str | None = None
) -> ParsedAnswer:
    """Option-logprob scoring: the option letter with the highest score (status `logprob`).

    Equal top scores are no answer, unless `tie_break="first"`: then the first tied letter in
    option order wins (a model whose authors score with argmax), and the reason names the tie."""
    usable = {
        o.letter: float(scores[o.letter])
        for o in options
        if o.letter in scores and scores[o.letter] is not None and not math.isnan(float(scores[o.letter]))
    }
    if not usable:
        return ParsedAnswer(None, "unparsed", "no option scores")
    best = max(usable.values())
    top = sorted(letter for letter, value in usable.items() if value == best)
    if len(top) > 1:
        if tie_break == "first":
            first = next(o.letter for o in options if o.letter in top)
            return ParsedAnswer(first, "logprob", f"{TIE_PREFIX}: {', '.join(top)}; first letter {first} (argmax)")
        if tie_break is not None:
            raise ValueError(f"unknown tie_break {tie_break!r}")
        return ParsedAnswer(None, "unparsed", f"{TIE_PREFIX}: {', '.join(top)}")
    return ParsedAnswer(top[0], "logprob")


# ---------------------------------------------------------------------------------- judge

JUDGE_NONE = "NONE"


def judge_prompt_text(question: str, options: Sequence[Option], response: str) -> str:
    """The instruction sent to a judge model for a response the strict parser could not read."""
    option_lines = "\n".join(o.line for o in options)
    return (
        "You check which option a model's answer to a multiple-choice question commits to.\n"
        "Do not solve the question yourself. If the answer commits to exactly one option, reply with that "
        f"option's letter only. If it commits to none, to several, or refuses, reply with {JUDGE_NONE} only.\n\n"
        f"Question:\n{question}\n\nOptions:\n{option_lines}\n\n"
        f"Model answer:\n<<<\n{response}\n>>>\n\nReply with one letter or {JUDGE_NONE}."
    )


def parse_judge(text: str | None, options: Sequence[Option]) -> ParsedAnswer:
    """A judge's reply, parsed as strictly as any answer; `NONE` keeps the answer unparsed."""
    if text is not None and re.fullmatch(r"\W*none\W*", _MARKUP.sub("", text).strip(), re.IGNORECASE):
        return ParsedAnswer(None, "unparsed", "judge: no single answer")
    parsed = parse_answer(text, options)
    if parsed.letter is None:
        return ParsedAnswer(None, "unparsed", f"judge reply unparsed ({parsed.reason})")
    return ParsedAnswer(parsed.letter, "judged", "judge")


# ---------------------------------------------------------------------------------- helpers


def _accept(letter: str, letters: set[str]) -> ParsedAnswer:
    letter = letter.upper()
    if letter not in letters:
        return ParsedAnswer(None, "unparsed", f"letter {letter} is not an option")
    return ParsedAnswer(letter, "parsed")


def _distinct(items: object) -> list[str]:
    seen: list[str] = []
    for item in items:  # type: ignore[attr-defined]
        if item not in seen:
            seen.append(item)
    return seen


def _letter_form(text: str, options: Sequence[Option], allow_lower: bool = True) -> str | None:
    """The letter when `text` as a whole is an answer form, else None.

    A tail after the letter is accepted only when it is empty or that option's own text, so
    "A. 1" reads as A but "A red car" does not read as anything.
    """
    m = _LETTER_FORM.match(text)
    if m is None:
        return None
    letter = m.group("letter")
    tail = (m.group("tail") or "").strip()
    if letter.islower():
        # lower case only as the whole answer: "b", "(b)", "option d." (never "answer is a red mug")
        bare = (
            re.fullmatch(r"\s*(?:option|choice|answer\s*:)?\s*[\(\[]?\s*[a-z]\s*[\)\]]?\s*[.]?\s*", text, re.IGNORECASE)
            is not None
        )
        if not (allow_lower and bare):
            return None
        letter = letter.upper()
    if tail:
        option = next((o for o in options if o.letter == letter), None)
        if option is None or _normalise(tail) != _normalise(option.text):
            return None
    return letter


def _normalise(text: str) -> str:
    """Lower case, punctuation removed, whitespace collapsed (for whole-text comparison)."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _match_option_text(text: str, options: Sequence[Option]) -> str | None:
    candidate = _ANSWER_PREFIX.sub("", text).strip()
    if _NUMBER.match(candidate.rstrip(".")):
        number = candidate.rstrip(".")
        hits = [o.letter for o in options if _NUMBER.match(o.text.strip()) and float(o.text.strip()) == float(number)]
        return hits[0] if len(hits) == 1 else None
    norm = _normalise(candidate)
    if not norm:
        return None
    hits = [o.letter for o in options if not _NUMBER.match(o.text.strip()) and _normalise(o.text) == norm]
    return hits[0] if len(hits) == 1 else None


def _is_word(text: str, m: re.Match[str]) -> bool:
    """'A' or 'I' used as an English word ("A red car", "I think")."""
    if m.group("letter") not in ("A", "I"):
        return False
    rest = text[m.end() :]
    if re.match(r"\s+(?:or|and|vs|nor|is|was|looks|seems|then)\b", rest):
        return False  # "A or C", "A is correct": the letter, not the article
    return re.match(r"\s+[a-z]", rest) is not None or re.match(r"\s*'", rest) is not None


__all__ = ["JUDGE_NONE", "OPTION_LETTERS", "answer_from_scores", "judge_prompt_text", "parse_answer", "parse_judge"]
