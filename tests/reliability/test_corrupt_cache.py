"""A damaged, foreign or newer response cache file: refused at open with the path and the
choices, never replaced by an empty cache, never a source of wrong answers; `cvbench cache check`
finds the damage and `cvbench cache repair` salvages every readable row, unchanged.

The damage is real: a cache file written by ResponseCache, then truncated or overwritten with
seeded garbage pages on disk."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cvbench.cli import cli
from cvbench.core.types import Response
from cvbench.runner.cache import CacheError, CacheUnusableError, ResponseCache
from cvbench.runner.cache_check import inspect_cache
from tests.reliability.conftest import SynthBase, cli_env, cvbench, replicate
from tests.wire.faults import FaultInjectingServer

N_ROWS = 400
PAGE = 4096


def answer_of(k: int) -> str:
    return f"answer {k}: " + "B" * (200 + k % 300)  # rows of different lengths over many pages


def write_cache(path: Path) -> None:
    with ResponseCache(path) as cache:
        for k in range(N_ROWS):
            cache.put(f"key-{k:04d}", f"model-{k % 3}", Response(text=answer_of(k)))
    con = sqlite3.connect(path)  # everything into the main file: the damage below is what SQLite reads
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def truncate(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)


def garbage_pages(path: Path) -> None:
    n_pages = path.stat().st_size // PAGE
    rng = np.random.default_rng(20)
    with open(path, "r+b") as fh:
        for page in rng.choice(np.arange(2, n_pages), size=3, replace=False):
            fh.seek(int(page) * PAGE)
            fh.write(rng.integers(0, 256, size=PAGE, dtype=np.uint8).tobytes())


DAMAGE = {"truncated": truncate, "garbage-pages": garbage_pages}


def assert_refused(path: Path, words: str) -> None:
    before = digest(path)
    with pytest.raises(CacheError) as err:
        ResponseCache(path)
    message = str(err.value)
    assert str(path) in message and "not a usable cvbench response cache" in message and words in message, message
    assert isinstance(err.value, CacheUnusableError) and f"cvbench cache check --cache {path}" in err.value.choices
    assert ("cvbench cache repair" in err.value.choices) == (words == "damaged")
    assert digest(path) == before  # the user's file is left exactly as it was


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_cache_is_refused_checked_and_repaired(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "cache.db"
    write_cache(path)
    DAMAGE[damage](path)
    damaged = digest(path)
    assert_refused(path, "damaged")
    runner = CliRunner()
    check = runner.invoke(cli, ["cache", "check", "--cache", str(path)])
    assert check.exit_code == 1 and "damaged" in check.output and "cache repair --cache" in check.output, check.output

    repair = runner.invoke(cli, ["cache", "repair", "--cache", str(path)])
    assert repair.exit_code == 0, repair.output
    kept = [p for p in tmp_path.glob("cache.db.damaged-*") if not p.name.endswith(("-wal", "-shm"))]
    assert len(kept) == 1 and digest(kept[0]) == damaged
    assert inspect_cache(path).kind == "ok"
    with ResponseCache(path) as cache:
        found = cache.get_many([f"key-{k:04d}" for k in range(N_ROWS)])
    assert 0 < len(found) < N_ROWS, f"salvaged {len(found)} of {N_ROWS}"
    for key, response in found.items():  # every salvaged answer is the one stored, never another
        assert response.text == answer_of(int(key.split("-")[1]))
    assert f"salvaged {len(found)} entries" in repair.output
    assert runner.invoke(cli, ["cache", "check", "--cache", str(path)]).exit_code == 0


def test_foreign_sqlite_file_is_refused_and_not_touched(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes (body TEXT)")
    con.execute("INSERT INTO notes VALUES ('mine')")
    con.commit()
    con.close()
    assert_refused(path, "not a cvbench response cache")
    con = sqlite3.connect(path)
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["notes"]
    con.close()
    repair = CliRunner().invoke(cli, ["cache", "repair", "--cache", str(path)])
    assert repair.exit_code == 1 and "only salvages a damaged cvbench cache" in repair.output
    assert not list(tmp_path.glob("*.damaged-*"))


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "readme.txt"
    path.write_text("my thesis notes\n" * 200)
    assert_refused(path, "file is not a database")
    assert path.read_text() == "my thesis notes\n" * 200


def test_cache_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    write_cache(path)
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value = '99' WHERE name = 'schema'")
    con.commit()
    con.close()
    assert_refused(path, "newer cvbench (cache schema 99")
    check = CliRunner().invoke(cli, ["cache", "check", "--cache", str(path)])
    assert check.exit_code == 1 and "newer" in check.output


def test_a_row_that_no_longer_decodes_is_never_served(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    write_cache(path)
    con = sqlite3.connect(path)
    con.execute("UPDATE responses SET response = '{\"text\": \"answ' WHERE key = 'key-0007'")
    con.commit()
    con.close()
    with ResponseCache(path) as cache:  # structurally sound: it opens
        assert cache.get("key-0008") is not None
        with pytest.raises(CacheError) as err:
            cache.get("key-0007")
        assert str(path) in str(err.value)
        with pytest.raises(CacheError):
            cache.get_many(["key-0006", "key-0007"])
    runner = CliRunner()
    check = runner.invoke(cli, ["cache", "check", "--cache", str(path)])
    assert check.exit_code == 1 and "1 of 400 entries" in check.output, check.output
    repair = runner.invoke(cli, ["cache", "repair", "--cache", str(path)])
    assert repair.exit_code == 0 and f"salvaged {N_ROWS - 1} entries" in repair.output, repair.output
    with ResponseCache(path) as cache:
        assert cache.get("key-0007") is None and cache.get("key-0006") is not None


def test_run_on_a_cache_with_garbage_pages_stops_before_sending(synth_base: SynthBase, tmp_path: Path) -> None:
    data = replicate(synth_base, tmp_path / "data", 6)
    path = tmp_path / "cache.db"
    write_cache(path)
    garbage_pages(path)
    before = digest(path)
    with FaultInjectingServer(None) as server:
        result = cvbench(
            [
                "run",
                "--model",
                "openai-compatible:cachey",
                "--base-url",
                server.base_url(),
                "--task",
                "crossviewbench",
                "--data-dir",
                str(data.root),
                "--out",
                str(tmp_path / "run"),
                "--cache",
                str(path),
                "--save-images",
                "none",
                "--no-progress",
            ],
            cli_env(tmp_path),
            tmp_path,
        )
        assert len(server.requests) == 0
    message = result.stdout + result.stderr
    assert result.returncode == 1, message[-2000:]
    assert "Traceback" not in message and "DatabaseError" not in message
    assert str(path) in message and "cvbench cache repair" in message and "--no-cache" in message, message[-2000:]
    assert digest(path) == before
