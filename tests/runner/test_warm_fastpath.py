"""The batched cache look-ups and the one-pass record serialisation behind the warm-rerun fast path."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest

from cvbench.core.redaction import redact
from cvbench.core.types import (
    Capabilities,
    Option,
    Prompt,
    RenderedPrompt,
    Response,
    Sample,
    SourceLocation,
    Usage,
)
from cvbench.rundir.format import SampleRecord
from cvbench.runner.cache import ResponseCache
from cvbench.runner.jobs import Job
from cvbench.runner.jsonable import jsonable
from cvbench.runner.prompt_cache import SCHEMA as PROMPT_SCHEMA
from cvbench.runner.prompt_cache import PromptDigestCache, PromptKeys, code_identity, prompt_key
from cvbench.runner.records import (
    _REDACTION_TRIGGERS,
    RecordWriter,
    answered_fields,
    answered_record,
    score_response,
)
from cvbench.scoring.metrics import compute_results, scored_record
from cvbench.tasks.loading import iter_task_samples
from cvbench.tasks.registry import get_task


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


def _plain(record: SampleRecord) -> dict[str, object]:
    """The record's fields with its protocol made plain JSON (as the digest cache decodes it)."""
    fields = {name: getattr(record, name) for name in SampleRecord.__dataclass_fields__}
    fields["protocol"] = json.loads(json.dumps(jsonable(record.protocol)))
    return fields


@pytest.mark.parametrize(
    "protocol",
    [
        {},
        {"style": "mask", "colours": [{"name": "red", "rgb": [230, 0, 0]}], "alpha": 0.4, "note": 'ü "q" \\ \n'},
        {"x": "the key is here"},  # a trigger word in a value: the full walk, same line
        {"api_key": "x", "token_count": 3},  # secret-looking keys are dropped
        {"url": "https://user:pw@host/p?sig=abc"},
        {"q": "a=b&password=hunter2"},
        {"auth": "Bearer abcdefghijklmnopqrstuvwxyz0123"},
        {"k": "sk-abcdefghijklmnop"},
        {"v": float("nan"), "w": float("inf")},
        {"s": "contains sk-secret-value-123 inside"},  # a run secret
        {"nested": {"deep": [{"AUTHORIZATION": "x"}]}},
    ],
)
def test_written_fields_is_written_of_the_record(protocol: dict[str, object]) -> None:
    """The spliced line (protocol text put in as it is) equals the full walk's line, and the metrics
    read the same; wherever redaction could change something the full walk runs."""
    tricky = 'x ", "protocol": {} , "reasoning": "y'
    for secrets in (["sk-secret-value-123"], [], ['quo"te-secret']):
        writer = RecordWriter(secrets)
        for record in (
            _record(1, protocol=protocol),
            _record(2, protocol=protocol, prompt_text=tricky, response=tricky, reasoning=tricky),
            _record(3, protocol=protocol, option_scores={"reasoning": 0.5}, slices={"protocol": ["a"]}),
        ):
            line, scored = writer.written_fields(_plain(record))
            expected_line, expected_scored = RecordWriter(secrets).written(record)
            assert line == expected_line == _old_line(record, secrets)
            assert scored == expected_scored
            for secret in secrets:
                assert secret not in line


def test_clean_protocol_is_spliced_and_a_triggered_one_is_walked() -> None:
    """The fast path is taken for an ordinary protocol (its text is the line's) and refused for one
    that redaction would change."""
    writer = RecordWriter(["sk-secret-value-123"])
    assert writer._untouched({"style": "mask", "ids": [1, 2]}) == '{"ids": [1, 2], "style": "mask"}'
    for protocol in ({"k": "sk-secret-value-123"}, {"api_key": 1}, {"u": "http://h"}, {"n": float("nan")}):
        assert writer._untouched(protocol) is None
    assert RecordWriter(['with"quote'])._untouched({"style": "mask"}) is None
    ordinary = {k: v for k, v in _plain(_record(1)).items() if k != "usage"}
    assert writer._untouched(ordinary) == json.dumps(ordinary, ensure_ascii=False, sort_keys=True)
    for trigger in _REDACTION_TRIGGERS:  # each word the check names is looked for, in any case
        assert writer._untouched({"v": f"a{trigger.upper()}b"}) is None, trigger


