"""Synthetic MMVM: "None of the above" is right in about its chance share of the cases, at every
candidate setting: the query is then really absent from the candidate view (up to 25
candidates) or its id is not among the 25 listed (above, as in the official set)."""

from __future__ import annotations

import ast
import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cvbench.core.types import CUE_CODES, Region, Sample
from cvbench.prompting.protocols.mmvm import NONE_OF_THE_ABOVE, SETTINGS, mmvm_options, select_candidates
from cvbench.tasks.mmvm import iter_mmvm
from cvbench.tasks.synthetic.mmvm import absent_share, none_share, plan_cases, planned_id


@pytest.fixture(scope="module")
def cases(mmvm_tsv: Path) -> list[tuple[Sample, dict]]:
    samples = [s for s in iter_mmvm(mmvm_tsv, mmvm_tsv.parent) if isinstance(s, Sample)]
    with open(mmvm_tsv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    out = []
    for sample, row in zip(samples, rows, strict=True):
        folder = mmvm_tsv.parent / Path(ast.literal_eval(row["image_path"])[0]).parent
        out.append((sample, json.loads((folder / "synth_case.json").read_text())))
    return out


def test_an_absent_query_answers_none_of_the_above_at_every_setting(cases: list[tuple[Sample, dict]]) -> None:
    absent = [(s, f) for s, f in cases if f["absent"]]
    assert absent and len(absent) < len(cases)
    for sample, facts in cases:
        for setting in SETTINGS:
            sel = select_candidates(sample, setting, 0)
            none = sel.options[-1]
            assert none.text == NONE_OF_THE_ABOVE
            if facts["absent"] or facts["query_id"] > 25:
                assert sel.answer == none.letter, (sample.sample_id, setting)
            else:
                assert sel.answer != none.letter, (sample.sample_id, setting)  # the query is offered


def test_the_absent_query_is_seen_in_the_query_view_and_no_candidate_is_it(cases: list[tuple[Sample, dict]]) -> None:
    for sample, facts in cases:
        if not facts["absent"]:
            continue
        q = facts["query"]
        assert len(sample.views[0].regions) == 1 and sample.views[0].regions[0].polygons
        assert len(facts["candidates"]) == len(sample.views[-1].regions) == sample.candidate_count
        # it stood somewhere no marked candidate stands
        assert all(np.linalg.norm(np.subtract(c["centre"], q["centre"])) > 0.1 for c in facts["candidates"])


def test_absent_cases_per_cue_follow_the_none_share() -> None:
    plan = plan_cases(40, 11)
    for cue in CUE_CODES:
        mine = [c for c in plan if c.cues[0] == cue]
        assert abs(sum(c.absent for c in mine) - sum(absent_share(c.n) for c in mine)) < 1.0
        assert not any(c.absent for c in mine if c.n > 25)
    small = [c for c in plan if c.n == 2]
    assert small and 0.1 < sum(c.absent for c in small) / len(small) < 0.6
    assert none_share(2) == pytest.approx(1 / 3) and none_share(4) == pytest.approx(1 / 5)


def _with_candidates(sample: Sample, n: int, query_id: int | None) -> Sample:
    """`sample` with n candidates (ids 1..n) and the answer naming `query_id` (None: absent)."""
    regions = tuple(Region(str(i)) for i in range(1, n + 1))
    options = mmvm_options(range(1, n + 1))
    listed = {o.text: o.letter for o in options}
    answer = listed.get(str(query_id), options[-1].letter)
    views = (sample.views[0], replace(sample.views[-1], regions=regions))
    return replace(sample, views=views, options=options, answer=answer, candidate_count=n)


@pytest.mark.parametrize("n", [2, 3, 6, 10, 20, 26, 30, 37])
def test_always_none_and_always_a_score_chance_over_the_four_settings(cases: list[tuple[Sample, dict]], n: int) -> None:
    """Through cvbench's real candidate selection, with the generator's own query ids
    (planned_id over evenly spread positions) and absent share: a rule that always answers "None
    of the above" scores, over the four settings, what chance gives, and one that always answers
    "A" within a point per setting of it (were "None" never right, "A" would be 1/m - 1/(m+1)
    over: 17 points at n=2)."""
    base = cases[0][0]
    p, grid = absent_share(n), 40 * n
    none_hits = a_hits = chance = 0.0
    for j in range(grid):
        sample = _with_candidates(base, n, planned_id(n, (j + 0.5) / grid))
        sample = replace(sample, sample_id=f"s{j}")
        for setting in SETTINGS:
            sel = select_candidates(sample, setting, 0)
            chance += 1.0 / len(sel.options)
            none_hits += sel.answer == sel.options[-1].letter
            a_hits += sel.answer == "A"
    absent = replace(_with_candidates(base, n, None), sample_id="absent")
    for setting in SETTINGS:
        sel = select_candidates(absent, setting, 0)
        assert sel.answer == sel.options[-1].letter
    chance_sum = chance / grid
    always_none = p * len(SETTINGS) + (1 - p) * none_hits / grid
    always_a = (1 - p) * a_hits / grid
    assert always_none == pytest.approx(chance_sum, abs=0.01)
    assert abs(always_a - chance_sum) / len(SETTINGS) < 0.01 + 0.5 / np.sqrt(grid)
