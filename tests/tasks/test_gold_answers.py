"""Gold answers: upstream's reading (CrossViewer eval_mc.py `answer_to_label`) beside cvbench's,
and `cvbench data verify` listing every sample where they differ or upstream would skip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cvbench.cli import cli
from cvbench.core.types import Option
from cvbench.tasks.gold import gold_divergence, upstream_gold
from tests.tasks.builders import cvb_record, write_image, write_jsonl

POSITIONS = (Option("A", "the left one"), Option("B", "the middle one"), Option("C", "the right one"))
NUMBERS = (Option("A", "2"), Option("B", "1"), Option("C", "13"))


@pytest.mark.parametrize(
    "raw, options, expected",
    [
        ("B", POSITIONS, "B"),  # a letter
        ("b) the middle one", POSITIONS, "B"),  # anything starting with a letter: that letter
        ("the middle one", POSITIONS, "T"),  # ... even an option text (no such option: always wrong)
        ("(B)", POSITIONS, None),  # no leading letter, no text or number match: skipped
        ("  ", POSITIONS, None),
        (None, POSITIONS, None),
        ("2", NUMBERS, "A"),  # exact option text first
        ("3", NUMBERS, "C"),  # unique containment ("3" in "13")
        (1, NUMBERS, "B"),  # an int is read as its string: exact text "1"
        ("4", NUMBERS, None),  # no text, no prefix, index 4 out of range
        ("2", POSITIONS, "B"),  # digits, no option text matches: 1-based index
    ],
)
def test_upstream_reading(raw: object, options: tuple[Option, ...], expected: str | None) -> None:
    assert upstream_gold(raw, options) == expected


def test_divergences_say_what_each_side_reads() -> None:
    assert gold_divergence("B", POSITIONS, "B") is None
    assert gold_divergence("(B)", POSITIONS, "B") == (
        "answer '(B)': upstream skips the sample (no letter, option text or number it can read); cvbench reads B"
    )
    assert "upstream reads 'T' (from the leading letter), which is no option" in str(
        gold_divergence("the middle one", POSITIONS, "B")
    )
    assert (
        gold_divergence("1", NUMBERS, None, "ambiguous") == "answer '1': upstream reads B; cvbench cannot resolve "
        "it (ambiguous)"
    )


def test_data_verify_lists_every_gold_divergence(tmp_path: Path) -> None:
    write_image(tmp_path / "img" / "a.png")
    write_image(tmp_path / "img" / "b.png", seed=1)
    images = ["img/a.png", "img/b.png"]
    write_jsonl(
        tmp_path / "crossviewbench.jsonl",
        [
            cvb_record("same", images, answer="A"),
            cvb_record("paren", images, answer="(B)"),  # cvbench B, upstream skips
            cvb_record("text", images, answer="the right one"),  # cvbench C, upstream 'T'
            cvb_record("num", images, options=["A. 2", "B. 1"], answer="1"),  # cvbench: ambiguous; upstream B
        ],
    )
    result = CliRunner().invoke(cli, ["data", "verify", str(tmp_path), "--json"])
    report = json.loads(result.output)
    listed = {d["sample_id"]: d["reason"] for d in report["gold_divergences"]}
    assert set(listed) == {"paren", "text", "num"}
    assert "upstream skips the sample" in listed["paren"] and "cvbench reads B" in listed["paren"]
    assert "upstream reads 'T'" in listed["text"]
    assert "upstream reads B; cvbench cannot resolve it" in listed["num"]
    assert report["upstream_skipped"] == 1
    assert [p["sample_id"] for p in report["problems"]] == ["num"]  # cvbench's own invalid sample
    text = CliRunner().invoke(cli, ["data", "verify", str(tmp_path)]).output
    assert "gold answers read differently by the upstream evaluation (3; upstream skips 1)" in text


def test_results_carry_the_upstream_compatible_denominator_and_accuracy() -> None:
    from cvbench.scoring.metrics import metric, scored_record

    def rec(parsed: str, correct: bool, upstream_gold: dict[str, object] | None) -> dict[str, object]:
        protocol = {"upstream_gold": upstream_gold} if upstream_gold is not None else {}
        return {
            "task": "t",
            "benchmark": "crossviewbench",
            "setting": "all",
            "cluster": "s",
            "slices": {},
            "n_options": 2,
            "correct": correct,
            "parse_status": "parsed",
            "parse_reason": "",
            "parsed": parsed,
            "usage": {},
            "latency_s": 0.0,
            "attempts": 1,
            "cached": False,
            "protocol": protocol,
        }

    records = [
        scored_record(r)
        for r in (
            rec("A", True, None),  # both read A
            rec("B", True, {"answer": None}),  # "(B)": upstream skips it
            rec("C", True, {"answer": "T"}),  # "the right one": upstream reads T, never an option
            rec("B", False, {"answer": "B"}),  # upstream reads B where cvbench reads A
        )
    ]
    m = metric(records, 0, "overall")
    assert (m["n"], m["correct"]) == (4, 3)
    assert m["upstream_compatible"] == {"n": 3, "correct": 2, "accuracy": pytest.approx(2 / 3), "skipped": 1}
