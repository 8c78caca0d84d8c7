from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cvbench.core.types import ModelError, Response, Usage
from cvbench.runner.cache import CacheError, ResponseCache


def ok(text: str) -> Response:
    return Response(
        text=text,
        usage=Usage(12, 3, 0.001),
        latency_s=0.25,
        attempts=2,
        option_scores={"A": -0.1, "B": -2.5},
        finish_reason="stop",
        served_model="m-1",
    )


def test_roundtrip_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with ResponseCache(path) as cache:
        cache.put("k1", "openai:x", ok("A"))
        got = cache.get("k1")
        assert got == ok("A")
        assert cache.get("missing") is None
        assert "k1" in cache
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_committed_immediately_visible_to_another_connection(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cache = ResponseCache(path)
    cache.put("k", "m", ok("B"))
    # no close, no explicit commit: a second connection (another process) sees it already
    row = sqlite3.connect(path).execute("SELECT model_id FROM responses WHERE key='k'").fetchone()
    assert row == ("m",)
    cache.close()


def test_failures_are_never_cached(tmp_path: Path) -> None:
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        with pytest.raises(CacheError):
            cache.put("k", "m", Response(text=None, error=ModelError("server", "boom", 500, True)))
        assert cache.get("k") is None
        assert cache.stats().entries == 0


def test_stats_and_clear(tmp_path: Path) -> None:
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        for i in range(3):
            cache.put(f"a{i}", "model-a", ok("A"))
        cache.put("b0", "model-b", ok("B"))
        stats = cache.stats()
        assert stats.entries == 4
        assert {m.model_id: m.entries for m in stats.per_model} == {"model-a": 3, "model-b": 1}
        assert stats.file_bytes > 0
        assert cache.clear("model-a") == 3
        assert cache.stats().entries == 1 and cache.get("b0") is not None
        assert cache.clear() == 1
        assert cache.stats().entries == 0


def test_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CacheError, match="bad.sqlite"):
        ResponseCache(bad)


WRITER = textwrap.dedent("""
    import sys
    from cvbench.runner.cache import ResponseCache
    from cvbench.core.types import Response
    cache = ResponseCache(sys.argv[1])
    tag = sys.argv[2]
    for i in range(300):
        cache.put(f"{tag}-{i}", "model-" + tag, Response(text=str(i)))
        assert cache.get(f"{tag}-{i}").text == str(i)
    cache.close()
""")


def test_two_processes_write_one_cache(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    ResponseCache(path).close()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag]) for tag in ("p", "q")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with ResponseCache(path) as cache:
        stats = cache.stats()
        assert stats.entries == 600
        assert {m.model_id: m.entries for m in stats.per_model} == {"model-p": 300, "model-q": 300}
        assert cache.get("q-299").text == "299"
