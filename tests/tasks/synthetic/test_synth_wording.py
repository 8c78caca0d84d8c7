"""Paraphrased question templates: same meaning and regions, and the mask-heuristic reads them all."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cvbench.core.types import REGION_PLACEHOLDER, TASK_TYPES, Capabilities, Sample
from cvbench.model_adapters.mask_heuristic import heuristic_answer, ref_names
from cvbench.prompting.build import PromptSettings, build_prompt
from cvbench.tasks.crossviewbench import iter_crossviewbench
from cvbench.tasks.synthetic.questions import TEMPLATES, question_text


@pytest.fixture(scope="module")
def records(cvb_jsonl: Path) -> dict[str, dict[str, Any]]:
    rows = [json.loads(line) for line in cvb_jsonl.read_text(encoding="utf-8").splitlines()]
    return {r["sample_id"]: r for r in rows}


def test_every_task_type_has_two_or_three_distinct_wordings_with_the_same_regions() -> None:
    assert set(TEMPLATES) == set(TASK_TYPES)
    for qtype in TASK_TYPES:
        texts = [question_text(qtype, k) for k in range(len(TEMPLATES[qtype]))]
        assert 2 <= len(texts) <= 3 and len(set(texts)) == len(texts)
        assert len({t.count(REGION_PLACEHOLDER) for t in texts}) == 1, qtype
        # the names given to the regions ("candidate 2", "X") are the same, in the same order
        assert len({tuple(ref_names(t)) for t in texts}) == 1, (qtype, [ref_names(t) for t in texts])
        assert all("{" not in t and "}" not in t for t in texts)
    with pytest.raises(ValueError, match="Q1 has 3 wordings"):
        question_text("Q1", 3)


def test_records_use_their_recorded_wording_balanced_per_type(records: dict[str, dict[str, Any]]) -> None:
    for r in records.values():
        assert r["question"] == question_text(r["question_type"], r["metadata"]["wording"])
    for qtype in TASK_TYPES:
        used = Counter(r["metadata"]["wording"] for r in records.values() if r["question_type"] == qtype)
        counts = [used.get(k, 0) for k in range(len(TEMPLATES[qtype]))]
        assert max(counts) - min(counts) <= 1, (qtype, counts)


def test_ref_names_reads_names_before_and_after_the_region() -> None:
    assert ref_names("a: candidate 1 is <region> and <region> (candidate 2), <region> (X) or Y is <region>") == [
        "candidate 1",
        "candidate 2",
        "x",
        "y",
    ]
    assert ref_names("<region> (the first) and <region>") == [None, None]


def test_the_mask_heuristic_answers_every_wording_alike(cvb_jsonl: Path, records: dict[str, dict[str, Any]]) -> None:
    """It answers (no fallback) in every wording, and the same letter, as it only reads structure."""
    samples = list(iter_crossviewbench(cvb_jsonl, cvb_jsonl.parent))
    assert all(isinstance(s, Sample) for s in samples)
    for sample in samples:
        assert isinstance(sample, Sample) and sample.task_type is not None
        prompt = build_prompt(sample, PromptSettings(), Capabilities(native_regions=True))
        options_part = prompt.text[len(sample.question) :]
        assert prompt.text.startswith(sample.question) and options_part.startswith("\n\n")
        letters = set()
        for k in range(len(TEMPLATES[sample.task_type])):
            reworded = replace(prompt.prompt, text=question_text(sample.task_type, k) + options_part)
            letter, how = heuristic_answer(reworded)
            assert letter is not None, (sample.sample_id, k, how)
            letters.add(letter)
        assert len(letters) == 1, (sample.sample_id, letters)
