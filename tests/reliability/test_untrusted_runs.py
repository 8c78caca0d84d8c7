"""Run directories are input too: a leaderboard is built from runs other people submit.

A crafted `samples.jsonl` must not make `cvbench report` or `cvbench leaderboard build` read a
file outside the run directory or write one outside their output folder (image paths are
derived from `image_sha256`), and malformed records must be one clear error naming the line.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.reliability.conftest import cli_env, cvbench
from tests.tasks.builders import cvb_record, write_image, write_jsonl

SECRET_BYTES = b"\x89PNG\r\n\x1a\nTOP-SECRET-NOT-FOR-THE-SITE"


@pytest.fixture()
def good_run(tmp_path: Path) -> Path:
    folder = tmp_path / "data" / "crossviewbench"
    images = ["images/a.png", "images/b.png"]
    write_image(folder / images[0], seed=1)
    write_image(folder / images[1], seed=2)
    write_jsonl(folder / "crossviewbench.jsonl", [cvb_record(f"s{i}", images, scene=f"sc{i % 2}") for i in range(4)])
    done = cvbench(
        [
            "run",
            "--model",
            "first-option",
            "--task",
            "crossviewbench",
            "--data-dir",
            str(tmp_path / "data"),
            "--out",
            str(tmp_path / "run"),
            "--no-cache",
            "--no-progress",
        ],
        cli_env(tmp_path),
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return tmp_path / "run"


def tamper(run_dir: Path, line: int, **changes: object) -> None:
    path = run_dir / "samples.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[line - 1])
    record.update(changes)
    lines[line - 1] = json.dumps(record, sort_keys=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_image_hash_cannot_traverse_out_of_the_run(good_run: Path, tmp_path: Path) -> None:
    # a file the attacker wants published, beside the submitted run
    incoming = tmp_path / "incoming"
    shutil.copytree(good_run, incoming / "run")
    (incoming / "victim").mkdir()
    (incoming / "victim" / "secret.png").write_bytes(SECRET_BYTES)
    traversal = "../victim/secret"  # images/<sha[:2]>/<sha>.png -> images/../../victim/secret.png
    assert (incoming / "run" / "images" / traversal[:2] / f"{traversal}.png").resolve() == (
        incoming / "victim" / "secret.png"
    ).resolve()
    # records were written with the first option, so they are wrong answers: the gallery shows them
    tamper(incoming / "run", 1, image_sha256=[traversal, traversal])
    env = cli_env(tmp_path)
    before = set(tmp_path.rglob("*"))
    results = [
        cvbench(["report", str(incoming / "run"), "--out", str(tmp_path / "report")], env, tmp_path),
        cvbench(
            [
                "leaderboard",
                "build",
                str(incoming / "run"),
                "--out",
                str(tmp_path / "site"),
                "--samples-per-evaluation",
                "0",
            ],
            env,
            tmp_path,
        ),
    ]
    for result in results:
        assert "Traceback" not in result.stderr, result.stderr[-3000:]
        if result.returncode != 0:  # refusing the tampered run is fine, if it says where
            assert result.stderr.startswith("Error: ") and "samples.jsonl:1" in result.stderr, result.stderr
    created = set(tmp_path.rglob("*")) - before
    outside = [
        p
        for p in created
        if not (p.is_relative_to(tmp_path / "report") or p.is_relative_to(tmp_path / "site"))
        and not p.is_relative_to(tmp_path / "user-cache")
    ]
    assert not outside, f"files written outside the output folders: {outside}"
    for p in created:
        if p.is_file():
            assert b"TOP-SECRET" not in p.read_bytes(), f"{p} holds the file from outside the run"
            if p.suffix == ".html":
                assert "victim" not in p.read_text(encoding="utf-8"), f"{p} links to a file outside the site"


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"image_sha256": ["/etc/hostname"]}, "samples.jsonl:2"),
        ({"image_sha256": "not-a-list"}, "samples.jsonl:2"),
    ],
)
def test_malformed_records_are_one_clear_error(
    good_run: Path, tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    tamper(good_run, 2, **changes)
    env = cli_env(tmp_path)
    for step in (
        ["report", str(good_run), "--out", str(tmp_path / "report")],
        ["leaderboard", "build", str(good_run), "--out", str(tmp_path / "site")],
        ["export", str(good_run), "--format", "csv"],
    ):
        result = cvbench(step, env, tmp_path)
        assert "Traceback" not in result.stderr, (step, result.stderr[-3000:])
        if result.returncode != 0:
            assert result.stderr.startswith("Error: ") and message in result.stderr, (step, result.stderr)
