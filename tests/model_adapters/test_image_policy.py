"""Provider image contracts (cvbench/model_adapters/image_policy.py): 1920x1080 four-view
CrossViewBench samples reach a loopback Anthropic server that enforces the documented image
limits (tests/wire/anthropic_wire.py: 5 MB base64 per image, 8000 / 2000 px per side, 32 MB per
request) and are answered; the images sent are the provider's effective size; a request that
cannot fit is a clear error before any call.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cvbench.cli import cli
from cvbench.core.types import Option, Prompt, RenderedPrompt
from cvbench.model_adapters import anthropic_api
from cvbench.model_adapters.image_policy import (
    CONTRACTS,
    ImageContract,
    ImagePolicyError,
    fit_prompt,
    run_image_policy,
)
from cvbench.prompting.encoding import ImagePolicy, encode_image
from tests.model_adapters.api_helpers import (
    TEST_KEYS,
    generate_once,
    isolate_keys,
    make_request,
)
from tests.tasks.builders import cvb_object, write_jsonl
from tests.wire import AnthropicWireServer

H, W = 1080, 1920


def noisy_rgb(seed: int, h: int = H, w: int = W) -> np.ndarray:
    """Camera-like content: smooth gradients plus sensor noise (pure noise would be a worst case
    no real view reaches)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // w), (y * 255 // h), ((x + y) * 255 // (w + h))], axis=-1)
    return np.clip(base + rng.normal(0, 12, size=(h, w, 3)), 0, 255).astype(np.uint8)


