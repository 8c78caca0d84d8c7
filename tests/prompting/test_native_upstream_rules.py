"""Upstream rules the prompt builder applies for native models and MMVM options.

- CrossViewBench native mode: only a REFERENCED empty mask fails a sample, Q2/Q9 exempt
  (CrossViewer's dataset `_load_sample`); unreferenced empty masks reach the model.
- MMVM with more than 25 candidates: the offered ids are the first 25 of a (seeded) shuffle,
  sorted, so the match may be left out and "None of the above" becomes the answer (CoLVA demo).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from cvbench.core.seeding import rng_for
from cvbench.core.types import Sample
from cvbench.imaging.masks import encode_rle
from cvbench.prompting.encoding import ImagePolicy
from cvbench.prompting.protocols import ProtocolError
from cvbench.prompting.protocols import crossviewbench as CVB
from cvbench.prompting.protocols.mmvm import (
    MAX_ID_OPTIONS,
    NONE_OF_THE_ABOVE,
    build_mmvm,
    select_candidates,
    upstream_option_ids,
)
from tests.prompting.test_protocol_data import make_cvb_sample, make_mmvm_sample

BUILD = {"alpha": 0.4, "thickness": 2, "policy": ImagePolicy(), "style": "contour"}


def with_empty_mask(sample: Sample, view: int, region: int) -> Sample:
    v = sample.views[view]
    h, w = 300, 400
    empty = dataclasses.replace(v.regions[region], rle=encode_rle(np.zeros((h, w), bool)))
    regions = v.regions[:region] + (empty,) + v.regions[region + 1 :]
    views = sample.views[:view] + (dataclasses.replace(v, regions=regions),) + sample.views[view + 1 :]
    return dataclasses.replace(sample, views=views)


def test_an_unreferenced_empty_mask_reaches_the_native_model(tmp_path: Path) -> None:
    sample = with_empty_mask(make_cvb_sample(tmp_path), view=2, region=1)  # refs name (0,0), (1,1)
    out = CVB.build_crossviewbench(sample, mode="native", **BUILD)
    assert out.native is not None and not out.native.views[2].masks[1].any()
    assert out.record["empty_masks"] == [[2, 1]]
    with pytest.raises(ProtocolError, match="the mask is empty"):  # overlay mode still draws every mask it names
        CVB.build_crossviewbench(with_empty_mask(make_cvb_sample(tmp_path), 1, 1), mode="overlay", **BUILD)


def test_a_referenced_empty_mask_fails_the_sample_except_for_q2_and_q9(tmp_path: Path) -> None:
    sample = with_empty_mask(make_cvb_sample(tmp_path), view=1, region=1)
    with pytest.raises(ProtocolError, match=r"cvb-1: region_refs\[1\] \(view 1, object 1\) has an empty mask"):
        CVB.build_crossviewbench(sample, mode="native", **BUILD)
    for task_type in ("Q2", "Q9"):
        exempt = CVB.build_crossviewbench(dataclasses.replace(sample, task_type=task_type), mode="native", **BUILD)
        assert exempt.native is not None and exempt.record["empty_masks"] == [[1, 1]]


def test_more_than_25_ids_offer_the_first_25_of_a_seeded_shuffle() -> None:
    ids = [str(i) for i in range(1, 31)]
    offered = upstream_option_ids(ids, rng_for(7, "case", "x"))
    assert len(offered) == MAX_ID_OPTIONS and list(offered) == sorted(offered, key=int)
    expected = sorted((ids[int(k)] for k in rng_for(7, "case", "x").permutation(30)[:25]), key=int)
    assert list(offered) == expected
    assert offered != tuple(ids[:25])  # not simply the 25 lowest
    assert upstream_option_ids(ids, rng_for(7, "case", "x")) == offered  # seeded: reproducible
    assert upstream_option_ids(ids[:25][::-1], rng_for(7, "case", "x")) == tuple(ids[:25])


def test_a_setting_over_25_candidates_may_leave_the_match_out(tmp_path: Path) -> None:
    sample = make_mmvm_sample(tmp_path, n=30, gt=4, prerendered=False)
    outcomes = set()
    for seed in range(40):
        selection = select_candidates(sample, "28", seed)
        assert len(selection.options) == MAX_ID_OPTIONS + 1
        offered = [o.text for o in selection.options[:-1]]
        expected = upstream_option_ids(list(selection.ids), rng_for(seed, sample.sample_id, "mmvm-option-ids", 28))
        assert tuple(offered) == expected
        shown_gt = selection.ids[selection.indices.index(4)]
        answer_text = next(o.text for o in selection.options if o.letter == selection.answer)
        assert answer_text == (shown_gt if shown_gt in offered else NONE_OF_THE_ABOVE)
        outcomes.add(shown_gt in offered)
    assert outcomes == {True, False}  # both cases occur across seeds
    out = build_mmvm(sample, mode="overlay", seed=3, setting="28", **BUILD)
    assert out.record["option_ids_rule"] == "upstream: first 25 of a seeded shuffle of the ids, sorted"
