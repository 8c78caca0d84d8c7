"""How bench/synthetic_validity.py judges the CrossViewBench half: every figure's interval is
clustered by scene (3-6 questions share one scene's images), and the held-out rule and probe
report per-question outcomes with their scene, whose totals are the per-type figures as before."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.heldout_shortcut import heldout_choice, heldout_results, probe_results, scene_of, scenes_of, type_totals
from bench.synthetic_validity import figure, heldout, summarise, summary
from cvbench.core.types import OPTION_LETTERS
from cvbench.rundir.records import SampleRecord
from cvbench.tasks.synthetic import generate_crossviewbench

TYPES = ["Q1", "Q6", "Q13"]  # a few types only: generation is slow on the shared machine


def test_a_figure_over_few_scenes_each_all_right_or_all_wrong_is_as_wide_as_one_answer_per_scene() -> None:
    scenes = [f"images/scene-{k:04d}" for k in range(10) for _ in range(5)]
    right = [k < 6 for k in range(10) for _ in range(5)]  # a scene's five questions all right or all wrong
    chances = [0.25] * len(right)
    plain = figure(right, chances)
    clustered = figure(right, chances, scenes, unit="scenes")
    assert plain["interval"] == "wilson" and "scenes" not in plain
    assert clustered["interval"] == "scenes" and clustered["scenes"] == 10 and clustered["n"] == 50
    assert clustered["accuracy"] == plain["accuracy"] == 0.6
    # deff is clipped at 5 questions per scene: worth 10 independent answers, not 50
    assert clustered["effective_n"] == 10.0
    assert clustered["ci95"] == summary(6, 10, 2.5)["ci95"]
    assert clustered["ci95"][0] < plain["ci95"][0] and clustered["ci95"][1] > plain["ci95"][1]
    # the wider interval changes the verdict on the group target (lower bound below chance + 10)
    assert clustered["meets_group_target"] and not plain["meets_group_target"]


@pytest.mark.parametrize("pattern", [[k % 3 == 0 for k in range(30)], [True] * 12, [False] * 7])
def test_one_question_per_scene_gives_plain_wilson(pattern: list[bool]) -> None:
    chances = [0.5] * len(pattern)
    scenes = [f"images/scene-{k:04d}" for k in range(len(pattern))]
    clustered = figure(pattern, chances, scenes, unit="scenes")
    assert clustered["effective_n"] == len(pattern) and clustered["scenes"] == len(pattern)
    assert clustered["ci95"] == figure(pattern, chances)["ci95"]


def test_scenes_that_agree_with_each_other_add_no_width() -> None:
    scenes = [f"s{k}" for k in range(10) for _ in range(5)]
    mixed = [(k + q) % 5 < 2 for k in range(10) for q in range(5)]  # 2 of 5 right in every scene
    chances = [0.25] * len(mixed)
    width = {
        "plain": np.diff(figure(mixed, chances)["ci95"])[0],
        "mixed": np.diff(figure(mixed, chances, scenes, unit="scenes")["ci95"])[0],
    }
    # every scene at the overall rate: no variance between scenes, deff clips at 1, plain Wilson
    assert width["mixed"] == width["plain"]


def _record(sample_id: str, correct: bool) -> SampleRecord:
    return SampleRecord(
        record_id=f"synth-crossviewbench@all/{sample_id}",
        task="synth-crossviewbench",
        benchmark="crossviewbench",
        setting="all",
        sample_id=sample_id,
        cluster=sample_id,  # not what the figure clusters by: the scene comes from the generated jsonl
        slices={"task_type": ["Q1"]},
        n_options=4,
        answer="A",
        prompt_text="",
        image_sha256=[],
        options=[],
        mode="generate",
        correct=correct,
    )


def test_a_baselines_records_are_clustered_by_the_scene_of_their_sample() -> None:
    records = [_record(f"q{k}", k < 8) for k in range(16)]
    scenes = {f"q{k}": f"images/scene-{k // 4}" for k in range(16)}  # four scenes of four questions
    s = summarise(records, scenes=scenes)
    assert s["interval"] == "scenes" and s["scenes"] == 4 and s["effective_n"] == 4.0
    assert s["ci95"] == summary(2, 4, 1.0)["ci95"]
    with pytest.raises(SystemExit, match="'q15' is not in the generated crossviewbench.jsonl"):
        summarise(records, scenes={k: v for k, v in scenes.items() if k != "q15"})


def test_a_records_scene_is_its_image_folder_and_one_per_record() -> None:
    views = [{"image_path": "images/scene-0003/cam_a.png"}, {"image_path": "images/scene-0003/cam_b.png"}]
    assert scene_of({"views": views}, "x.jsonl:1") == "images/scene-0003"
    split = [views[0], {"image_path": "images/scene-0004/cam_b.png"}]
    with pytest.raises(ValueError, match=r"x\.jsonl:7: views' image_path folders"):
        scene_of({"views": split}, "x.jsonl:7")
    with pytest.raises(ValueError, match="x.jsonl:2"):
        scene_of({"views": [{"image_path": "cam_a.png"}]}, "x.jsonl:2")


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_crossviewbench(tmp_path_factory.mktemp("cvb-validity"), 2, 13, TYPES)


def _lines(jsonl: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]


def test_the_rules_outcomes_per_question_total_to_the_per_type_figures(small_set: Path) -> None:
    records = _lines(small_set)
    outcomes = heldout_results(small_set)
    assert [o.sample_id for o in outcomes] == [r["sample_id"] for r in records]
    # the per-type totals the rule reported before, tallied here from its picks
    expected: dict[str, list[float]] = {}
    for r in records:
        cell = expected.setdefault(r["question_type"], [0, 0, 0.0])
        cell[0] += OPTION_LETTERS[heldout_choice(r, small_set.parent)] == r["answer"]
        cell[1] += 1
        cell[2] += 1.0 / len(r["options"])
    assert type_totals(outcomes) == {t: (c, n, ch / n) for t, (c, n, ch) in expected.items()}
    assert set(type_totals(outcomes)) == set(TYPES)
    for o, r in zip(outcomes, records):
        folders = {str(Path(v["image_path"]).parent) for v in r["views"]}
        assert folders == {o.scene} and (small_set.parent / o.scene).is_dir()
    assert scenes_of(small_set) == {o.sample_id: o.scene for o in outcomes}


def test_heldout_figures_are_clustered_by_scene(small_set: Path) -> None:
    totals = type_totals(heldout_results(small_set))
    for res in (heldout(small_set), heldout(small_set, train=small_set)):
        overall = res["overall"]["crossviewbench"]
        assert overall["interval"] == "scenes" and overall["n"] == 2 * len(TYPES)
        assert overall["scenes"] == len(set(scenes_of(small_set).values()))
        assert set(res["task_type"]) == set(TYPES)
        for t, s in res["task_type"].items():
            assert s["interval"] == "scenes" and s["n"] == totals[t][1]
    rule = heldout(small_set)["task_type"]
    assert {t: s["correct"] for t, s in rule.items()} == {t: c for t, (c, _, _) in totals.items()}
    probe = type_totals(probe_results(small_set, small_set))
    assert {t: n for t, (_, n, _) in probe.items()} == {t: n for t, (_, n, _) in totals.items()}