def test_answered_fields_are_the_answered_records_fields() -> None:
    spec = replace(get_task("crossviewbench"), name="t")
    sample = Sample(
        sample_id="s1",
        benchmark="crossviewbench",
        question="q",
        options=(Option("A", "x"), Option("B", "y")),
        answer="B",
        views=(),
        cluster="c",
        source=SourceLocation("data.jsonl", 3),
    )
    job = Job(index=0, spec=spec, setting="all", item=sample, record_id="t@all/s1")
    prompt = Prompt(sample_id="s1", text="q", images=(), options=sample.options, mode="overlay", setting="all")
    rendered = RenderedPrompt(prompt, "B", {"style": "mask", "ids": (1, 2)})
    response = Response(text="B", usage=Usage(10, 1), latency_s=0.1234567, option_scores={"A": 0.1, "B": 0.9})
    parsed = score_response(response, prompt)
    record = answered_record(job, sample, {"d": ["v"]}, rendered, response, parsed, True, None)
    fields = answered_fields(job, sample, {"d": ["v"]}, rendered, response, parsed, True, None)
    assert SampleRecord(**fields) == record and set(fields) == set(SampleRecord.__dataclass_fields__)
    # the digest cache's prompt: image identities given, protocol already plain
    plain = RenderedPrompt(prompt, "B", {"style": "mask", "ids": [1, 2]})
    stored = answered_fields(job, sample, {"d": ["v"]}, plain, response, parsed, True, None, None, ("a" * 64,), True)
    assert SampleRecord(**stored) == replace(record, image_sha256=["a" * 64])
    detailed = replace(response, details={"served": "m"})
    with_details = answered_fields(job, sample, {}, plain, detailed, parsed, True, None, None, None, True)
    assert with_details["protocol"] == {"style": "mask", "ids": [1, 2], "model": {"served": "m"}}


def test_prompt_keys_are_the_documented_hash_and_stats_are_per_batch(tiny_data: Any) -> None:
    """`PromptKeys` gives the SHA-256 of the same sorted JSON as before (caches filled by earlier
    versions keep hitting); the per-batch file stats are taken again in the next batch."""
    spec = get_task(tiny_data.task)
    caps = Capabilities(max_images=4)
    settings = {"style": "mask", "nested": {"b": [1, {"z": None}], "a": "ü"}, "path": Path("/x")}
    samples = [s for s in iter_task_samples(spec, tiny_data.root) if isinstance(s, Sample)][:6]
    keys = PromptKeys(spec.name, "sha256:f", settings, caps)
    stats: dict[tuple[str, int | None], list[Any]] = {}
    for sample in samples:
        files = []
        for view in sample.views:
            st = os.stat(view.image.path)
            files.append([os.path.abspath(view.image.path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino])
            files[-1].append(view.image.frame)
        payload = {
            "schema": PROMPT_SCHEMA,
            "code": code_identity(),
            "fingerprint": "sha256:f",
            "task": spec.name,
            "setting": "all",
            "sample": sample.sample_id,
            "source": [os.path.abspath(sample.source.file), sample.source.line, sample.source.item],
            "files": files,
            "settings": settings,
            "capabilities": asdict(caps),
        }
        expected = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
        assert keys.key(sample, "all", stats) == keys.key(sample, "all") == expected
        assert prompt_key(sample, spec.name, "all", "sha256:f", settings, caps) == expected
    first = samples[0]
    before = keys.key(first, "all", stats)
    path = first.views[0].image.path
    path.write_bytes(path.read_bytes())  # rewritten: its ctime moves
    assert keys.key(first, "all", stats) == before  # the same batch: the stats taken at its start
    assert keys.key(first, "all", {}) != before  # the next batch sees the rewrite
