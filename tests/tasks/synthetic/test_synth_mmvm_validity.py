"""How bench/synthetic_validity.py judges the MMVM half: intervals pooled over the four candidate
settings count each case as one cluster, and a held-out rule's figures on the cues it reads itself
are listed apart from the misses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.heldout_shortcut_mmvm import OWN_CUES, POOLED, RULES, heldout_mmvm, load_cases, tally
from bench.synthetic_validity import figure, judged, summary
from cvbench.prompting.protocols.mmvm import SETTINGS


def test_a_pooled_interval_counts_each_case_once_not_once_per_setting() -> None:
    cases = [f"case_{k:02d}" for k in range(40) for _ in SETTINGS]  # every case in all four settings
    right = [k < 12 for k in range(40) for _ in SETTINGS]  # a case is right or wrong in all of them
    chances = [0.15] * len(right)
    per_record = figure(right, chances)
    pooled = figure(right, chances, cases)
    assert per_record["interval"] == "wilson" and pooled["interval"] == "cases"
    assert pooled["cases"] == 40 and pooled["n"] == 160 and pooled["accuracy"] == per_record["accuracy"] == 0.3
    # four identical answers per case are worth one: as wide as 40 independent answers, not 160
    forty = summary(12, 40, 6.0)["ci95"]
    assert pooled["effective_n"] == 40.0
    assert pooled["ci95"] == forty
    assert forty[0] < per_record["ci95"][0] and forty[1] > per_record["ci95"][1]
    # when the settings disagree within a case, the cases vary less and the interval narrows
    mixed = [(k + s) % 10 < 3 for k in range(40) for s in range(len(SETTINGS))]
    assert np.diff(figure(mixed, chances, cases)["ci95"])[0] < np.diff(pooled["ci95"])[0]


def _res(own: list[str], cue_accuracy: dict[str, float], overall: float, off_cue: float | None) -> dict:
    def fig(acc: float) -> dict:
        return summary(round(acc * 200), 200, 200 * 0.15)

    res = {"overall": {"mmvm": fig(overall)}, "mmvm_cue": {c: fig(a) for c, a in cue_accuracy.items()}}
    res["mmvm_cue_setting"] = {f"{c}@all": fig(a) for c, a in cue_accuracy.items()}
    if own:
        res["own_cues"] = own
        res["overall_off_cue"] = {"mmvm": fig(off_cue or 0.0)}
    return res


def test_own_cue_figures_are_listed_apart_and_the_rest_keeps_its_targets() -> None:
    results = {
        "area-like": _res(["SZ"], {"SZ": 0.6, "RP": 0.16, "TM": 0.45}, 0.3, 0.17),
        "colour-like": _res(["CL"], {"CL": 0.6, "RP": 0.16}, 0.3, 0.28),
        "mask-heuristic": _res([], {"SZ": 0.6, "RP": 0.16}, 0.16, None),
    }
    missed, own = judged(results)
    text = "\n".join(missed)
    # an own cue is never a miss, per cue or per cue@setting, nor the overall figure that holds it
    assert not any(line.startswith(("area-like mmvm_cue SZ", "area-like mmvm_cue_setting SZ@")) for line in missed)
    assert any(line.startswith("area-like mmvm_cue SZ:") and line.endswith("(own cue)") for line in own)
    assert any(line.startswith("area-like mmvm_cue_setting SZ@all") for line in own)
    assert any(line.startswith("area-like mmvm overall (own cues included)") for line in own)
    assert "area-like mmvm overall " not in text
    # another cue is held to the plain target, and so is the overall figure without own-cue cases
    assert "area-like mmvm_cue TM:" in text and "area-like mmvm_cue RP" not in text
    assert "colour-like mmvm overall off its own cues 28.0%" in text
    assert "area-like mmvm overall off" not in text
    # a baseline has no own cues: its cue figures and overall are judged as ever
    assert "mask-heuristic mmvm_cue SZ:" in text
    assert not any(line.startswith("mask-heuristic") for line in own)


def test_every_rule_names_its_own_cues_and_the_probe_those_of_all() -> None:
    assert set(OWN_CUES) == {*RULES, "heldout-probe"}
    read = {cue for name in RULES for cue in OWN_CUES[name]}
    assert set(OWN_CUES["heldout-probe"]) == read


@pytest.fixture(scope="module")
def cases(mmvm_tsv: Path) -> list:
    return load_cases(mmvm_tsv)


def test_a_rule_with_own_cues_leaves_their_cases_out_of_its_other_figures(cases: list) -> None:
    own = ("CL",)
    t = tally(cases, lambda c: -c.distances["heldout-area"], own)
    with_cl = {c.sample.sample_id for c in cases if "CL" in c.sample.cues}
    assert with_cl and len(with_cl) < len(cases)
    assert len(t["overall"]["mmvm"].right) == len(SETTINGS) * len(cases)
    assert set(t["overall_off_cue"]["mmvm"].cases) == {c.sample.sample_id for c in cases} - with_cl
    assert set(t["mmvm_cue"]["CL"].cases) == with_cl
    for cue, cell in t["mmvm_cue"].items():
        if cue != "CL":
            assert not set(cell.cases) & with_cl, cue
    plain = tally(cases, lambda c: -c.distances["heldout-area"])
    assert "overall_off_cue" not in plain
    assert sum(len(cell.right) for cell in plain["mmvm_cue"].values()) > sum(
        len(cell.right) for cell in t["mmvm_cue"].values()
    )


def test_heldout_figures_pool_over_settings_by_case(mmvm_tsv: Path) -> None:
    results = heldout_mmvm(mmvm_tsv, None, figure)  # no probe: only the fixed rules
    assert set(results) == set(RULES)
    area = results["heldout-area"]
    assert area["own_cues"] == ["SZ"]
    for dim in POOLED:
        for s in area.get(dim, {}).values():
            assert s["interval"] == "cases"
    for dim in ("mmvm_setting", "mmvm_cue_setting"):
        assert {s["interval"] for s in area[dim].values()} == {"wilson"}
