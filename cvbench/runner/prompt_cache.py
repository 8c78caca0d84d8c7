"""The prompt-digest cache: lets a rerun whose answers are all cached skip rendering.

A response-cache key is a hash of everything the model sees, so computing it normally means
rendering the prompt: decoding the images, drawing the overlays and PNG-encoding every view
(about 0.1 s per 1280x720 view). This cache remembers, per sample, the result of that work
minus the image bytes: the content digest (from which the request key follows for any model),
the prompt text, options, answer, mode, protocol record and image hashes: everything a
sample record holds. A rerun looks it up, and when the response cache also holds the answer,
it writes the record without rendering anything.

Why it is sound: the key covers every input that decides the rendered prompt:
- the dataset fingerprint (the task's data file bytes and its file listing) and the sample's
  task, id, candidate setting and source location (absolute file path and line);
- every image file the sample names (original and pre-rendered views): path, size,
  modification and status-change times (ns) and inode, so a rewritten or replaced file misses
  (writing a file always moves its ctime, which no tool can set back);
- the prompt settings (mode, style, alpha, thickness, image policy, seed) and the model's
  capabilities (which decide overlay/native/stacked and the image formats);
- the code: a hash of the source of the loaders and of the prompt path (PROMPT_CODE; a test
  checks that the prompt builder and the loaders import nothing outside it) plus the versions of
  the libraries that decode and encode pixels (numpy, opencv, pillow, pycocotools). Any change
  there misses once.
A miss only costs the normal rendering; a hit is used only when the response is cached too,
so the model never receives anything derived from this cache. Entries are written after a
prompt is rendered for real, keyed by the stats taken before rendering.

It lives in the response-cache SQLite file (table `prompt_digests`), so `--no-cache` and a
different `--cache` turn it off or move it with the responses.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from cvbench.core.types import Capabilities, Option, Prompt, RenderedPrompt, Sample
from cvbench.runner.cache import rows_for_keys

SCHEMA = "cvbench.prompt-digest/1"
BUSY_TIMEOUT_S = 60.0
_PIXEL_LIBRARIES = ("numpy", "opencv-python-headless", "opencv-python", "pillow", "pycocotools")


# The code that turns a data file into a Prompt: the loaders (cvbench/tasks, specs included; not
# the synthetic generator, whose output is data covered by the fingerprint) and the prompt path
# (cvbench/core values, cvbench/imaging, cvbench/prompting). tests/runner/test_prompt_cache.py checks
# that importing the prompt builder and the loaders pulls in no cvbench module outside this list.
PROMPT_CODE: tuple[str, ...] = (
    "tasks/*.py",
    "tasks/specs/*.toml",
    "prompting/*.py",
    "prompting/protocols/*.py",
    "imaging/*.py",
    "core/types.py",
    "core/seeding.py",
    "core/locations.py",
    "core/version.py",
    "core/options.py",
    "core/suggest.py",
    "core/candidates.py",
    "core/__init__.py",
    "__init__.py",
)


def prompt_code_files() -> list[Path]:
    package = Path(__file__).resolve().parents[1]
    return sorted({p for pattern in PROMPT_CODE for p in package.glob(pattern) if p.is_file()})


@lru_cache(maxsize=1)
def code_identity() -> str:
    """Hash of the prompt-path source files and the pixel libraries' versions (once per process)."""
    package = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(SCHEMA.encode())
    for path in prompt_code_files():
        h.update(path.relative_to(package).as_posix().encode() + b"\0")
        h.update(path.read_bytes())
    for name in _PIXEL_LIBRARIES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "-"
        h.update(f"\0{name}={version}".encode())
    return h.hexdigest()


