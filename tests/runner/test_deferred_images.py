"""In-process models get pixels, not an encode/decode round trip: a deferred image has the
identity and (when asked for) the bytes of the eagerly encoded one, and a run with an in-process
model records the same image identities as prompts built with encoding."""

from __future__ import annotations

import contextlib
import io
import json
import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cvbench.core.types import Capabilities, Sample
from cvbench.model_adapters.local_common import decode_prompt_image
from cvbench.prompting.build import PromptError, PromptSettings, build_prompt
from cvbench.prompting.encoding import ImagePolicy, encode_image, identity_of_bytes
from cvbench.runner.execution import deferred_encoding
from cvbench.runner.options import RunOptions
from cvbench.runner.prompt_pool import build_or_fetch
from cvbench.runner.render_store import RenderStore
from cvbench.runner.session import Runner
from cvbench.tasks.loading import iter_task_samples
from cvbench.tasks.registry import get_task


def picture(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, 48 * 64 * 3).reshape(48, 64, 3)
    return np.clip(base + rng.integers(0, 40, base.shape), 0, 255).astype(np.uint8)


def test_a_deferred_image_has_the_eager_identity_and_bytes() -> None:
    rgb = picture()
    eager = encode_image(rgb, ImagePolicy(), "Image 1")
    lazy = encode_image(rgb, ImagePolicy(defer_encoding=True), "Image 1")
    assert not lazy.encoded and eager.encoded
    assert lazy.sha256 == eager.sha256 and (lazy.width, lazy.height, lazy.mime) == (64, 48, "image/png")
    assert lazy.pixels is not None and np.array_equal(lazy.pixels, rgb)
    assert not lazy.encoded  # the identity and the pixels needed no bytes
    assert lazy.data == eager.data and lazy.encoded  # encoded on first use, once
    assert identity_of_bytes(lazy.data) == lazy.sha256
    assert eager.pixels is None


def test_the_policy_flag_is_not_part_of_the_recorded_policy() -> None:
    assert ImagePolicy(defer_encoding=True) == ImagePolicy()
    assert ImagePolicy(defer_encoding=True).as_dict() == ImagePolicy().as_dict()


def test_jpeg_is_never_deferred() -> None:
    # a lossy format's pixels are those decoded from the bytes: they exist only after encoding
    image = encode_image(picture(), ImagePolicy(format="jpeg", defer_encoding=True), "Image 1")
    assert image.encoded and image.pixels is None


def test_a_local_model_reads_the_pixels_that_the_bytes_decode_to() -> None:
    lazy = encode_image(picture(3), ImagePolicy(defer_encoding=True), "Image 1")
    pil = decode_prompt_image(lazy)
    assert not lazy.encoded
    with Image.open(io.BytesIO(encode_image(picture(3), ImagePolicy(), "x").data)) as decoded:
        assert np.array_equal(np.asarray(pil), np.asarray(decoded.convert("RGB")))


def test_a_deferred_image_survives_pickling_and_equality() -> None:
    lazy = encode_image(picture(1), ImagePolicy(defer_encoding=True), "Image 1")
    copy = pickle.loads(pickle.dumps(lazy))
    assert copy.sha256 == lazy.sha256 and copy.data == encode_image(picture(1), ImagePolicy(), "Image 1").data
    assert copy == lazy


def test_deferred_prompts_skip_the_render_store_and_keep_their_digest(tiny_data: Any, tmp_path: Path) -> None:
    spec = get_task(tiny_data.task)
    sample = next(s for s in iter_task_samples(spec, tiny_data.root) if isinstance(s, Sample))
    caps = Capabilities(max_images=None)
    eager = build_prompt(sample, PromptSettings(), caps)
    settings = deferred_encoding(PromptSettings())
    store = RenderStore(tmp_path / "r.sqlite")
    built = build_or_fetch(lambda: build_prompt(sample, settings, caps), "k", store, lambda p: {})
    assert built.prompt.images and not any(i.encoded for i in built.prompt.images)
    assert built.prompt.prompt.content_digest() == eager.prompt.content_digest()
    assert store.get("k") is None  # not encoded just to be stored


def test_a_run_with_an_in_process_model_records_the_eager_identities(tiny_data: Any, tmp_path: Path) -> None:
    out = tmp_path / "run"
    options = RunOptions(
        tasks=(tiny_data.task,),
        data_dir=tiny_data.root,
        out=out,
        progress=False,
        n_resamples=200,
        model="random",
        use_cache=False,
        save_images=True,
    )
    assert Runner(options).execute().status == "complete"
    spec = get_task(tiny_data.task)
    caps = Capabilities(max_images=None)
    expected: dict[str, list[str]] = {}
    for s in iter_task_samples(spec, tiny_data.root):
        if isinstance(s, Sample):
            with contextlib.suppress(PromptError):  # the tiny set's broken samples: invalid records either way
                expected[s.sample_id] = [i.sha256 for i in build_prompt(s, PromptSettings(), caps).prompt.images]
    records = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    seen = {r["sample_id"]: r["image_sha256"] for r in records if r.get("image_sha256")}
    assert seen and all(seen[k] == expected[k] for k in seen)
    # saved images are encoded on demand: the files hold the bytes eager encoding gives
    saved = sorted(p for p in out.rglob("*.png"))
    assert saved
    for path in saved[:3]:
        assert identity_of_bytes(path.read_bytes()) in {h for hs in expected.values() for h in hs}


def test_replace_on_a_deferred_image_gives_a_plain_image() -> None:
    lazy = encode_image(picture(2), ImagePolicy(defer_encoding=True), "Image 1")
    moved = replace(lazy, label="Image 2")
    assert moved.encoded and moved.data == lazy.data and moved.label == "Image 2"
