"""The synthetic MMVM set: upstream layout, protocol overlays, a query that its cue picks out, and
an appearance shortcut (the real mask-heuristic) that ranks the match where the plan says."""

from __future__ import annotations

import ast
import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cvbench.cli import cli
from cvbench.core.types import CUE_CODES, CUES, OPTION_LETTERS, Capabilities, NativeRegions, Sample
from cvbench.imaging.masks import polygons_to_mask
from cvbench.imaging.region_stats import appearance_similarity, region_features
from cvbench.model_adapters.mask_heuristic import heuristic_answer
from cvbench.prompting.build import PromptSettings, build_prompt
from cvbench.prompting.protocols.mmvm import MMVM_QUESTION_BODY, NONE_OF_THE_ABOVE, mmvm_options
from cvbench.tasks.mmvm import iter_mmvm
from cvbench.tasks.synthetic import generate_mmvm
from cvbench.tasks.synthetic.mmvm import (
    TSV_COLUMNS,
    answer_letter,
    draw_ids,
    none_share,
    plan_cases,
    planned_id,
    rank_miss,
)
from cvbench.tasks.synthetic.mmvm_cases import MAX_SHADE_DELTA_E, MIN_SHADE_DELTA_E

from .conftest import MMVM_PER_CUE, MMVM_SEED

CASE_FILES = {
    "FRAME00.jpg",
    "FRAME00_ORI.jpg",
    "FRAME00.json",
    "FRAME01_CAND.jpg",
    "FRAME01_ORI.jpg",
    "FRAME01_CAND.json",
    "synth_case.json",
}


def _rows(tsv: Path) -> list[dict[str, str]]:
    with open(tsv, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader)
        assert tuple(header) == TSV_COLUMNS
        return [dict(zip(header, row)) for row in reader]


@pytest.fixture(scope="module")
def rows(mmvm_tsv: Path) -> list[dict[str, str]]:
    return _rows(mmvm_tsv)


def _case_dir(tsv: Path, row: dict[str, str]) -> Path:
    return tsv.parent / Path(ast.literal_eval(row["image_path"])[0]).parent


def _answer_id(row: dict[str, str]) -> int | None:
    """The candidate id the answer names; None when the answer is "None of the above"."""
    text = dict(line.split(". ", 1) for line in row["choices"].splitlines())[row["answer"]]
    return None if text == NONE_OF_THE_ABOVE else int(text)


def _query_id(tsv: Path, row: dict[str, str]) -> int | None:
    """The query's id; None when the query is absent from the candidate view."""
    facts = json.loads((_case_dir(tsv, row) / "synth_case.json").read_text())
    assert (facts["query_id"] is None) == facts["absent"]
    return None if facts["absent"] else int(facts["query_id"])


def test_every_cue_has_n_cases_and_counts_spread(rows: list[dict[str, str]], mmvm_tsv: Path) -> None:
    primary = Counter(CUES[ast.literal_eval(r["match_type"])[0]][0] for r in rows)
    assert primary == dict.fromkeys(CUE_CODES, MMVM_PER_CUE)
    counts = [len(json.loads((_case_dir(mmvm_tsv, r) / "FRAME01_CAND.json").read_text())) for r in rows]
    assert min(counts) >= 2 and max(counts) <= 37
    assert any(n > 25 for n in counts) and any(n <= 4 for n in counts)
    assert len(set(counts)) >= len(counts) // 2