def _file_identity(path: Path) -> list[Any]:
    st = os.stat(path)
    return [os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def prompt_key(
    sample: Sample, task: str, setting: str, fingerprint: str, settings: Mapping[str, Any], capabilities: Capabilities
) -> str | None:
    """The digest-cache key of one sample's prompt; None when a file it names cannot be stat'ed
    (the prompt then fails or is rendered normally, never served from here)."""
    return PromptKeys(task, fingerprint, settings, capabilities).key(sample, setting)


class PromptKeys:
    """`prompt_key` for the samples of one task under fixed settings and capabilities: the parts
    that do not change from sample to sample are serialised once. The keys are `prompt_key`'s:
    the SHA-256 of the same JSON text (keys sorted, default separators), written in pieces.

    `key(sample, setting, stats)`: `stats` remembers each image file's identity for the caller's
    batch (views share files: a 17,000-record set may name only a few hundred); a batch is looked
    up within milliseconds, and a file replaced after that misses at the next run as before."""

    def __init__(self, task: str, fingerprint: str, settings: Mapping[str, Any], capabilities: Capabilities) -> None:
        dump = functools.partial(json.dumps, sort_keys=True, default=str)
        # top-level keys in sorted order: capabilities, code, files, fingerprint, sample, schema,
        # setting, settings, source, task
        self._head = f'{{"capabilities": {dump(asdict(capabilities))}, "code": {dump(code_identity())}, "files": '
        self._fingerprint = f', "fingerprint": {dump(fingerprint)}, "sample": '
        self._schema = f', "schema": {dump(SCHEMA)}, "setting": '
        self._settings = f', "settings": {dump(settings)}, "source": '
        self._task = f', "task": {dump(task)}}}'
        self._dump = dump

    def key(
        self, sample: Sample, setting: str, stats: dict[tuple[str, int | None], list[Any]] | None = None
    ) -> str | None:
        files: list[list[Any]] = []
        try:
            for view in sample.views:
                files.append(_identity(view.image.path, view.image.frame, stats))
                if view.prerendered is not None:
                    files.append(_identity(view.prerendered.path, view.prerendered.frame, stats))
        except OSError:
            return None
        dump = self._dump
        source = [os.path.abspath(sample.source.file), sample.source.line, sample.source.item]
        payload = "".join(
            (
                self._head,
                dump(files),
                self._fingerprint,
                dump(sample.sample_id),
                self._schema,
                dump(setting),
                self._settings,
                dump(source),
                self._task,
            )
        )
        return hashlib.sha256(payload.encode()).hexdigest()


def _identity(path: Path, frame: int | None, stats: dict[tuple[str, int | None], list[Any]] | None) -> list[Any]:
    if stats is None:
        return _file_identity(path) + [frame]
    known = stats.get((str(path), frame))
    if known is None:
        known = stats[(str(path), frame)] = _file_identity(path) + [frame]
    return list(known)


@dataclass(frozen=True)
class DigestedPrompt(Prompt):
    """A prompt known by its digest: the text and options, no image bytes.

    Only used to write the record of a sample whose response is already cached; never sent
    to a model (its `images` is empty). `content_digest()` returns the stored digest, so
    `Request.cache_key()` gives the same key as for the rendered prompt."""

    stored_digest: str = ""

    def content_digest(self) -> str:
        return self.stored_digest


@dataclass(frozen=True)
class StoredPrompt:
    """What the digest cache knows of a rendered prompt: the prompt by its digest, the answer and
    protocol record beside it, and the identities and types of the images it had."""

    rendered: RenderedPrompt  # its `prompt` is a DigestedPrompt
    image_sha256: tuple[str, ...]
    image_mimes: tuple[str, ...]


def summary_json(rendered: RenderedPrompt, protocol: Any) -> str:
    """The stored form of a rendered prompt (`protocol`: its JSON-ready protocol record)."""
    return json.dumps(
        {
            "sample_id": rendered.sample_id,
            "text": rendered.text,
            "system": rendered.system,
            "options": [[o.letter, o.text] for o in rendered.options],
            "answer": rendered.answer,
            "mode": rendered.mode,
            "setting": rendered.setting,
            "protocol": protocol,
            "digest": rendered.prompt.content_digest(),
            "images": [[i.sha256, i.mime] for i in rendered.images],
        },
        ensure_ascii=False,
    )


def summary_prompt(payload: str) -> StoredPrompt:
    data = json.loads(payload)
    prompt = DigestedPrompt(
        sample_id=data["sample_id"],
        text=data["text"],
        images=(),
        options=tuple(Option(letter, text) for letter, text in data["options"]),
        mode=data["mode"],
        setting=data["setting"],
        system=data["system"],
        native=None,
        stored_digest=data["digest"],
    )
    return StoredPrompt(
        RenderedPrompt(prompt, data["answer"], data["protocol"]),
        image_sha256=tuple(sha for sha, _ in data["images"]),
        image_mimes=tuple(mime for _, mime in data["images"]),
    )


class PromptDigestCache:
    """The `prompt_digests` table of a response-cache file. Thread-safe; one per process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        self._db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS prompt_digests (key TEXT PRIMARY KEY, summary TEXT NOT NULL)")

    def get(self, key: str) -> StoredPrompt | None:
        with self._lock:
            row = self._db.execute("SELECT summary FROM prompt_digests WHERE key = ?", (key,)).fetchone()
        return summary_prompt(row[0]) if row else None

    def get_many(self, keys: Sequence[str]) -> dict[str, StoredPrompt]:
        """The stored prompts of `keys` (absent keys are missing): one query per chunk of keys."""
        with self._lock:
            rows = rows_for_keys(self._db, "SELECT key, summary FROM prompt_digests WHERE key IN ({marks})", keys)
        return {key: summary_prompt(payload) for key, payload in rows}

    def put(self, key: str, rendered: RenderedPrompt, protocol: Any) -> None:
        payload = summary_json(rendered, protocol)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO prompt_digests (key, summary) VALUES (?, ?)", (key, payload))

    def close(self) -> None:
        with self._lock:
            self._db.close()
