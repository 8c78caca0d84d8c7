"""The lmms-eval hooks render each document once: beyond the in-memory prompts, a document's
prompt comes from the on-disk render store, also for a fresh hooks object (a new lmms-eval
process) on the same export."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from cvbench.integrations.lmms_export import LmmsExportOptions, export_lmms, lmms_task_name
from cvbench.integrations.lmms_hooks import FULL_PROMPT_CACHE, ExportHooks
from cvbench.runner.render_store import RenderStore, decode_prompt
from tests.integrations.lmms_fixtures import build_data_root


def test_documents_come_from_the_render_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store_path = tmp_path / "renders.sqlite"
    monkeypatch.setenv("CVBENCH_RENDER_STORE", str(store_path))
    data_root = build_data_root(tmp_path / "data")
    out = tmp_path / "tasks"
    export_lmms(LmmsExportOptions(tasks=("synth-crossviewbench",), out=out, data_dir=data_root, seed=3))
    name = lmms_task_name("synth-crossviewbench", "all")
    docs = [json.loads(line) for line in (out / "data" / f"{name}.jsonl").read_text().splitlines()]
    hooks = ExportHooks.load(out)
    texts = {d["sample_id"]: hooks.doc_to_text(d) for d in docs}
    with sqlite3.connect(store_path) as db:
        stored = [(k, bytes(v)) for k, v in db.execute("SELECT key, value FROM renders")]
    assert len(stored) == sum(not t.startswith("[cvbench: sample ") for t in texts.values()) > FULL_PROMPT_CACHE // 2
    # mark every stored prompt: a fresh hooks object shows the marked text, so it rendered nothing
    store = RenderStore(store_path)
    for key, value in stored:
        prompt = decode_prompt(value)
        store.put(key, replace(prompt, prompt=replace(prompt.prompt, text=prompt.text + " [stored]")), prompt.protocol)
    store.close()
    fresh = ExportHooks.load(out)
    again = {d["sample_id"]: fresh.doc_to_text(d) for d in docs}
    for sample_id, text in texts.items():
        if not text.startswith("[cvbench: sample "):
            assert again[sample_id] == text + " [stored]"


def test_group_documents_the_image_encode_format(tmp_path: Path) -> None:
    from cvbench.integrations.lmms_export import render_group_yaml

    png = render_group_yaml("cvbench", ["t"], {"version": 1})
    jpeg = render_group_yaml("cvbench", ["t"], {"version": 1}, "jpeg")
    assert "LMMS_IMAGE_ENCODE_FORMAT=PNG" in png and "(png)" in png
    assert "LMMS_IMAGE_JPEG_QUALITY=90" in jpeg and "(jpeg)" in jpeg
    assert all(line.startswith("#") for line in png.splitlines() if "LMMS_IMAGE" in line)
