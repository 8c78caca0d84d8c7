"""The batched cache look-ups and the one-pass record serialisation behind the warm-rerun fast path."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

from cvbench.core.redaction import redact
from cvbench.core.types import Option, Prompt, RenderedPrompt, Response, Usage
from cvbench.rundir.format import SampleRecord
from cvbench.runner.cache import ResponseCache
from cvbench.runner.jsonable import jsonable
from cvbench.runner.prompt_cache import PromptDigestCache
from cvbench.runner.records import RecordWriter
from cvbench.scoring.metrics import compute_results, scored_record


def _record(i: int, **changes: object) -> SampleRecord:
    base = SampleRecord(
        record_id=f"t@all/s{i}",
        task="t",
        benchmark="crossviewbench",
        setting="all",
        sample_id=f"s{i}",
        cluster=f"scene{i % 7}",
        slices={"task_type": [f"Q{i % 3 + 1}"]},
        n_options=4,
        answer="A",
        prompt_text=f"question {i}",
        image_sha256=["a" * 64],
        options=[["A", "x"], ["B", "y"]],
        mode="overlay",
        response="A" if i % 2 else "B",
        parsed="A" if i % 2 else "B",
        parse_status="parsed",
        correct=bool(i % 2),
        usage={"input_tokens": 10, "output_tokens": 1, "cost_usd": None},
        latency_s=0.25,
        attempts=1,
        protocol={"style": "mask", "ids": (1, 2)},
        source="data.jsonl:1",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _old_line(record: SampleRecord, secrets: list[str]) -> str:
    return json.dumps(redact(jsonable(asdict(record)), secrets), ensure_ascii=False, sort_keys=True)


def test_record_writer_matches_redact_of_jsonable_asdict() -> None:
    secrets = ["sk-secret-value-123"]
    records = [
        _record(1),
        _record(
            2,
            latency_s=float("nan"),
            response="key sk-secret-value-123 here",
            protocol={
                "api_key": "x",
                "token_count": 3,
                "path": Path("/tmp/a"),
                "nested": {"set": {2, 1}},
                7: "Bearer abcdefghijklmnopqrstuvwxyz0123",
            },
        ),
        _record(3, option_scores={"A": 0.5, "B": float("nan")}, judge={"model": "j", "response": "A", "cached": True}),
    ]
    writer = RecordWriter(secrets)
    for record in records:
        for _ in range(2):  # the second pass is served from the remembered strings
            line, scored = writer.written(record)
            assert line == _old_line(record, secrets)
            assert scored == scored_record(SampleRecord.from_dict(json.loads(line)))
    assert "sk-secret-value-123" not in writer.written(records[1])[0]


def test_results_from_scored_records_equal_results_from_records() -> None:
    records = [_record(i) for i in range(60)]
    scored = [scored_record(r) for r in records]
    assert compute_results(
        scored, run_seed=3, model={"id": "m"}, status="complete", n_resamples=200
    ) == compute_results(records, run_seed=3, model={"id": "m"}, status="complete", n_resamples=200)


def test_response_cache_get_many(tmp_path: Path) -> None:
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        for i in range(0, 1200, 2):
            cache.put(f"k{i}", "m", Response(text=f"answer {i}", usage=Usage(i, 1)))
        keys = [f"k{i}" for i in range(1200)] + ["k0"]  # more than one IN-query chunk, a repeat
        found = cache.get_many(keys)
        assert set(found) == {f"k{i}" for i in range(0, 1200, 2)}
        assert all(found[k] == cache.get(k) for k in ("k0", "k998", "k1198"))
        assert cache.get_many([]) == {}


def test_prompt_digest_cache_get_many(tmp_path: Path) -> None:
    digests = PromptDigestCache(tmp_path / "c.sqlite")
    try:
        prompt = Prompt(
            sample_id="s",
            text="t",
            images=(),
            options=(Option("A", "x"), Option("B", "y")),
            mode="overlay",
            setting="all",
        )
        for i in range(700):
            digests.put(f"d{i}", RenderedPrompt(replace(prompt, sample_id=f"s{i}"), "B", {"p": i}), {"p": i})
        found = digests.get_many([f"d{i}" for i in range(0, 1400, 3)])
        assert set(found) == {f"d{i}" for i in range(0, 700, 3)}
        assert found["d3"] == digests.get("d3")
        assert found["d3"].rendered.sample_id == "s3" and found["d3"].rendered.protocol == {"p": 3}
        assert found["d3"].rendered.answer == "B"
    finally:
        digests.close()
