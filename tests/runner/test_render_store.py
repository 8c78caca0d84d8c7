"""The render store: a second model on the same task and settings receives the stored prompts
(rendered once), stored prompts equal rendered ones, and the store is bounded and crash-safe."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cvbench.core.types import Capabilities, GenerationConfig, Request, Sample
from cvbench.prompting.build import PromptSettings, build_prompt
from cvbench.runner.jsonable import jsonable
from cvbench.runner.options import RunOptions
from cvbench.runner.prompt_cache import prompt_key
from cvbench.runner.prompt_pool import build_or_fetch, usable_cores
from cvbench.runner.render_store import (
    RenderStore,
    RenderStoreError,
    decode_prompt,
    encode_prompt,
    max_bytes_from_env,
    render_store_path,
)
from cvbench.runner.session import Runner
from cvbench.tasks.loading import dataset_fingerprint, iter_task_samples
from cvbench.tasks.registry import get_task


def run(data: Any, out: Path, server: Any, cache: Path, model: str = "openai-compatible:tiny", **kw: Any):
    options = RunOptions(
        tasks=(data.task,),
        data_dir=data.root,
        out=out,
        progress=False,
        n_resamples=200,
        model=model,
        base_urls=(server.base_url,),
        use_cache=True,
        cache=cache,
        save_images=False,
        **kw,
    )
    return Runner(options).execute()


def rows(store: Path) -> list[tuple[str, bytes]]:
    with sqlite3.connect(store) as db:
        return [(k, bytes(v)) for k, v in db.execute("SELECT key, value FROM renders ORDER BY key")]


def first_prompt(data: Any, settings: PromptSettings | None = None, caps: Capabilities | None = None):
    spec = get_task(data.task)
    sample = next(s for s in iter_task_samples(spec, data.root) if isinstance(s, Sample))
    settings = settings or PromptSettings()
    caps = caps or Capabilities(max_images=None)
    key = prompt_key(sample, spec.name, "all", dataset_fingerprint(spec, data.root), jsonable(settings.as_dict()), caps)
    return sample, settings, caps, key, build_prompt(sample, settings, caps)


def test_stored_prompt_equals_the_rendered_one(tiny_data: Any, tmp_path: Path) -> None:
    _, _, _, key, prompt = first_prompt(tiny_data)
    back = decode_prompt(encode_prompt(prompt, jsonable(dict(prompt.protocol))))
    assert back.content_digest() == prompt.content_digest()
    assert [i.data for i in back.images] == [i.data for i in prompt.images]
    assert [i.sha256 for i in back.images] == [i.sha256 for i in prompt.images]
    assert (back.text, back.options, back.answer, back.mode, back.setting) == (
        prompt.text,
        prompt.options,
        prompt.answer,
        prompt.mode,
        prompt.setting,
    )
    generation = GenerationConfig(max_tokens=16)
    assert back.prompt == replace(prompt.prompt) and back.protocol == jsonable(dict(prompt.protocol))
    assert (
        Request("m", back.prompt, generation, {}).cache_key() == Request("m", prompt.prompt, generation, {}).cache_key()
    )
    store = RenderStore(tmp_path / "r.sqlite")
    assert key is not None and store.get(key) is None
    assert store.put(key, prompt, jsonable(dict(prompt.protocol)))
    got = store.get(key)
    assert got is not None and got.content_digest() == prompt.content_digest()
    assert store.stats().entries == 1 and store.stats().bytes > sum(len(i.data) for i in prompt.images)
    assert store.clear() == 1 and store.stats().entries == 0


def test_build_or_fetch_renders_once(tiny_data: Any, tmp_path: Path) -> None:
    sample, settings, caps, key, _ = first_prompt(tiny_data)
    store = RenderStore(tmp_path / "r.sqlite")
    calls: list[int] = []

    def build():
        calls.append(1)
        return build_prompt(sample, settings, caps)

    first = build_or_fetch(build, key, store, lambda p: jsonable(dict(p.protocol)))
    second = build_or_fetch(build, key, store, lambda p: jsonable(dict(p.protocol)))
    assert len(calls) == 1 and not first.stored and second.stored
    assert second.prompt.content_digest() == first.prompt.content_digest()
    # warmed in the worker: the data URLs (JSON literals) and identities are ready before the event loop sees the prompt
    assert all("data_url_json" in vars(i) and "sha256" in vars(i) for i in second.prompt.images)
    assert usable_cores() >= 1


def test_second_model_receives_the_stored_prompts(tiny_data: Any, tmp_path: Path, fake_openai: Any) -> None:
    cache = tmp_path / "cache.sqlite"
    store_path = tmp_path / "renders.sqlite"
    first = run(tiny_data, tmp_path / "a", fake_openai, cache)
    assert first.status == "complete"
    stored = rows(store_path)
    assert len(stored) == tiny_data.n_valid
    # Rewrite one stored prompt's text: if the second model's run rendered, the server would see the
    # original text; it sees the stored one, so the prompt came from the store.
    key, value = stored[0]
    prompt = decode_prompt(value)
    marked = replace(prompt, prompt=replace(prompt.prompt, text=prompt.text + "\nSTORED-MARKER"))
    with _Store(store_path) as s:
        s.put(key, marked, jsonable(dict(prompt.protocol)))
    sent = len(fake_openai.prompts)
    second = run(tiny_data, tmp_path / "b", fake_openai, cache, model="openai-compatible:other")
    assert second.status == "complete"
    new_texts = fake_openai.prompts[sent:]
    assert len(new_texts) == tiny_data.n_valid
    assert sum("STORED-MARKER" in t for t in new_texts) == 1
    assert len(rows(store_path)) == tiny_data.n_valid  # nothing new rendered


class _Store:
    def __init__(self, path: Path) -> None:
        self.store = RenderStore(path)

    def __enter__(self) -> RenderStore:
        return self.store

    def __exit__(self, *exc: object) -> None:
        self.store.close()


def test_damaged_entry_is_a_miss_and_removed(tiny_data: Any, tmp_path: Path) -> None:
    _, _, _, key, prompt = first_prompt(tiny_data)
    path = tmp_path / "r.sqlite"
    store = RenderStore(path)
    store.put(key, prompt, jsonable(dict(prompt.protocol)))
    store.close()
    with sqlite3.connect(path) as db:
        (value,) = db.execute("SELECT value FROM renders").fetchone()
        damaged = bytearray(value)
        damaged[-1] ^= 0xFF  # one bit of the last image's bytes, as a torn page would
        db.execute("UPDATE renders SET value = ?", (bytes(damaged),))
    store = RenderStore(path)
    assert store.get(key) is None
    assert store.stats().entries == 0


def test_store_is_bounded_least_recently_used_first(tiny_data: Any, tmp_path: Path) -> None:
    _, _, _, _, prompt = first_prompt(tiny_data)
    size = len(encode_prompt(prompt, jsonable(dict(prompt.protocol))))
    store = RenderStore(tmp_path / "r.sqlite", max_bytes=int(size * 3.5))
    protocol = jsonable(dict(prompt.protocol))
    for k in ("a", "b", "c"):
        store.put(k, prompt, protocol)
    assert store.get("a") is not None  # "a" used most recently now; "b" is the oldest
    store.put("d", prompt, protocol)
    assert store.stats().bytes <= store.max_bytes
    assert store.get("b") is None and store.get("a") is not None and store.get("d") is not None


def test_reopened_store_counts_what_it_holds_before_its_first_put(tiny_data: Any, tmp_path: Path) -> None:
    """The stored bytes are summed at the first put (a run that only reads never scans the file):
    a second process's store still evicts for what the first one left."""
    _, _, _, _, prompt = first_prompt(tiny_data)
    protocol = jsonable(dict(prompt.protocol))
    size = len(encode_prompt(prompt, protocol))
    first = RenderStore(tmp_path / "r.sqlite", max_bytes=int(size * 3.5))
    for k in ("a", "b", "c"):
        first.put(k, prompt, protocol)
    first.close()
    reader = RenderStore(tmp_path / "r.sqlite", max_bytes=int(size * 3.5))
    assert reader.get("a") is not None and reader.get("c") is not None  # reads need no total
    reader.put("d", prompt, protocol)  # 4 x size > the limit: the least recently used goes
    assert reader.stats().bytes <= reader.max_bytes
    assert reader.get("b") is None and reader.get("a") is not None and reader.get("d") is not None
    reader.close()