def write_cvb_1080p(root: Path, n_samples: int) -> Path:
    folder = root / "crossviewbench"
    views = []
    for v in range(4):
        path = folder / "images" / f"cam{v}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(noisy_rgb(v)).save(path)
        views.append(f"images/cam{v}.png")
    records = []
    for i in range(n_samples):
        records.append(
            {
                "sample_id": f"s{i}",
                "question_type": "Q1",
                "question": "Which object in the other views is <region>?",
                "options": ["A. the left one", "B. the right one"],
                "answer": "A",
                "region_refs": [[0, 0]],
                "views": [
                    {
                        "view_id": f"cam{v}",
                        "image_path": views[v],
                        "objects": [
                            cvb_object(200, 200, 700, 800, track_id=f"t{v}a", h=H, w=W),
                            cvb_object(1000, 300, 1700, 900, track_id=f"t{v}b", h=H, w=W),
                        ],
                    }
                    for v in range(4)
                ],
                "dataset": "EgoHumans",
                "scene": f"scene_{i}",
            }
        )
    write_jsonl(folder / "crossviewbench.jsonl", records)
    return root


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_keys(monkeypatch, tmp_path, ANTHROPIC_API_KEY=TEST_KEYS["ANTHROPIC_API_KEY"])
    monkeypatch.setenv("CVBENCH_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.slow
def test_1080p_four_view_samples_reach_anthropic_within_its_limits(
    keys: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_cvb_1080p(tmp_path / "data", 2)
    with AnthropicWireServer(answer="A") as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        result = CliRunner().invoke(
            cli,
            [
                "run",
                "--model",
                "anthropic:claude-sonnet-4-6",
                "--task",
                "crossviewbench",
                "--data-dir",
                str(data),
                "--out",
                str(tmp_path / "run"),
                "--no-cache",
                "--no-progress",
            ],
        )
        received = server.requests
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["error"] is None and r["parsed"] == "A" for r in rows)
    assert len(received) == 2 and all(q.fault is None for q in received)
    for request in received:
        assert len(request.images) == 4
        for image in request.images:
            w, h = Image.open(io.BytesIO(image.data)).size
            assert image.mime == "image/jpeg" and max(w, h) <= 1568 and w * h <= 1_150_000  # Anthropic's own size
            assert len(base64.b64encode(image.data)) <= 5 * 1024 * 1024
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["image_contract"]["max_image_bytes"] == 5 * 1024 * 1024
    assert '"format": "jpeg"' in json.dumps(config)  # the run's image policy, recorded


def test_the_wire_server_refuses_a_full_size_png_the_way_the_api_does(keys: None) -> None:
    # what cvbench sent before image policies: the full 1080p noisy PNG, ~4.3 MB raw, over 5 MB in base64
    noisy = np.random.default_rng(0).integers(0, 255, size=(H, W, 3), dtype=np.uint8)
    big = encode_image(noisy, ImagePolicy(format="png"), "Image 1")
    prompt = Prompt(
        sample_id="s0",
        text="Which?",
        images=(big,),
        options=(Option("A", "1"), Option("B", "2")),
        mode="overlay",
    )
    with AnthropicWireServer() as server:
        response, _ = generate_once(
            anthropic_api.make_adapter,
            "claude-sonnet-4-6",
            server.url,
            make_request("anthropic:claude-sonnet-4-6", prompt),
        )
    assert response.error is not None and response.error.kind == "invalid_request" and response.attempts == 1
    assert "image exceeds 5 MB maximum" in response.error.message
    fitted = fit_prompt(
        RenderedPrompt(prompt, "A"), CONTRACTS["anthropic"], ImagePolicy(format="png")
    )  # lossless: made smaller instead
    assert len(base64.b64encode(fitted.images[0].data)) <= 5 * 1024 * 1024 and fitted.images[0].mime == "image/png"
    assert fitted.images[0].width < W


def test_more_than_20_images_are_fitted_to_2000_px() -> None:
    image = encode_image(noisy_rgb(1, 600, 2400), ImagePolicy(format="jpeg"), "v")
    prompt = Prompt(
        sample_id="many",
        text="t",
        images=(image,) * 21,
        options=(Option("A", "1"),),
        mode="overlay",
    )
    rendered = RenderedPrompt(prompt, "A", {"images": [{"label": "v", "sha256": image.sha256}] * 21})
    fitted = fit_prompt(rendered, CONTRACTS["anthropic"], ImagePolicy(format="jpeg"))
    assert all(max(i.width, i.height) == 2000 for i in fitted.images)
    assert fitted.protocol["images"][0]["sha256"] == fitted.images[0].sha256  # the record follows the bytes
    few = fit_prompt(replace_images(rendered, 20), CONTRACTS["anthropic"], ImagePolicy(format="jpeg"))
    assert all(max(i.width, i.height) == 2400 for i in few.images)


def replace_images(rendered: RenderedPrompt, n: int) -> RenderedPrompt:
    from dataclasses import replace

    return RenderedPrompt(replace(rendered.prompt, images=rendered.images[:n]), rendered.answer, {})


def test_a_request_that_cannot_fit_names_the_sample_and_the_limit() -> None:
    tiny = ImageContract(provider="tiny", formats=("image/png",), max_request_bytes=1000, counts_base64=True)
    image = encode_image(noisy_rgb(2, 64, 64), ImagePolicy(format="png"), "Image 1")
    prompt = Prompt(sample_id="cvb-42", text="t", images=(image, image), options=(Option("A", "1"),), mode="overlay")
    with pytest.raises(
        ImagePolicyError,
        match=r"sample cvb-42: 2 images take [\d,]+ bytes \(base64\), over tiny's "
        r"limit of 1,000 per request",
    ):
        fit_prompt(RenderedPrompt(prompt, "A"), tiny, ImagePolicy(format="png"))
    with pytest.raises(ImagePolicyError, match="does not accept image/jpeg"):
        run_image_policy(tiny, "jpeg", None, None, None)


def test_run_policy_defaults_and_user_choices() -> None:
    anthropic = run_image_policy(CONTRACTS["anthropic"], None, None, None, None)
    assert (anthropic.format, anthropic.jpeg_quality, anthropic.max_side, anthropic.max_pixels) == (
        "jpeg",
        90,
        1568,
        1_150_000,
    )
    lossless = run_image_policy(CONTRACTS["anthropic"], "png", None, 1024, None)
    assert (lossless.format, lossless.max_side, lossless.max_pixels) == ("png", 1024, 1_150_000)
    assert run_image_policy(CONTRACTS["openai"], None, None, None, None).max_side == 2048
    assert run_image_policy(None, None, None, None, None) == ImagePolicy()  # local models: unchanged (png)


def test_gemini_server_refuses_over_20_mb_inline_and_the_policy_keeps_requests_under_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from cvbench.model_adapters import google_api
    from tests.wire import GoogleWireServer

    isolate_keys(monkeypatch, tmp_path, GEMINI_API_KEY=TEST_KEYS["GEMINI_API_KEY"])
    noisy = np.random.default_rng(3).integers(0, 255, size=(H, W, 3), dtype=np.uint8)
    png = encode_image(noisy, ImagePolicy(format="png"), "view")  # ~6.4 MB in base64: four are over 20 MB
    prompt = Prompt(sample_id="g4", text="Which?", images=(png,) * 4, options=(Option("A", "1"),), mode="overlay")
    with GoogleWireServer() as server:
        response, _ = generate_once(
            google_api.make_adapter, "gemini-2.5-flash", server.url, make_request("google:gemini-2.5-flash", prompt)
        )
    assert response.error is not None and response.error.kind == "invalid_request"
    assert "Request payload size exceeds the limit" in response.error.message
    with pytest.raises(
        ImagePolicyError, match=r"sample g4: 4 images take [\d,]+ bytes \(base64\), over google's limit"
    ):
        fit_prompt(RenderedPrompt(prompt, "A"), CONTRACTS["google"], ImagePolicy(format="png"))
    jpeg = encode_image(noisy_rgb(3), run_image_policy(CONTRACTS["google"], None, None, None, None), "view")
    fitted = fit_prompt(
        RenderedPrompt(dataclasses.replace(prompt, images=(jpeg,) * 4), "A"),
        CONTRACTS["google"],
        ImagePolicy(format="jpeg"),
    )
    assert sum(len(base64.b64encode(i.data)) for i in fitted.images) <= 20 * 1000 * 1000
