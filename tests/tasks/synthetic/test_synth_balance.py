"""Balance properties of the generated set (issue 23): answer letters, yes/no and look-alike
distractors spread so that neither the option order nor the answer prior tells the answer."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cvbench.core.types import TASK_TYPES, Option
from cvbench.model_adapters.baselines import text_only_choice
from cvbench.tasks.synthetic.crossviewbench import plan_questions
from cvbench.tasks.synthetic.questions import HALF_LOOKALIKE_TYPES, LOOKALIKE_TYPES, N_OPTIONS, TEMPLATES, YES_NO

VALIDITY_SIZE = 50  # questions per type in bench/synthetic_validity.py


@pytest.fixture(scope="module")
def records(cvb_jsonl: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in cvb_jsonl.read_text(encoding="utf-8").splitlines()]


def _spread(counts: Counter[int], n_values: int) -> int:
    full = [counts.get(k, 0) for k in range(n_values)]
    return max(full) - min(full)


@pytest.mark.parametrize("seed", [0, 7])
def test_the_plan_balances_letters_wordings_and_lookalikes_at_validity_size(seed: int) -> None:
    plan = plan_questions(VALIDITY_SIZE, seed)
    for qtype in TASK_TYPES:
        asks = [ask for t, _, ask in plan if t == qtype]
        assert len(asks) == VALIDITY_SIZE
        assert _spread(Counter(a.target for a in asks), N_OPTIONS[qtype]) <= 1, qtype
        assert _spread(Counter(a.wording for a in asks), len(TEMPLATES[qtype])) <= 1, qtype
        flagged = [a for a in asks if a.lookalike]
        if qtype in HALF_LOOKALIKE_TYPES:  # half with a look-alike of the key object, apart from the answer
            assert abs(2 * len(flagged) - len(asks)) <= 1, qtype
            assert len({a.target for a in flagged}) == N_OPTIONS[qtype], qtype
            continue
        if qtype not in LOOKALIKE_TYPES:
            assert not flagged
            continue
        assert len(flagged) == len(asks), qtype  # every correspondence question has look-alike distractors


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize(("qtype", "places"), [("Q7", 4), ("Q8", 4), ("Q11", 4), ("Q16", 2)])
def test_the_answers_place_in_the_visible_size_order_is_planned_evenly(seed: int, qtype: str, places: int) -> None:
    """How many other options' objects show fewer pixels than the answer's is planned evenly
    (Q7, Q8, Q11: 0-3, Q16: 0-1), so the visible size does not point at the answer; no other type
    plans it. Q14 and Q16 also plan whether their answer is the nearer object to the first camera,
    Q14 whether it is the farther one from the first image's centre, and Q7 how many others stand
    lower in the first image."""
    plan = plan_questions(VALIDITY_SIZE, seed)
    sizes = [ask.size_rank for t, _, ask in plan if t == qtype]
    assert all(s is not None for s in sizes)
    assert _spread(Counter(s for s in sizes if s is not None), places) <= 1
    assert all(ask.size_rank is None for t, _, ask in plan if t not in ("Q7", "Q8", "Q11", "Q16"))
    # drawn apart from the answer index: every size place occurs with more than one answer index
    pairs = {(ask.size_rank, ask.target) for t, _, ask in plan if t == qtype}
    assert all(len({i for s, i in pairs if s == k}) > 1 for k in range(places))
    for ranked, rank_of in (("Q14", "depth_rank"), ("Q16", "depth_rank"), ("Q14", "centre_rank")):
        ranks = [getattr(ask, rank_of) for t, _, ask in plan if t == ranked]
        assert None not in ranks and _spread(Counter(ranks), 2) <= 1, (ranked, rank_of)
    assert all(ask.depth_rank is None for t, _, ask in plan if t not in ("Q14", "Q16"))
    assert all(ask.centre_rank is None for t, _, ask in plan if t != "Q14")
    rows = [ask.row_rank for t, _, ask in plan if t == "Q7"]
    assert None not in rows and _spread(Counter(rows), 4) <= 1
    assert all(ask.row_rank is None for t, _, ask in plan if t != "Q7")
    # Q7's row and size places are drawn apart: each size place meets more than one row place
    q7 = {(ask.size_rank, ask.row_rank) for t, _, ask in plan if t == "Q7"}
    assert all(len({w for z, w in q7 if z == k}) > 1 for k in range(4))


def test_the_plan_order_does_not_group_types_or_answers() -> None:
    plan = plan_questions(VALIDITY_SIZE, 3)
    first_types = {t for t, _, _ in plan[:40]}
    assert len(first_types) >= 10  # interleaved, not type by type
    first_targets = Counter(ask.target for _, _, ask in plan[:200])
    assert min(first_targets[k] for k in range(2)) >= 40


def test_yes_and_no_are_equally_often_right_per_binary_type(records: list[dict[str, Any]]) -> None:
    binary = [
        t
        for t in TASK_TYPES
        if N_OPTIONS[t] == 2
        and all([o.split(". ", 1)[1] for o in r["options"]] == list(YES_NO) for r in records if r["question_type"] == t)
    ]
    assert {"Q5", "Q6", "Q10", "Q13", "Q15", "Q17"} <= set(binary)
    for qtype in binary:
        said = Counter(
            r["options"]["AB".index(r["answer"])].split(". ", 1)[1] for r in records if r["question_type"] == qtype
        )
        assert abs(said["yes"] - said["no"]) <= 1, (qtype, said)


def test_option_texts_are_fixed_per_type_except_the_q4_assignments(records: list[dict[str, Any]]) -> None:
    """The option texts do not depend on the question (Q4 lists 4 of the 6 assignments), so
    their wording and length carry nothing about which one is right."""
    for qtype in TASK_TYPES:
        if qtype == "Q4":
            continue
        option_lists = {tuple(r["options"]) for r in records if r["question_type"] == qtype}
        assert len(option_lists) == 1, (qtype, option_lists)


def test_text_only_picks_by_wording_alone() -> None:
    options = [Option("A", "yes"), Option("B", "no")]
    assert text_only_choice("Is the red box larger?", options) == "A"  # ties: longer text ("yes")
    assert text_only_choice("Which one is the cone?", [Option("A", "a box"), Option("B", "the cone")]) == "B"
    assert text_only_choice("Which?", [Option("A", "x"), Option("B", "y")]) == "B"  # full tie: the later option
    assert text_only_choice("Which?", []) is None


def test_lookalike_distractors_share_colour_and_shape_with_the_key_object(records: list[dict[str, Any]]) -> None:
    """Q1-Q3 with look-alikes: a distractor has the key object's colour, shape and size, so the
    colour histogram and the apparent area cannot pick the right candidate."""
    checked = 0
    for r in records:
        md, t = r["metadata"], r["question_type"]
        if not md["lookalike"] or t not in ("Q1", "Q2", "Q3"):
            continue
        objs, ro = md["objects"], md["region_objects"]
        key, pool = (ro[3], ro[:3]) if t == "Q3" else (ro[0], ro[1:])
        look = (objs[key]["shape"], objs[key]["colour"], objs[key]["dims"])
        alike = [o for o in pool if o != key and (objs[o]["shape"], objs[o]["colour"], objs[o]["dims"]) == look]
        assert alike, r["sample_id"]
        checked += 1
    assert checked >= 2
