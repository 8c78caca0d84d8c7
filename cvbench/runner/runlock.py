"""One writer per run directory: an exclusive OS lock on RUN_DIR/.cvbench.lock.

The lock is `flock(LOCK_EX | LOCK_NB)` on an open file descriptor held for the whole run. The
kernel drops it when the process ends in any way (kill -9 included), so a stale lock never needs
cleaning up: the file may stay behind, only the lock matters. The file holds the holder's pid and
host so a refused second process can say who has the directory.

On network file systems flock may be local to one machine (NFS without lock support): the lock
then protects against a second process on the same host only.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from typing_extensions import Self

LOCK_FILE = ".cvbench.lock"


class RunDirBusyError(RuntimeError):
    """Another process holds the run directory."""


@dataclass(frozen=True)
class LockHolder:
    pid: int | None
    host: str | None

    def describe(self) -> str:
        if self.pid is None:
            return "another process (it has not yet written its pid)"
        return f"pid {self.pid} on host {self.host or '?'}"


def read_holder(path: Path) -> LockHolder:
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return LockHolder(None, None)
    pid = data.get("pid") if isinstance(data, dict) else None
    host = data.get("host") if isinstance(data, dict) else None
    return LockHolder(pid if isinstance(pid, int) else None, host if isinstance(host, str) else None)


class RunDirLock:
    """Held from `acquire()` until `release()` (or until the process dies)."""

    def __init__(self, run_dir: Path, fd: int) -> None:
        self.run_dir = run_dir
        self.path = run_dir / LOCK_FILE
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, run_dir: str | os.PathLike[str]) -> RunDirLock:
        """Lock `run_dir` (created if missing) or raise RunDirBusyError naming the holder at once."""
        folder = Path(run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / LOCK_FILE
        # no O_TRUNC: a refused opener must not wipe the holder's pid before reading it
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                holder = read_holder(path)
                raise RunDirBusyError(
                    f"{folder} is in use by {holder.describe()} (lock {path}); wait for that run to finish, "
                    f"stop it, or use another --out"
                ) from None
            raise
        try:
            info = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode("utf-8")
            os.ftruncate(fd, 0)
            os.pwrite(fd, info, 0)
        except OSError:
            pass  # a full disk must not keep the lock from working; the holder is then unnamed
        return cls(folder, fd)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # an unlocked file names no holder
        os.close(fd)  # closing the descriptor drops the flock

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
