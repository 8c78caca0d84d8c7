from __future__ import annotations

import pytest

from cvbench.core.types import Option
from cvbench.scoring.parsing import answer_from_scores, judge_prompt_text, parse_answer, parse_judge

ABCD = tuple(
    Option(letter, text)
    for letter, text in zip("ABCD", ["the red mug", "the blue chair", "the green lamp", "none of them"])
)
NUMERIC = tuple(Option(letter, str(i)) for letter, i in zip("ABCDEFGHIJK", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))
NUMERIC_NO_11 = NUMERIC[:10]
YES_NO = (Option("A", "Yes"), Option("B", "No"))
MANY = tuple(Option(letter, f"object {i}") for i, letter in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))


@pytest.mark.parametrize(
    "text, options, letter",
    [
        ("A", ABCD, "A"),
        ("(A)", ABCD, "A"),
        ("A.", ABCD, "A"),
        ("A)", ABCD, "A"),
        ("[C]", ABCD, "C"),
        ("**A**", ABCD, "A"),
        ("Answer: A", ABCD, "A"),
        ("answer: (B)", ABCD, "B"),
        ("The answer is A. 1", NUMERIC, "A"),
        ("A. 1", NUMERIC, "A"),
        ("B. the blue chair", ABCD, "B"),
        ("Option B", ABCD, "B"),
        ("option d.", ABCD, "D"),
        ("b", ABCD, "B"),
        ("(c)", ABCD, "C"),
        ("  D  \n", ABCD, "D"),
        ("The red one is on the left while the blue one moved.\nSo the answer is: C", ABCD, "C"),
        ("Looking at image 1, A is red, B is blue.\nFinal answer: **D**", ABCD, "D"),
        ("Reasoning about views...\nC", ABCD, "C"),
        ("<think>maybe A, maybe B</think>B", ABCD, "B"),
        ("The answer is B.", ABCD, "B"),
        ("I choose option C because it matches.", ABCD, "C"),
        ("the blue chair", ABCD, "B"),
        ("The Blue Chair!", ABCD, "B"),
        ("Answer: the green lamp.", ABCD, "C"),
        ("Yes", YES_NO, "A"),
        ("no.", YES_NO, "B"),
        ("11", NUMERIC, "K"),
        ("Answer: 11", NUMERIC, "K"),
        ("Z", MANY, "Z"),
        ("The answer is (Y)", MANY, "Y"),
        ("I'd go with (B) here.", ABCD, "B"),
        ("B is correct.", ABCD, "B"),
        ("Option C is the correct answer because the colours match.", ABCD, "C"),
        ("The correct option is (D).", ABCD, "D"),
        ("My answer: A", ABCD, "A"),
        ("Answer: B) the blue chair", ABCD, "B"),
        ("Answer: B. The blue chair is the same object.", ABCD, "B"),
        ("The answer is C.\nExplanation: A is red, B is blue.", ABCD, "C"),
    ],
)
def test_parses(text: str, options: tuple[Option, ...], letter: str) -> None:
    parsed = parse_answer(text, options)
    assert (parsed.letter, parsed.status) == (letter, "parsed"), parsed


@pytest.mark.parametrize(
    "text, options, reason",
    [
        ("", ABCD, "empty"),
        ("   \n ", ABCD, "empty"),
        (None, ABCD, "empty"),
        ("<think>A</think>", ABCD, "empty"),
        ("A or C", ABCD, "several letters"),
        ("The answer is A. No wait, the answer is C.", ABCD, "several letters"),
        ("(A) and (B) both look right", ABCD, "several letters"),
        ("I'm sorry, I cannot determine which object this is.", ABCD, "refusal"),
        ("It is impossible to say; I can't tell.", ABCD, "refusal"),
        ("E", ABCD, "not an option"),
        ("Answer: E", ABCD, "not an option"),
        ("11", NUMERIC_NO_11, "no answer"),  # "11" must never become option "1"
        ("Answer: 11", NUMERIC_NO_11, "no answer"),
        ("1", ABCD, "no answer"),
        ("A red car is parked near the wall.", ABCD, "no answer"),  # "A" the article
        ("I think the mug", ABCD, "no answer"),
        ("blue chair", ABCD, "no answer"),  # option text must match as a whole
        ("the blue chair or the red mug", ABCD, "no answer"),
        ("the answer is probably one of them", ABCD, "no answer"),
        ("A is correct. Actually, B is correct.", ABCD, "several letters"),
        ("I is correct", ABCD, "not an option"),
    ],
)
def test_unparsed(text: str | None, options: tuple[Option, ...], reason: str) -> None:
    parsed = parse_answer(text, options)
    assert parsed.letter is None and parsed.status == "unparsed", parsed
    assert reason in parsed.reason


def test_numeric_option_text_is_never_matched_loosely() -> None:
    # "10" must not become "1", and a number absent from the options is unparsed
    assert parse_answer("10", NUMERIC).letter == "J"
    assert parse_answer("Answer: 1", NUMERIC).letter == "A"
    assert parse_answer("111", NUMERIC).letter is None
    assert parse_answer("It is 11", NUMERIC_NO_11).letter is None


def test_letter_form_with_wrong_tail_is_not_a_letter_answer() -> None:
    # "A. 2" when option A's text is "1": the tail contradicts the letter, so no bare-form match
    assert parse_answer("A. 2", NUMERIC).letter is None


def test_scores_argmax_and_ties() -> None:
    scores = {"A": -2.0, "B": -0.1, "C": -5.0, "D": -3.0, "Z": 10.0}  # Z is not an option: ignored
    assert answer_from_scores(scores, ABCD) == answer_from_scores(dict(scores), ABCD)
    assert answer_from_scores(scores, ABCD).letter == "B"
    assert answer_from_scores(scores, ABCD).status == "logprob"
    tied = answer_from_scores({"A": 1.0, "B": 1.0}, ABCD)
    assert tied.letter is None and "tied" in tied.reason
    assert answer_from_scores({}, ABCD).status == "unparsed"


def test_judge_reply_parsed_strictly() -> None:
    assert parse_judge("C", ABCD).letter == "C" and parse_judge("C", ABCD).status == "judged"
    assert parse_judge("NONE", ABCD).letter is None
    assert parse_judge("**none**", ABCD).letter is None
    assert parse_judge("A or B", ABCD).letter is None
    assert parse_judge("", ABCD).status == "unparsed"
    text = judge_prompt_text("Which one?", ABCD, "I'd say the second one")
    assert "B. the blue chair" in text and "I'd say the second one" in text