def test_rows_and_case_files_follow_the_upstream_layout(rows: list[dict[str, str]], mmvm_tsv: Path) -> None:
    for r in rows:
        case = _case_dir(mmvm_tsv, r)
        assert {p.name for p in case.iterdir()} == CASE_FILES
        assert ast.literal_eval(r["image_path"]) == [
            f"match_bench/{case.name}/FRAME00.jpg",
            f"match_bench/{case.name}/FRAME01_CAND.jpg",
        ]
        cands = json.loads((case / "FRAME01_CAND.json").read_text())
        ids = [c["id"] for c in cands]
        assert sorted(ids) == list(range(1, len(ids) + 1))  # a shuffle of 1..N
        image = Image.open(case / "FRAME01_ORI.jpg")
        for c in cands:
            assert set(c) == {"height", "width", "segmentation", "id"}
            assert (c["height"], c["width"]) == (image.height, image.width)
            assert all(len(p) >= 6 and len(p) % 2 == 0 for p in c["segmentation"])
        query = json.loads((case / "FRAME00.json").read_text())
        assert len(query) == 1 and query[0]["segmentation"]
        # options: ids ascending, at most 25, then "None of the above"; the answer names the query's
        # id, or "None of the above" exactly when that id is not listed
        lines = r["choices"].splitlines()
        shown = [int(line.split(". ", 1)[1]) for line in lines[:-1]]
        assert shown == sorted(ids)[:25]
        assert lines[-1] == f"{OPTION_LETTERS[len(shown)]}. {NONE_OF_THE_ABOVE}"
        assert [line.split(". ", 1)[0] for line in lines] == list(OPTION_LETTERS[: len(lines)])
        assert ast.literal_eval(r["choices_head"]) == list(OPTION_LETTERS[: len(lines)])
        query_id = _query_id(mmvm_tsv, r)
        assert query_id is None or query_id in ids
        assert _answer_id(r) == (query_id if query_id in shown else None)
        assert r["question"] == MMVM_QUESTION_BODY + "\n" + "".join(line + "\n" for line in lines)
        assert r["pure_question"] == MMVM_QUESTION_BODY
        assert r["image"] == "" and r["image_v3"] == ""


def test_overlays_mark_the_objects(rows: list[dict[str, str]], mmvm_tsv: Path) -> None:
    for r in rows[::3]:
        case = _case_dir(mmvm_tsv, r)
        ori = np.asarray(Image.open(case / "FRAME00_ORI.jpg")).astype(int)
        marked = np.asarray(Image.open(case / "FRAME00.jpg")).astype(int)
        query = json.loads((case / "FRAME00.json").read_text())[0]
        mask = polygons_to_mask(query["segmentation"], query["height"], query["width"])
        changed = np.abs(marked - ori).sum(axis=2) > 60
        cyan = (marked[..., 0] < 90) & (marked[..., 1] > 170) & (marked[..., 2] > 170)
        assert (changed & cyan).sum() > 50  # a cyan outline was drawn ...
        ys, xs = np.nonzero(changed & cyan)
        x1, y1, x2, y2 = xs.min(), ys.min(), xs.max(), ys.max()
        mys, mxs = np.nonzero(mask)
        assert (
            x1 >= mxs.min() - 8 and x2 <= mxs.max() + 8 and y1 >= mys.min() - 8 and y2 <= mys.max() + 8
        )  # ... around it
        cand_ori = np.asarray(Image.open(case / "FRAME01_ORI.jpg")).astype(int)
        cand = np.asarray(Image.open(case / "FRAME01_CAND.jpg")).astype(int)
        assert (np.abs(cand - cand_ori).sum(axis=2) > 60).sum() > 200


def _nonzero_diff(values: list[float], query: float, rel: float) -> bool:
    return all(abs(v - query) > rel * max(abs(query), 1e-9) for v in values)


