"""Records: what one evaluated sample becomes (`SampleRecord`), and its samples.jsonl line with
every secret removed."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import fields, replace
from typing import Any

from cvbench.core.redaction import is_secret_key, redact
from cvbench.core.types import ParsedAnswer, Prompt, RenderedPrompt, Response, Sample
from cvbench.rundir.format import RECORD_SCHEMA, SampleRecord
from cvbench.runner.jobs import Job, item_sample_id
from cvbench.runner.jsonable import jsonable
from cvbench.runner.pricing import Price, response_cost
from cvbench.scoring import metrics as metrics_mod
from cvbench.scoring.parsing import answer_from_scores, parse_answer


def invalid_record(
    job: Job,
    reason: str,
    *,
    sample: Sample | None = None,
    slices: dict[str, list[str]] | None = None,
    prompt: RenderedPrompt | None = None,
) -> SampleRecord:
    item = job.item
    source = str(item.source)
    opts = prompt.options if prompt is not None else (sample.options if sample is not None else ())
    return SampleRecord(
        record_id=job.record_id,
        task=job.spec.name,
        benchmark=job.spec.benchmark,
        setting=job.setting,
        sample_id=item_sample_id(item),
        cluster=(sample.cluster if sample is not None else item_sample_id(item)),
        slices=slices or {},
        n_options=len(opts),
        answer=(prompt.answer if prompt else (sample.answer if sample else None)),
        prompt_text=prompt.text if prompt else "",
        image_sha256=[i.sha256 for i in prompt.images] if prompt else [],
        options=[[o.letter, o.text] for o in opts],
        mode=prompt.mode if prompt else "",
        parse_status="invalid",
        parse_reason="invalid sample",
        invalid=reason,
        source=source,
    )


def score_response(response: Response, prompt: Prompt) -> ParsedAnswer:
    if response.error is not None:
        return ParsedAnswer(None, "error", response.error.kind)
    if response.option_scores:
        tie_rule = (response.details or {}).get("tie_rule")
        return answer_from_scores(
            response.option_scores, prompt.options, tie_break="first" if tie_rule == "first" else None
        )
    return parse_answer(response.text, prompt.options)


def answered_record(
    job: Job,
    sample: Sample,
    slices: dict[str, list[str]],
    prompt: RenderedPrompt,
    response: Response,
    parsed: ParsedAnswer,
    cached: bool,
    judge: dict[str, Any] | None,
    price: Price | None = None,
) -> SampleRecord:
    return SampleRecord(**answered_fields(job, sample, slices, prompt, response, parsed, cached, judge, price))


def answered_fields(
    job: Job,
    sample: Sample,
    slices: dict[str, list[str]],
    prompt: RenderedPrompt,
    response: Response,
    parsed: ParsedAnswer,
    cached: bool,
    judge: dict[str, Any] | None,
    price: Price | None = None,
    image_sha256: Sequence[str] | None = None,
    plain_protocol: bool = False,
) -> dict[str, Any]:
    """The fields of `answered_record` as a dict (every `SampleRecord` field), for the writer to
    turn into a line without building the record. `image_sha256`: the prompt's image identities
    when its images are not at hand (a prompt from the digest cache). `plain_protocol`: the
    prompt's protocol is already JSON-ready (decoded from JSON: string keys, JSON values), so it
    is used as it is instead of copied through `jsonable` (when the response adds no details)."""
    error = None
    if response.error is not None:
        error = {
            "kind": response.error.kind,
            "message": response.error.message,
            "status": response.error.status,
            "retryable": response.error.retryable,
        }
    usage = {
        "input_tokens": response.usage.input_tokens,
        "output_tokens": response.usage.output_tokens,
        "cost_usd": response_cost(response.usage, price) if response.error is None else response.usage.cost_usd,
    }
    if plain_protocol and not response.details:
        protocol = prompt.protocol
    else:
        protocol = jsonable({**prompt.protocol, **({"model": dict(response.details)} if response.details else {})})
    return {
        "record_id": job.record_id,
        "task": job.spec.name,
        "benchmark": job.spec.benchmark,
        "setting": job.setting,
        "sample_id": sample.sample_id,
        "cluster": sample.cluster,
        "slices": slices,
        "n_options": len(prompt.options),
        "answer": prompt.answer,
        "prompt_text": prompt.text,
        "image_sha256": list(image_sha256) if image_sha256 is not None else [i.sha256 for i in prompt.images],
        "options": [[o.letter, o.text] for o in prompt.options],
        "mode": prompt.mode,
        "response": response.text,
        "parsed": parsed.letter,
        "parse_status": parsed.status,
        "parse_reason": parsed.reason,
        "correct": parsed.letter is not None and parsed.letter == prompt.answer,
        "error": error,
        "invalid": None,
        "usage": usage,
        "latency_s": round(float(response.latency_s), 6),
        "attempts": int(response.attempts),
        "cached": cached,
        "option_scores": jsonable(dict(response.option_scores)) if response.option_scores is not None else None,
        "protocol": protocol,
        "source": str(sample.source),
        "schema": RECORD_SCHEMA,
        "judge": judge,
        "reasoning": response.reasoning,
    }


def redact_response(response: Response, secrets: Sequence[str]) -> Response:
    """The response as it may be stored (cache): secrets removed from its text, since a server
    or proxy may echo the credentials it was sent."""
    text = redact(response.text, secrets) if response.text is not None else None
    reasoning = redact(response.reasoning, secrets) if response.reasoning is not None else None
    if text == response.text and reasoning == response.reasoning:
        return response
    return replace(response, text=text, reasoning=reasoning)


def redact_record(record: SampleRecord, secrets: Sequence[str]) -> str:
    return RecordWriter(secrets).written(record)[0]


# What `redact` and `is_secret_key` react to, lower-cased (a text without any of them is left as it
# is): the words of secret-looking keys (apikey, passwd, credentials, authorization contain these),
# the inline token shapes (bearer ..., key=..., sk-...), URLs ("://") and query strings ("="); and
# "nan" for the NaN that `_clean` turns into null.
_REDACTION_TRIGGERS = ("key", "token", "secret", "passw", "credential", "auth", "bearer", "sk-", "://", "=", "nan")
_LAST_FIELD = max(f.name for f in fields(SampleRecord))  # "usage": the last key of a sorted line
_JSON_ESCAPED = re.compile(r'[\x00-\x1f"\\]')  # characters json.dumps(ensure_ascii=False) escapes


class RecordWriter:
    """Turns records into their samples.jsonl lines: `redact(jsonable(asdict(record)))` as JSON,
    in one walk over the record instead of three. Strings repeat across records (options, slice
    labels, protocol values), so the redacted form of each is remembered; `redact` is a pure
    function of the string and the secrets, fixed for a run."""

    _MEMO_LIMIT = 50_000  # strings remembered (cleared when full: memory stays bounded)

    def __init__(self, secrets: Sequence[str]) -> None:
        self._secrets = list(secrets)
        self._strings: dict[str, str] = {}
        self._keys: dict[str, bool] = {}
        self._fields = tuple(f.name for f in fields(SampleRecord))
        self._escaped_secret = any(_JSON_ESCAPED.search(secret) for secret in self._secrets)

    def written(self, record: SampleRecord) -> tuple[str, metrics_mod.ScoredRecord]:
        """The record's line (secrets removed) and what the metrics read of that line: the same
        values as reading the file back, without reading it."""
        data = self._clean({name: getattr(record, name) for name in self._fields})
        return json.dumps(data, ensure_ascii=False, sort_keys=True), metrics_mod.scored_record(data)

    def written_fields(self, fields: dict[str, Any]) -> tuple[str, metrics_mod.ScoredRecord]:
        """`written` for a record given as its fields (`answered_fields`, every `SampleRecord`
        field) whose values are plain JSON (string keys, JSON values: decoded from JSON or made by
        `jsonable`). The same line.

        When the JSON text of every field but `usage` shows that redaction cannot change it
        (`_untouched`), that text is the line, with the cleaned `usage` (whose token counters
        look like secret keys to the check) put in as the last key; otherwise the whole record
        takes the walk of `written`. A cached record skips walking its ~200 values."""
        usage = fields["usage"]
        rest = {name: fields[name] for name in self._fields if name != _LAST_FIELD}
        text = self._untouched(rest) if _LAST_FIELD == "usage" else None
        if text is None:
            data = self._clean({name: fields[name] for name in self._fields})
            return json.dumps(data, ensure_ascii=False, sort_keys=True), metrics_mod.scored_record(data)
        usage = self._clean(usage)
        # json.dumps(sort_keys=True) of the whole record: "usage" sorts last (default separators)
        line = f'{text[:-1]}, "usage": {json.dumps(usage, ensure_ascii=False, sort_keys=True)}}}'
        return line, metrics_mod.scored_record({**rest, "usage": usage})

    def _untouched(self, value: dict[str, Any]) -> str | None:
        """The JSON text of a plain-JSON `value` when `_clean` would return it unchanged, else None.

        Conservative: None whenever the text holds anything redaction looks for (a secret of this
        run, a word of a secret-looking key, a bearer/`key=`/`sk-` token, a URL, a query string)
        or a NaN (cleaned to null). A secret holding a character JSON escapes is never looked for
        in text: every record then takes the full walk."""
        if self._escaped_secret:
            return None
        try:
            text = json.dumps(value, ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError):
            return None
        low = text.lower()
        if (  # _REDACTION_TRIGGERS, spelled out (a generator costs more than the searches)
            "key" in low
            or "token" in low
            or "secret" in low
            or "passw" in low
            or "credential" in low
            or "auth" in low
            or "bearer" in low
            or "sk-" in low
            or "://" in low
            or "=" in low
            or "nan" in low
        ):
            return None
        for secret in self._secrets:
            if secret in text:
                return None
        return text

    def _clean(self, value: Any) -> Any:
        kind = type(value)
        if kind is str:
            out = self._strings.get(value)
            if out is None:
                if len(self._strings) >= self._MEMO_LIMIT:
                    self._strings.clear()
                out = self._strings[value] = redact(value, self._secrets)
            return out
        if kind is int or kind is bool or value is None:
            return value
        if kind is float:
            return None if math.isnan(value) else value
        if kind is dict:
            out_dict = {}
            for k, v in value.items():
                key = str(k)
                secret = self._keys.get(key)
                if secret is None:
                    secret = self._keys[key] = is_secret_key(key)
                if not secret:
                    out_dict[key] = self._clean(v)
            return out_dict
        if kind is list or kind is tuple:
            return [self._clean(v) for v in value]
        return redact(jsonable(value), self._secrets)  # dataclasses, paths, numpy values, sets


def written_record(record: SampleRecord, secrets: Sequence[str]) -> tuple[str, metrics_mod.ScoredRecord]:
    return RecordWriter(secrets).written(record)


def attempt_statistics(records: Sequence[metrics_mod.AnyRecord]) -> dict[str, int]:
    """How hard the model calls were: attempts over the records fetched from the model (cache
    hits and invalid samples excluded), and how many needed more than one."""
    fetched = [r for r in records if r.attempts > 0 and not r.cached]
    return {
        "attempts": sum(r.attempts for r in fetched),
        "retried_requests": sum(1 for r in fetched if r.attempts > 1),
        "max_attempts": max((r.attempts for r in fetched), default=0),
    }
