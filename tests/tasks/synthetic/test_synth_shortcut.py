"""Shortcut balance (issue 23): the pixel shortcut that the generator steers by (questions/shortcut.py)
is the real mask-heuristic baseline's, and per type it picks the correct option exactly in the
questions the plan says (about 1 in N_OPTIONS), so it scores chance."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from cvbench.core.types import OPTION_LETTERS, TASK_TYPES, Capabilities, Sample
from cvbench.model_adapters.mask_heuristic import heuristic_answer
from cvbench.prompting.build import PromptSettings, build_prompt
from cvbench.tasks.crossviewbench import iter_crossviewbench
from cvbench.tasks.synthetic.crossviewbench import build_scenes, plan_questions
from cvbench.tasks.synthetic.questions import N_OPTIONS, shortcut_pick

from .conftest import CVB_PER_TYPE, CVB_SEED


def test_the_mask_heuristic_is_right_exactly_where_the_plan_says(cvb_jsonl: Path) -> None:
    planned = {f"synth-{t.lower()}-{i:04d}": ask.shortcut_hit for t, i, ask in plan_questions(CVB_PER_TYPE, CVB_SEED)}
    samples = [s for s in iter_crossviewbench(cvb_jsonl, cvb_jsonl.parent) if isinstance(s, Sample)]
    assert len(samples) == len(planned)
    hits = Counter[bool]()
    for sample in samples:
        prompt = build_prompt(sample, PromptSettings(), Capabilities(native_regions=True))
        letter, how = heuristic_answer(prompt.prompt)
        assert letter is not None, (sample.sample_id, how)
        right = letter == sample.answer
        assert right == planned[sample.sample_id], (sample.sample_id, how)
        hits[right] += 1
    assert hits[True] and hits[False]


def test_the_plan_asks_for_a_shortcut_hit_at_chance_rate_balanced_over_answers() -> None:
    plan = plan_questions(48, 3)
    for qtype in TASK_TYPES:
        n = N_OPTIONS[qtype]
        asks = [ask for t, _, ask in plan if t == qtype]
        n_hit = sum(bool(a.shortcut_hit) for a in asks)
        assert abs(n_hit - len(asks) / n) <= 1, qtype
        by_target = Counter(a.target for a in asks if a.shortcut_hit)
        assert max(by_target.values()) - min(by_target.get(k, 0) for k in range(n)) <= 1, qtype


def test_the_shortcut_reader_names_the_options_the_heuristic_picks_on_other_scenes() -> None:
    """shortcut_pick on the drafts themselves (another seed and image size) matches the plan."""
    plan = {(t, i): ask.shortcut_hit for t, i, ask in plan_questions(1, CVB_SEED + 5)}
    for slot in build_scenes(1, CVB_SEED + 5, 320, 240):
        for sample_id, d in slot.drafts:
            qtype, index = d.task_type, int(sample_id.rsplit("-", 1)[1])
            pick = shortcut_pick(slot.facts, d)
            assert 0 <= pick < len(d.options) and OPTION_LETTERS[pick]
            assert (pick == d.answer_index) == plan[(qtype, index)], sample_id
