"""Files of the run directory: names, atomic writes, JSON reading with errors that name the file."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

RESULTS_SCHEMA = "cvbench.results/1"
RECORD_SCHEMA = "cvbench.record/1"
CONFIG_SCHEMA = "cvbench.config/1"
CONFIG_FILE = "config.json"
SAMPLES_FILE = "samples.jsonl"
RESULTS_FILE = "results.json"
IMAGES_DIR = "images"


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
