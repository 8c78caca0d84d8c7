"""Shared fixtures: a tiny CrossViewBench-format dataset written on the fly,
registered as the task `tiny-cvb` through $CVBENCH_TASK_DIRS, and a response cache path."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cvbench.imaging.masks import encode_rle
from tests.wire.server import wire_image_identity

TASK = "tiny-cvb"
SPEC = f"""
name = "{TASK}"
benchmark = "crossviewbench"
description = "tiny CrossViewBench-format set for the runner tests"
source = "crossviewbench-jsonl"
data_file = "crossviewbench.jsonl"
data_subdir = "{TASK}"
synthetic = false
slice_dims = ["category", "task_type"]
"""
COLOURS = [(220, 40, 40), (40, 80, 220), (40, 180, 60), (230, 200, 40)]


@dataclass(frozen=True)
class TinyData:
    root: Path  # the data root (--data-dir)
    spec_dir: Path  # holds tiny-cvb.toml ($CVBENCH_TASK_DIRS)
    n_valid: int  # samples that load and render
    n_invalid: int  # a bad JSON line and a sample whose image is missing
    n_scenes: int
    task: str = TASK

    @property
    def n_total(self) -> int:
        return self.n_valid + self.n_invalid


def _view(folder: Path, name: str, boxes: list[tuple[int, int, int, int]], colours: list[tuple[int, int, int]]) -> dict:
    h, w = 48, 64
    img = np.full((h, w, 3), 128, np.uint8)
    objects = []
    for k, ((x1, y1, x2, y2), colour) in enumerate(zip(boxes, colours)):
        img[y1:y2, x1:x2] = colour
        mask = np.zeros((h, w), bool)
        mask[y1:y2, x1:x2] = True
        objects.append({"mask_rle": encode_rle(mask), "bbox_xyxy": [x1, y1, x2 - 1, y2 - 1], "track_id": f"t{k}"})
    img[0, : len(name)] = np.frombuffer(name.encode().ljust(len(name)), np.uint8)[:, None]  # unique pixels per sample
    Image.fromarray(img).save(folder / name)
    return {"view_id": name.split(".")[0], "image_path": f"images/{name}", "objects": objects}


def write_tiny_dataset(base: Path, n_valid: int = 24, n_scenes: int = 6) -> TinyData:
    root = base / "data"
    folder = root / TASK
    (folder / "images").mkdir(parents=True)
    spec_dir = base / "specs"
    spec_dir.mkdir()
    (spec_dir / f"{TASK}.toml").write_text(SPEC, encoding="utf-8")
    rng = np.random.default_rng(0)
    lines: list[str] = []
    for i in range(n_valid):
        order = rng.permutation(4)
        boxes1 = [(2 + 15 * k, 10, 13 + 15 * k, 30) for k in range(4)]
        boxes2 = [(3 + 15 * k, 14, 12 + 15 * k, 36) for k in range(4)]
        v1 = _view(folder / "images", f"s{i}_a.png", boxes1, COLOURS)
        v2 = _view(folder / "images", f"s{i}_b.png", boxes2, [COLOURS[j] for j in order])
        answer_idx = int(np.flatnonzero(order == 0)[0])  # the red object sits at position answer_idx in view 2
        question = (
            "Which object in the second image is the same as <region> in the first image: "
            "<region>, <region>, <region> or <region>?"
        )
        record = {
            "sample_id": f"s{i}",
            "question_type": "Q1" if i % 2 == 0 else "Q2",
            "question": question,
            "options": [
                f"{letter}. the {word} one" for letter, word in zip("ABCD", ["first", "second", "third", "fourth"])
            ],
            "answer": "ABCD"[answer_idx],
            "region_refs": [[0, 0], [1, 0], [1, 1], [1, 2], [1, 3]],
            "views": [v1, v2],
            "dataset": "tiny",
            "scene": f"scene{i % n_scenes}",
        }
        lines.append(json.dumps(record))
    lines.insert(3, "{ this line is not json")
    missing = json.loads(lines[0])
    missing["sample_id"] = "broken-image"  # loads (the file exists) but cannot be rendered
    (folder / "images" / "broken.png").write_bytes(b"not a png at all")
    missing["views"][1]["image_path"] = "images/broken.png"
    lines.append(json.dumps(missing))
    (folder / "crossviewbench.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return TinyData(root=root, spec_dir=spec_dir, n_valid=n_valid, n_invalid=2, n_scenes=n_scenes)


@pytest.fixture()
def tiny_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TinyData:
    data = write_tiny_dataset(tmp_path)
    monkeypatch.setenv("CVBENCH_TASK_DIRS", str(data.spec_dir))
    monkeypatch.setenv("CVBENCH_CACHE_DIR", str(tmp_path / "user-cache"))
    return data


# ------------------------------------------------------------------------------ a loopback OpenAI-compatible server

import base64
import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    """Answers /v1/chat/completions deterministically from the request's images; counts requests
    per image set. `fail_keys` get HTTP 400 (not retried), `delay_s` slows every answer, and a
    request whose key is in `hold_keys` waits until that event is set."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.fail_keys: set[str] = set()
        self.hold_keys: dict[str, threading.Event] = {}
        self.reply_text: str | None = None  # a fixed reply instead of "Answer: <letter>"
        self.judge_reply: str | None = None  # the reply to judge requests (their text holds "Model answer:")
        self.prompts: list[str] = []  # the text part of every request
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = request_key(body)
                with owner.lock:
                    owner.counts[key] = owner.counts.get(key, 0) + 1
                if owner.delay_s:
                    time.sleep(owner.delay_s)
                if key in owner.hold_keys:
                    owner.hold_keys[key].wait(timeout=120)
                if key in owner.fail_keys:
                    payload = json.dumps({"error": {"message": "bad request (test)", "type": "invalid_request_error"}})
                    self._send(400, payload)
                    return
                with owner.lock:
                    owner.prompts.append(request_text(body))
                letter = "ABCD"[int(key[:2], 16) % 4]
                content = owner.reply_text if owner.reply_text is not None else f"Answer: {letter}"
                if owner.judge_reply is not None and "Model answer:" in request_text(body):
                    content = owner.judge_reply
                self._send(
                    200,
                    json.dumps(
                        {
                            "id": "x",
                            "object": "chat.completion",
                            "created": 0,
                            "model": body.get("model", "m"),
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": content},
                                    "finish_reason": "stop",
                                }
                            ],
                            "usage": {"prompt_tokens": 100, "completion_tokens": 3, "total_tokens": 103},
                        }
                    ),
                )

            def _send(self, status: int, payload: str) -> None:
                data = payload.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @staticmethod
    def key_of(image_sha256: list[str]) -> str:
        """The key the server gives the request for a record with these images."""
        return record_key(image_sha256)

    @property
    def total(self) -> int:
        with self.lock:
            return sum(self.counts.values())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def request_key(body: dict) -> str:
    """sha256 over the identity of every image in the request, in order (identifies the sample)."""
    shas = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if part.get("type") == "image_url":
                    url = part["image_url"]["url"]
                    shas.append(wire_image_identity(base64.b64decode(url.split(",", 1)[1])))
    return hashlib.sha256("".join(shas).encode()).hexdigest()


def request_text(body: dict) -> str:
    texts = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(part.get("text", "") for part in content if part.get("type") == "text")
    return "\n".join(texts)


def record_key(image_sha256: list[str]) -> str:
    return hashlib.sha256("".join(image_sha256).encode()).hexdigest()


@pytest.fixture()
def fake_openai() -> FakeOpenAI:
    server = FakeOpenAI()
    yield server
    server.close()


@pytest.fixture()
def make_fake_openai():
    """A factory for servers with a delay; all are shut down after the test."""
    servers: list[FakeOpenAI] = []

    def make(delay_s: float = 0.0) -> FakeOpenAI:
        servers.append(FakeOpenAI(delay_s))
        return servers[-1]

    yield make
    for server in servers:
        server.close()
