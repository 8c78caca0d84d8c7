"""The prompt-digest cache: a rerun with cached answers writes the same records without rendering,
and any change to what the model would see (image bytes, settings, code) is a miss."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cvbench.core.types import Capabilities, GenerationConfig, Request, Sample
from cvbench.prompting.build import PromptSettings, build_prompt
from cvbench.rundir.format import iter_records
from cvbench.runner.cache import CacheError
from cvbench.runner.jsonable import jsonable
from cvbench.runner.options import RunOptions
from cvbench.runner.prompt_cache import DigestedPrompt, PromptDigestCache, prompt_key
from cvbench.runner.session import Runner
from cvbench.tasks.loading import dataset_fingerprint, iter_task_samples
from cvbench.tasks.registry import get_task

TIMINGS = ("latency_s", "cached")


def run(data: Any, out: Path, server: Any, cache: Path, **kw: Any):
    options = RunOptions(
        tasks=(data.task,),
        data_dir=data.root,
        out=out,
        progress=False,
        n_resamples=200,
        model="openai-compatible:tiny",
        base_urls=(server.base_url,),
        use_cache=True,
        cache=cache,
        **kw,
    )
    return Runner(options).execute()


def lines_without_timings(run_dir: Path) -> list[dict[str, Any]]:
    out = []
    for line in (run_dir / "samples.jsonl").read_text().splitlines():
        data = json.loads(line)
        for key in TIMINGS:
            data.pop(key)
        out.append(data)
    return out


def digest_rows(cache: Path) -> int:
    with sqlite3.connect(cache) as db:
        return int(db.execute("SELECT COUNT(*) FROM prompt_digests").fetchone()[0])


def test_digest_gives_the_rendered_prompts_request_key(tiny_data: Any, tmp_path: Path) -> None:
    spec = get_task(tiny_data.task)
    sample = next(s for s in iter_task_samples(spec, tiny_data.root) if isinstance(s, Sample))
    settings, caps = PromptSettings(), Capabilities(max_images=None, option_logprobs=True)
    prompt = build_prompt(sample, settings, caps)
    fingerprint = dataset_fingerprint(spec, tiny_data.root)
    key = prompt_key(sample, spec.name, "all", fingerprint, jsonable(settings.as_dict()), caps)
    assert key is not None
    cache = PromptDigestCache(tmp_path / "c.sqlite")
    assert cache.get(key) is None
    cache.put(key, prompt, jsonable(dict(prompt.protocol)))
    stored = cache.get(key)
    cache.close()
    assert stored is not None
    known = stored.rendered
    from cvbench.runner.cache import ResponseCache

    with ResponseCache(tmp_path / "c.sqlite") as responses:  # a full `cvbench cache clear` drops the digests too
        responses.clear("some-model")
        assert digest_rows(tmp_path / "c.sqlite") == 1
        responses.clear()
        assert digest_rows(tmp_path / "c.sqlite") == 0
    assert isinstance(known.prompt, DigestedPrompt) and known.images == ()
    generation = GenerationConfig(temperature=0.0, max_tokens=16, seed=0)
    assert (
        Request("m", known.prompt, generation, {"a": 1}).cache_key()
        == Request("m", prompt.prompt, generation, {"a": 1}).cache_key()
    )
    assert stored.image_sha256 == tuple(i.sha256 for i in prompt.images)
    assert (known.text, known.options, known.answer, known.mode) == (
        prompt.text,
        prompt.options,
        prompt.answer,
        prompt.mode,
    )
    assert known.protocol == jsonable(dict(prompt.protocol))
    # every input of the prompt is in the key
    other_style = PromptSettings(style="contour")
    assert prompt_key(sample, spec.name, "all", fingerprint, jsonable(other_style.as_dict()), caps) != key
    assert (
        prompt_key(sample, spec.name, "all", fingerprint, jsonable(settings.as_dict()), Capabilities(max_images=1))
        != key
    )
    assert prompt_key(sample, spec.name, "all", "sha256:other", jsonable(settings.as_dict()), caps) != key
    path = sample.views[0].image.path
    path.write_bytes(path.read_bytes())  # same bytes, but the file was written: a miss, not a guess
    assert prompt_key(sample, spec.name, "all", fingerprint, jsonable(settings.as_dict()), caps) != key
    os.remove(path)
    assert prompt_key(sample, spec.name, "all", fingerprint, jsonable(settings.as_dict()), caps) is None


def test_warm_rerun_sends_nothing_and_writes_identical_records(
    tiny_data: Any, tmp_path: Path, fake_openai: Any
) -> None:
    cache = tmp_path / "cache.sqlite"
    cold = run(tiny_data, tmp_path / "cold", fake_openai, cache, save_images=False)
    sent = fake_openai.total
    assert cold.status == "complete" and sent == tiny_data.n_valid
    assert digest_rows(cache) == tiny_data.n_valid
    warm = run(tiny_data, tmp_path / "warm", fake_openai, cache, save_images=False)
    assert fake_openai.total == sent
    assert warm.results["overall"] == cold.results["overall"]
    assert lines_without_timings(tmp_path / "warm") == lines_without_timings(tmp_path / "cold")
    assert all(r.cached for r in iter_records(tmp_path / "warm") if r.parse_status != "invalid")


def test_run_that_saves_images_renders_what_its_directory_lacks(
    tiny_data: Any, tmp_path: Path, fake_openai: Any
) -> None:
    cache = tmp_path / "cache.sqlite"
    run(tiny_data, tmp_path / "a", fake_openai, cache, save_images=True)
    sent = fake_openai.total
    run(tiny_data, tmp_path / "b", fake_openai, cache, save_images=True)
    assert fake_openai.total == sent
    # the saved files carry the policy's extension (JPEG by default for openai-compatible)
    images_a = sorted(p.relative_to(tmp_path / "a").as_posix() for p in (tmp_path / "a" / "images").rglob("*.*"))
    images_b = sorted(p.relative_to(tmp_path / "b").as_posix() for p in (tmp_path / "b" / "images").rglob("*.*"))
    assert images_a and images_a == images_b
    for r in iter_records(tmp_path / "b"):
        for sha in r.image_sha256:
            assert len(list((tmp_path / "b" / "images" / sha[:2]).glob(f"{sha}.*"))) == 1
    assert lines_without_timings(tmp_path / "a") == lines_without_timings(tmp_path / "b")


def test_changed_image_is_rendered_and_asked_again(tiny_data: Any, tmp_path: Path, fake_openai: Any) -> None:
    # lossless, so that one changed source pixel is a changed image on the wire (JPEG q90 may
    # quantise a single pixel away, and then the same sent pixels rightly reuse the answer)
    cache = tmp_path / "cache.sqlite"
    run(tiny_data, tmp_path / "cold", fake_openai, cache, save_images=False, image_format="png")
    sent = fake_openai.total
    before = {r.sample_id: r for r in iter_records(tmp_path / "cold")}
    image = tiny_data.root / tiny_data.task / "images" / "s5_a.png"
    pixels = np.asarray(Image.open(image)).copy()
    pixels[-1, -1] = 255 - pixels[-1, -1]  # one pixel: the fingerprint (names only) cannot see it
    Image.fromarray(pixels).save(image)
    run(tiny_data, tmp_path / "warm", fake_openai, cache, save_images=False, image_format="png")
    assert fake_openai.total == sent + 1  # exactly the sample that shows the changed image
    after = {r.sample_id: r for r in iter_records(tmp_path / "warm")}
    assert after["s5"].image_sha256[0] != before["s5"].image_sha256[0] and not after["s5"].cached
    assert all(after[k].image_sha256 == before[k].image_sha256 for k in before if k != "s5")


def test_changed_style_misses(tiny_data: Any, tmp_path: Path, fake_openai: Any) -> None:
    cache = tmp_path / "cache.sqlite"
    run(tiny_data, tmp_path / "mask", fake_openai, cache, save_images=False)
    sent = fake_openai.total
    run(tiny_data, tmp_path / "contour", fake_openai, cache, save_images=False, style="contour")
    assert fake_openai.total == sent + tiny_data.n_valid
    assert digest_rows(cache) == 2 * tiny_data.n_valid


def test_code_identity_covers_every_module_the_prompt_path_imports() -> None:
    import subprocess
    import sys

    from cvbench.runner.prompt_cache import prompt_code_files

    script = (
        "import sys, cvbench.prompting.build, cvbench.tasks.loading, cvbench.tasks.crossviewbench, "
        "cvbench.tasks.mmvm, cvbench.tasks.registry, cvbench.tasks.slices\n"
        "print('\\n'.join(m.__file__ for n, m in sys.modules.items() "
        "if n.split('.')[0] == 'cvbench' and getattr(m, '__file__', None)))"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    covered = {str(p) for p in prompt_code_files()}
    assert loaded and {str(Path(f).resolve()) for f in loaded} <= covered


def test_partly_warm_cache_asks_only_what_it_lacks(tiny_data: Any, tmp_path: Path, fake_openai: Any) -> None:
    """Half the answers gone from the cache: the rerun serves the rest from the batched look-ups,
    renders and asks only the missing ones, and writes the same records in the same order."""
    cache = tmp_path / "cache.sqlite"
    cold = run(tiny_data, tmp_path / "cold", fake_openai, cache, save_images=False)
    sent = fake_openai.total
    with sqlite3.connect(cache) as db:
        keys = [row[0] for row in db.execute("SELECT key FROM responses ORDER BY key")]
        db.executemany("DELETE FROM responses WHERE key = ?", [(k,) for k in keys[::2]])
    warm = run(tiny_data, tmp_path / "warm", fake_openai, cache, save_images=False)
    assert fake_openai.total - sent == len(keys[::2])
    assert warm.results["overall"] == cold.results["overall"]
    assert lines_without_timings(tmp_path / "warm") == lines_without_timings(tmp_path / "cold")
    cached = [r.cached for r in iter_records(tmp_path / "warm") if r.parse_status != "invalid"]
    assert cached.count(True) == len(keys) - len(keys[::2]) and cached.count(False) == len(keys[::2])


def test_damaged_cached_answer_stops_the_rerun_naming_the_cache(
    tiny_data: Any, tmp_path: Path, fake_openai: Any
) -> None:
    """A response row that no longer decodes is never served as an answer: the batched look-up
    stops the run with an error naming the cache file."""
    cache = tmp_path / "cache.sqlite"
    run(tiny_data, tmp_path / "cold", fake_openai, cache, save_images=False)
    with sqlite3.connect(cache) as db:
        db.execute("UPDATE responses SET response = '{\"text\": ' WHERE rowid = (SELECT MIN(rowid) FROM responses)")
    with pytest.raises(CacheError, match=re.escape(str(cache))) as info:
        run(tiny_data, tmp_path / "warm", fake_openai, cache, save_images=False)
    assert "response cache" in str(info.value)
