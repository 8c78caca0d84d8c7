"""samples.jsonl: `SampleRecord`, its one reader (`iter_records`) and one writer (`SampleRecord.to_json`,
one line per record)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cvbench.rundir.io import RECORD_SCHEMA, SAMPLES_FILE, RunDirError, is_sha256


@dataclass(frozen=True)
class SampleRecord:
    """One evaluated sample. Everything needed to audit the score, nothing secret."""

    record_id: str  # "<task>@<setting>/<sample_id>": unique within a run
    task: str
    benchmark: str
    setting: str  # MMVM candidate setting "4" | "8" | "12" | "all"; "all" elsewhere
    sample_id: str
    cluster: str
    slices: dict[str, list[str]]  # slice dimension -> labels, e.g. {"cue": ["CL", "RP"], "bucket": ["5-8"]}
    n_options: int
    answer: str | None
    prompt_text: str
    image_sha256: list[str]
    options: list[list[str]]  # [[letter, text], ...]
    mode: str
    response: str | None = None
    parsed: str | None = None
    parse_status: str = "unparsed"  # parsed | unparsed | judged | logprob | error | invalid
    parse_reason: str = ""
    correct: bool = False
    error: dict[str, Any] | None = None  # {"kind", "message", "status"}
    invalid: str | None = None  # why the sample could not be loaded or rendered
    usage: dict[str, Any] = field(default_factory=dict)  # input_tokens, output_tokens, cost_usd
    latency_s: float = 0.0
    attempts: int = 0
    cached: bool = False
    option_scores: dict[str, float] | None = None
    protocol: dict[str, Any] = field(default_factory=dict)  # style, colours, ids shown, subset...
    source: str = ""  # file:line of the upstream sample
    schema: str = RECORD_SCHEMA
    judge: dict[str, Any] | None = None  # {"model", "response", "cached"} when a judge read an unparsed answer
    reasoning: str | None = None  # the model's reasoning text, when its provider returns one (never parsed)

    @property
    def chance(self) -> float:
        return 1.0 / self.n_options if self.n_options else 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SampleRecord:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def iter_records(run_dir: Path) -> Iterator[SampleRecord]:
    """Records of a run in file order. A torn last line (a crash mid-write) is skipped; any
    other bad line is an error naming the file and line."""
    path = Path(run_dir) / SAMPLES_FILE
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:  # line by line: memory does not grow with the file
        lineno, line = 0, fh.readline()
        while line:
            lineno, following = lineno + 1, fh.readline()
            if line.strip():
                try:
                    data = json.loads(line)
                except json.JSONDecodeError as exc:
                    if not following and not line.endswith("\n"):
                        return  # torn final write
                    raise RunDirError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
                images = data.get("image_sha256") if isinstance(data, dict) else None
                if not isinstance(images, list) or not all(is_sha256(s) for s in images):
                    raise RunDirError(
                        f"{path}:{lineno}: 'image_sha256' must be a list of SHA-256 hex digests, "
                        f"got {json.dumps(images)[:120]}"
                    )
                schema = data.get("schema", RECORD_SCHEMA)
                if schema != RECORD_SCHEMA:
                    raise RunDirError(
                        f"{path}:{lineno}: field 'schema' is {json.dumps(schema)}; this cvbench reads "
                        f"{RECORD_SCHEMA} (written by another cvbench version; rerun it)"
                    )
                yield SampleRecord.from_dict(data)
            line = following