def _lab(hex_colour: str) -> np.ndarray:
    """CIELAB (D65) of an sRGB "#rrggbb", from the published formulas (not the generator's cv2 path)."""
    rgb = np.array([int(hex_colour[k : k + 2], 16) / 255.0 for k in (1, 3, 5)])
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ lin
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_the_query_is_unique_in_every_labelled_cue(rows: list[dict[str, str]], mmvm_tsv: Path) -> None:
    for r in rows:
        case = _case_dir(mmvm_tsv, r)
        facts = json.loads((case / "synth_case.json").read_text())
        cues = [CUES[i][0] for i in ast.literal_eval(r["match_type"])]
        assert facts["cues"] == cues
        by_id = {c["id"]: c for c in facts["candidates"]}
        q = facts["query"]  # its look, whether or not it is among the candidates
        if not facts["absent"]:
            listed = by_id[facts["query_id"]]
            assert {k: listed[k] for k in q} == q
        others = [c for i, c in by_id.items() if i != facts["query_id"]]
        for cue in cues:
            if cue == "CL":  # other shades of the query's colour, each clearly told apart from it
                for c in others:
                    diff = float(np.linalg.norm(_lab(c["colour"]) - _lab(q["colour"])))
                    assert MIN_SHADE_DELTA_E - 1.5 <= diff <= MAX_SHADE_DELTA_E + 1.5, (r["index"], c, q)
            elif cue == "SZ":  # same kind of object, clearly another size (30% or more in every dimension)
                for c in others:
                    ratio = np.array(c["size"]) / np.array(q["size"])
                    assert (ratio >= 1.3).all() or (ratio <= 1 / 1.3).all()
            elif cue == "SP":
                assert all(c["variant"] != q["variant"] for c in others)
            elif cue == "TM":
                assert q["decal"]["kind"] == "text"
                assert all(c["decal"]["value"] != q["decal"]["value"] for c in others)
            elif cue == "OM":
                assert q["decal"]["kind"] == "marker"
                assert all(c["decal"]["value"] != q["decal"]["value"] for c in others)
            elif cue == "OO":
                for c in others:
                    turn = abs(c["yaw_deg"] - q["yaw_deg"]) % 180
                    assert min(turn, 180 - turn) >= 60
            elif cue == "BR":  # every candidate carries something on top, only the query this
                assert q["attachment"] is not None
                assert all(c["attachment"] is not None and c["attachment"] != q["attachment"] for c in others)
            elif cue == "RP":  # the only candidate standing next to the first landmark
                mark = np.array(facts["landmarks"][0]["centre"][:2])
                dist = [float(np.linalg.norm(np.array(c["centre"][:2]) - mark)) for c in [q, *others]]
                assert all(d >= 1.5 * dist[0] for d in dist[1:])
        # attributes outside the labels are shared by every candidate
        shared = {"variant": "SP", "colour": "CL", "scale": "SZ"}
        everyone = [q, *others]
        for attr, cue in shared.items():
            if cue not in cues:
                assert len({json.dumps(c[attr]) for c in everyone}) == 1, (r["index"], attr)
        if "TM" not in cues and "OM" not in cues:
            assert len({json.dumps(c["decal"]) for c in everyone}) == 1
        if "BR" not in cues:
            assert all(c["attachment"] is None for c in everyone)
        # every marked candidate is clearly visible
        assert all(c["visible_px_candidate_view"] >= 150 for c in by_id.values())


def test_the_answer_letters_spread_over_the_options(rows: list[dict[str, str]]) -> None:
    letters = Counter(r["answer"] for r in rows)
    assert len(letters) >= 5


def test_ids_are_an_unconstrained_shuffle_so_large_cases_can_answer_none_of_the_above() -> None:
    n, trials = 37, 3000
    none = 0
    for k in range(trials):
        ids = draw_ids(0, f"case_{k:04d}", n)
        assert sorted(ids) == list(range(1, n + 1))
        query_id = ids[k % n]
        letter = answer_letter(mmvm_options(ids), query_id)
        if query_id > 25:
            assert letter == OPTION_LETTERS[25]
            none += 1
        else:
            assert letter == OPTION_LETTERS[query_id - 1]
    assert abs(none / trials - 12 / 37) < 0.03
    assert draw_ids(0, "case_0001", n) == draw_ids(0, "case_0001", n) != draw_ids(1, "case_0001", n)
    with pytest.raises(ValueError, match="neither listed"):
        answer_letter(mmvm_options(range(1, 5)), 7)


def test_the_loader_reads_every_case(rows: list[dict[str, str]], mmvm_tsv: Path) -> None:
    items = list(iter_mmvm(mmvm_tsv, mmvm_tsv.parent))
    assert [str(i) for i in items if not isinstance(i, Sample)] == []
    assert len(items) == len(rows)
    for s, r in zip(items, rows):
        assert isinstance(s, Sample)
        answer_id = _answer_id(r)
        assert s.answer_region_id == (None if answer_id is None else str(answer_id))
        assert s.cues == tuple(CUES[i][0] for i in ast.literal_eval(r["match_type"]))


