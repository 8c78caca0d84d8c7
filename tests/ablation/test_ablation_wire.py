"""What an OpenAI-compatible server receives under `cvbench run --ablate`, on the loopback wire
server (tests/wire): blank images of the same sizes, or the source views without overlay pixels;
and the response cache never serves an answer across ablations."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cvbench.cli import cli
from cvbench.imaging.images import load_image
from cvbench.prompting.ablation import BLANK_RGB
from tests.ablation.conftest import load_samples
from tests.model_adapters.api_helpers import isolate_keys
from tests.wire import OpenAIWireServer
from tests.wire.server import ReceivedImage, ReceivedRequest

TASKS = "synth-crossviewbench,synth-mmvm"
LIMIT = 4


def decoded(image: ReceivedImage) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(image.data)).convert("RGB"))


def is_blank(image: ReceivedImage) -> bool:
    return bool((decoded(image) == np.array(BLANK_RGB, np.uint8)).all())


def answer_by_sight(request: ReceivedRequest) -> str:
    """'A' when every image is blank (the server cannot see), else 'B': a cached answer served
    across ablations would show up as the wrong letter."""
    return "A" if request.images and all(is_blank(i) for i in request.images) else "B"


def records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run_dir / "samples.jsonl").read_text().splitlines() if x.strip()]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    isolate_keys(monkeypatch, tmp_path)
    monkeypatch.setenv("CVBENCH_CACHE_DIR", str(tmp_path / "user-cache"))
    with OpenAIWireServer(answer=answer_by_sight) as s:
        yield s


def run(server: OpenAIWireServer, root: Path, out: Path, cache: Path, *extra: str) -> list[dict[str, Any]]:
    args = ["run", "--model", "openai-compatible:wire", "--base-url", server.base_url(), "--task", TASKS]
    args += ["--data-dir", str(root), "--limit", str(LIMIT), "--out", str(out), "--cache", str(cache)]
    # lossless: the checks compare the received pixels with the sources exactly (an
    # openai-compatible server gets JPEG q90 by default)
    args += ["--image-format", "png"]
    result = CliRunner().invoke(cli, [*args, "--concurrency", "1", "--no-progress", *extra])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return records(out)


def test_blind_run_sends_blanks_of_the_same_sizes_and_the_cache_never_crosses(
    server: OpenAIWireServer, synth_root: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "responses.sqlite"
    full = run(server, synth_root, tmp_path / "full", cache)
    seen = list(server.requests)
    blind = run(server, synth_root, tmp_path / "blind", cache, "--ablate", "images")
    sent_blind = server.requests[len(seen) :]
    n = 2 * LIMIT
    assert len(seen) == n and len(sent_blind) == n  # nothing of the full run was served to the blind one
    for normal, ablated in zip(seen, sent_blind):  # concurrency 1: both in job order
        assert ablated.text == normal.text
        assert [(i.mime, decoded(i).shape) for i in ablated.images] == [
            (i.mime, decoded(i).shape) for i in normal.images
        ]
        assert all(is_blank(i) for i in ablated.images)
        assert not all(is_blank(i) for i in normal.images)
    assert [r["parsed"] for r in full] == ["B"] * n and [r["parsed"] for r in blind] == ["A"] * n
    assert not any(r["cached"] for r in full + blind)

    # both are cached now, each under its own key: reruns into new folders send nothing and get their own answers
    before = len(server.requests)
    again_full = run(server, synth_root, tmp_path / "full2", cache)
    again_blind = run(server, synth_root, tmp_path / "blind2", cache, "--ablate", "images")
    assert len(server.requests) == before
    assert all(r["cached"] for r in again_full + again_blind)
    assert [r["parsed"] for r in again_full] == ["B"] * n and [r["parsed"] for r in again_blind] == ["A"] * n
    assert (tmp_path / "blind2" / "config.json").read_text() != (tmp_path / "full2" / "config.json").read_text()


def test_unmarked_run_sends_the_source_views_without_overlay_pixels(
    server: OpenAIWireServer, synth_root: Path, tmp_path: Path
) -> None:
    samples = {(task, s.sample_id): s for task in TASKS.split(",") for s in load_samples(task, synth_root)[: LIMIT + 2]}
    cache = tmp_path / "responses.sqlite"
    full = run(server, synth_root, tmp_path / "full", cache)
    unmarked = run(server, synth_root, tmp_path / "unmarked", cache, "--ablate", "marks")
    by_images = {tuple(i.identity for i in q.images): q for q in server.requests}
    overlays_seen = 0
    for kind, rows in (("full", full), ("marks", unmarked)):
        for row in rows:
            task, sample_id = row["record_id"].partition("@")[0], row["record_id"].partition("/")[2]
            sources = [load_image(v.image) for v in samples[(task, sample_id)].views]
            received = by_images[tuple(row["image_sha256"])]
            assert len(received.images) == len(sources)
            same = [np.array_equal(decoded(i), s) for i, s in zip(received.images, sources)]
            if kind == "marks":
                assert all(same), row["record_id"]  # exactly the source pixels: no overlay at all
                assert row["protocol"]["ablation"]["kind"] == "marks"
            else:
                overlays_seen += same.count(False)
    assert overlays_seen >= len(full)  # every full prompt carries overlay pixels on at least one view
    assert [r["prompt_text"] for r in unmarked] == [r["prompt_text"] for r in full]  # text unchanged
