"""The run directory: the one on-disk contract between the runner and everything that reads runs.

    RUN_DIR/config.json     provenance (versions, dataset fingerprint, protocol, seed, model settings; never a secret)
    RUN_DIR/samples.jsonl   one SampleRecord per evaluated (task, setting, sample), appended and flushed as each finishes
    RUN_DIR/results.json    metrics: overall + per-evaluation + per-slice, each with intervals and chance
    RUN_DIR/images/         the images exactly as the model saw them, content-addressed: images/<sha256[:2]>/<sha256>.<ext>

The format is documented in docs/run-format.md; bump RESULTS_SCHEMA on any incompatible change.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS_SCHEMA = "cvbench.results/1"
RECORD_SCHEMA = "cvbench.record/1"
CONFIG_FILE = "config.json"
SAMPLES_FILE = "samples.jsonl"
RESULTS_FILE = "results.json"
IMAGES_DIR = "images"


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


class RunDirError(ValueError):
    pass


_SHA256_HEX = frozenset("0123456789abcdef")


def is_sha256(value: object) -> bool:
    """A lower-case hex SHA-256 digest (what `image_sha256` must hold: it names files)."""
    return isinstance(value, str) and len(value) == 64 and set(value) <= _SHA256_HEX


def image_relpath(sha256: str, ext: str) -> str:
    return f"{IMAGES_DIR}/{sha256[:2]}/{sha256}.{ext}"


def unique_temp_path(path: Path) -> Path:
    """A new, empty temporary file beside `path`, its name unique to this writer (pid, thread and
    random part: two processes or threads writing the same file never share a temp file)."""
    fd, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.{os.getpid()}.{threading.get_ident()}.", suffix=".tmp"
    )
    os.close(fd)
    return Path(name)


def write_bytes_atomic(path: Path, data: bytes, fsync: bool = True) -> None:
    """Write via a temporary file, fsync and rename, so readers never see half a file. On a failed
    write (disk full, I/O error, read-only file system) the temp file is removed, the old file is
    left as it was, and the OSError names `path`."""
    tmp: Path | None = None
    try:
        tmp = unique_temp_path(path)
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc


def write_json_atomic(path: Path, data: Any) -> None:
    """Indented, key-sorted JSON written atomically (write_bytes_atomic)."""
    text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise RunDirError(f"{path}: not found (is this a cvbench run directory?)") from None
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None


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
                yield SampleRecord.from_dict(data)
            line = following


@dataclass(frozen=True)
class RunData:
    path: Path
    config: dict[str, Any]
    results: dict[str, Any]

    def records(self) -> Iterator[SampleRecord]:
        return iter_records(self.path)

    def image_path(self, sha256: str) -> Path | None:
        if not is_sha256(sha256):  # the name becomes a path: nothing else may reach the filesystem
            return None
        folder = self.path / IMAGES_DIR / sha256[:2]
        for ext in ("png", "jpg", "jpeg", "webp"):
            p = folder / f"{sha256}.{ext}"
            if p.exists():
                return p
        return None


def load_run(run_dir: str | os.PathLike[str]) -> RunData:
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDirError(f"{path}: not a directory")
    return RunData(path=path, config=read_json(path / CONFIG_FILE), results=read_json(path / RESULTS_FILE))