def test_same_seed_gives_byte_identical_files_and_the_cli_matches(tmp_path: Path) -> None:
    first = generate_mmvm(tmp_path / "a", 1, MMVM_SEED + 3)
    result = CliRunner().invoke(
        cli,
        [
            "data",
            "synth",
            "--benchmark",
            "mmvm",
            "--per-type",
            "1",
            "--seed",
            str(MMVM_SEED + 3),
            "--out",
            str(tmp_path / "b"),
        ],
    )
    assert result.exit_code == 0, result.output
    second = Path(result.output.strip())
    assert second == tmp_path / "b" / "mllm_match_eval_full.tsv"
    files_a = sorted(p.relative_to(first.parent) for p in first.parent.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(second.parent) for p in second.parent.rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == 2 + 8 * len(CASE_FILES)  # TSV, MANIFEST.json, cases
    for rel in files_a:
        assert (first.parent / rel).read_bytes() == (second.parent / rel).read_bytes(), rel


def test_the_cli_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["data", "synth", "--benchmark", "crossviewbench", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "not empty" in result.output
    assert (tmp_path / "keep.txt").read_text() == "mine"


def _heuristic_rank(native: NativeRegions, match_index: int) -> int:
    """How many candidates the mask-heuristic's own similarity puts at or above the match."""
    assert native.query is not None
    qv = native.views[native.query.view_index]
    query = region_features(qv.image, qv.masks[native.query.region_index])
    cand_view = native.views[-1]
    sims = [appearance_similarity(query, region_features(cand_view.image, m)) for m in cand_view.masks]
    return sum(1 for i, v in enumerate(sims) if i != match_index and v >= sims[match_index])


def test_the_real_mask_heuristic_ranks_the_match_where_the_case_says(mmvm_tsv: Path) -> None:
    """The generator steers by a mirror of the heuristic's statistics; read back from the written
    files through the real prompt path, the real heuristic ranks the match exactly where
    synth_case.json says, and it answers correctly exactly when that rank is 0."""
    samples = [s for s in iter_mmvm(mmvm_tsv, mmvm_tsv.parent) if isinstance(s, Sample)]
    reached, hits = [], 0
    for sample, row in zip(samples, _rows(mmvm_tsv)):
        facts = json.loads((_case_dir(mmvm_tsv, row) / "synth_case.json").read_text())
        rendered = build_prompt(sample, PromptSettings(mode="native"), Capabilities(native_regions=True))
        native = rendered.prompt.native
        assert native is not None
        ranked = facts["shortcut_rank"]["of_id"]  # the query, or its stand-in when absent
        assert ranked == (facts["query_id"] if not facts["absent"] else ranked)
        match = list(native.views[-1].region_ids).index(str(ranked))
        rank = _heuristic_rank(native, match)
        assert rank == facts["shortcut_rank"]["reached"], sample.sample_id
        letter, how = heuristic_answer(rendered.prompt)
        if sample.answer_region_id is not None:
            assert (letter == sample.answer) == (rank == 0), (sample.sample_id, how)
        elif facts["absent"]:
            assert letter != sample.answer  # it always names a candidate
        reached.append(rank_miss(rank, facts["shortcut_rank"]["planned"], len(facts["candidates"])))
        hits += rank == 0
    assert sum(miss == 0 for miss in reached) >= 0.75 * len(reached), reached
    assert 0 < hits < len(reached)


def test_the_plan_spreads_shortcut_ranks_and_answer_positions_evenly_per_cue() -> None:
    per_cue = 20
    plan = plan_cases(per_cue, 3)
    for cue in CUE_CODES:
        cases = [c for c in plan if c.cues[0] == cue]
        assert len(cases) == per_cue
        for values in ([c.rank_u for c in cases], [c.answer_u for c in cases]):
            assert sorted(int(v * per_cue) for v in values) == list(range(per_cue))  # one per stratum
        assert [c.rank_u for c in cases] != [c.answer_u for c in cases]


def test_the_query_id_follows_the_planned_answer_position() -> None:
    for n in (2, 5, 13, 37):
        for k in range(40):
            u = (k + 0.5) / 40
            ids = draw_ids(0, f"case_{k:04d}", n, k % n, u)
            assert sorted(ids) == list(range(1, n + 1))
            assert ids[k % n] == planned_id(n, u)
            if n <= 25:
                assert ids[k % n] == 1 + int(u * n)
    # above 25 candidates the first none_share(n) of positions are ids beyond the 25 listed
    share = none_share(37)
    beyond = [planned_id(37, (k + 0.5) / 1000) > 25 for k in range(1000)]
    assert sum(beyond) == pytest.approx(1000 * share, abs=1)
    assert {planned_id(37, (k + 0.5) / 1000) for k in range(1000)} == set(range(1, 38))