def test_native_prompts_are_not_stored(tiny_data: Any, tmp_path: Path) -> None:
    _, _, _, key, prompt = first_prompt(
        tiny_data, PromptSettings(mode="native"), Capabilities(max_images=None, native_regions=True)
    )
    assert prompt.prompt.native is not None
    store = RenderStore(tmp_path / "r.sqlite")
    assert not store.put(key, prompt, jsonable(dict(prompt.protocol)))
    assert store.stats().entries == 0


def test_location_and_limit_from_the_environment(tmp_path: Path) -> None:
    assert render_store_path(tmp_path / "c.sqlite", {}) == tmp_path / "renders.sqlite"
    assert render_store_path(None, {}) is None
    assert render_store_path(tmp_path / "c.sqlite", {"CVBENCH_RENDER_STORE": "off"}) is None
    assert render_store_path(None, {"CVBENCH_RENDER_STORE": str(tmp_path / "x.db")}) == tmp_path / "x.db"
    assert max_bytes_from_env({"CVBENCH_RENDER_STORE_MAX_MB": "2"}) == 2 * 1024 * 1024
    with pytest.raises(RenderStoreError, match="CVBENCH_RENDER_STORE_MAX_MB"):
        max_bytes_from_env({"CVBENCH_RENDER_STORE_MAX_MB": "lots"})


def test_foreign_file_is_refused_with_the_path(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(RenderStoreError, match=str(path)):
        RenderStore(path)


def test_json_header_is_plain(tiny_data: Any) -> None:
    _, _, _, _, prompt = first_prompt(tiny_data)
    value = encode_prompt(prompt, jsonable(dict(prompt.protocol)))
    n = int.from_bytes(value[:4], "big")
    header = json.loads(value[4 : 4 + n])
    assert header["images"][0][4] == prompt.images[0].pixel_identity
    assert np.sum([i[5] for i in header["images"]]) == len(value) - 4 - n


def test_cli_shows_and_clears_the_store(tiny_data: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from cvbench.cli import cli

    monkeypatch.delenv("CVBENCH_RENDER_STORE", raising=False)
    _, _, _, key, prompt = first_prompt(tiny_data)
    store = RenderStore(tmp_path / "renders.sqlite")
    store.put(key, prompt, jsonable(dict(prompt.protocol)))
    store.close()
    cache = str(tmp_path / "responses.sqlite")
    shown = CliRunner().invoke(cli, ["cache", "renders", "--cache", cache])
    assert shown.exit_code == 0 and "1 rendered prompts" in shown.output
    cleared = CliRunner().invoke(cli, ["cache", "renders", "--cache", cache, "--clear"])
    assert cleared.exit_code == 0 and "removed 1 rendered prompts" in cleared.output
    assert "0 rendered prompts" in cleared.output
