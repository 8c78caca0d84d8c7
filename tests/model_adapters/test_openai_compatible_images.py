"""The image contract of `openai-compatible:` servers: JPEG q90 4:4:4 by default on the wire, PNG
when asked, and the policy in the run's identity and cache keys.

Why JPEG is the default (sources in cvbench/model_adapters/image_policy.py, read in each server's
code): vLLM decodes an `image_url` data URL of any media type with PIL (`MediaConnector.
_load_data_url`, `ImageMediaIO.load_bytes`), SGLang's `load_image` and LMDeploy's `ImageMediaIO`
likewise, TGI's router accepts image/png, image/jpeg, image/gif, image/webp and image/tiff
(`format_from_mimetype`), and llama.cpp's server takes `data:image/...;base64` and decodes it with
stb_image (JPEG, PNG; no WebP). JPEG and PNG are accepted everywhere.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image, JpegImagePlugin

from cvbench.cli import cli
from cvbench.model_adapters import openai_compatible
from cvbench.model_adapters.image_policy import CONTRACTS, contract_for_model, run_image_policy
from cvbench.prompting.encoding import ImagePolicy
from tests.model_adapters.api_helpers import fast_options, isolate_keys, small_mmvm_set
from tests.wire import OpenAIWireServer

pytestmark = pytest.mark.slow

MODEL = "openai-compatible:Qwen/Qwen3-VL-8B-Instruct"
LIMIT = 3


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_mmvm_set(tmp_path_factory)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    isolate_keys(monkeypatch, tmp_path)
    monkeypatch.setenv("CVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CVBENCH_RENDER_STORE", str(tmp_path / "renders.sqlite"))
    yield monkeypatch


def run_cli(data_dir: Path, out: Path, server: OpenAIWireServer, *extra: str) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "--model",
            MODEL,
            "--base-url",
            server.base_url(),
            "--task",
            "synth-mmvm",
            "--limit",
            str(LIMIT),
            "--data-dir",
            str(data_dir),
            "--out",
            str(out),
            "--no-progress",
            "--concurrency",
            "2",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)


def records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines() if line.strip()]


def test_the_contract_defaults_to_jpeg_and_accepts_png() -> None:
    contract = contract_for_model(MODEL)
    assert contract is CONTRACTS["openai-compatible"]
    assert contract.formats == ("image/jpeg", "image/png")
    assert (contract.max_image_bytes, contract.max_request_bytes, contract.max_side) == (None, None, None)
    default = run_image_policy(contract, None, None, None, None)
    assert default == ImagePolicy(format="jpeg", jpeg_quality=90)  # full size: the server's model resizes
    assert run_image_policy(contract, "png", None, None, None) == ImagePolicy(format="png")
    adapter = openai_compatible.make_adapter("m", fast_options(base_urls=("http://127.0.0.1:9/v1",)))
    assert adapter.image_contract is contract


def test_default_run_sends_jpeg_444_q90_and_records_it(env: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path) -> None:
    with OpenAIWireServer(answer="A") as server:
        run_cli(data_dir, tmp_path / "run", server, "--no-cache")
        images = [i for q in server.requests for i in q.images]
    assert images and all(i.mime == "image/jpeg" for i in images)
    for image in images:
        with Image.open(io.BytesIO(image.data)) as decoded:
            assert decoded.format == "JPEG"
            assert JpegImagePlugin.get_sampling(decoded) == 0  # 4:4:4: chroma at full resolution
            # quality 90: the luminance table is libjpeg's standard table scaled to q90
            assert decoded.quantization[0][0] == 3
    rows = records(tmp_path / "run")
    assert sorted(h for r in rows for h in r["image_sha256"]) == sorted(i.identity for i in images)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["image_contract"]["provider"] == "openai-compatible"
    assert '"format": "jpeg"' in json.dumps(config["prompt_settings"], sort_keys=True)


def test_png_is_sent_when_asked(env: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path) -> None:
    with OpenAIWireServer(answer="A") as server:
        run_cli(data_dir, tmp_path / "run", server, "--no-cache", "--image-format", "png")
        images = [i for q in server.requests for i in q.images]
    assert images and all(i.mime == "image/png" and i.data.startswith(b"\x89PNG\r\n\x1a\n") for i in images)
    rows = records(tmp_path / "run")
    assert sorted(h for r in rows for h in r["image_sha256"]) == sorted(i.identity for i in images)


def test_the_image_format_is_part_of_the_cache_keys(env: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path) -> None:
    """A PNG run's cached answers are not served to a JPEG run of the same samples (nor the
    other way round), and a rerun with the same policy is answered from the cache."""
    cache = tmp_path / "responses.sqlite"
    with OpenAIWireServer(answer="A") as server:
        run_cli(data_dir, tmp_path / "png", server, "--cache", str(cache), "--image-format", "png")
        assert len(server.requests) == LIMIT
        run_cli(data_dir, tmp_path / "jpeg", server, "--cache", str(cache))
        assert len(server.requests) == 2 * LIMIT  # nothing from the PNG run was reused
        run_cli(data_dir, tmp_path / "jpeg-again", server, "--cache", str(cache))
        run_cli(data_dir, tmp_path / "png-again", server, "--cache", str(cache), "--image-format", "png")
        assert len(server.requests) == 2 * LIMIT  # each policy's answers serve its own reruns
        mimes = [i.mime for q in server.requests for i in q.images]
    assert set(mimes[: len(mimes) // 2]) == {"image/png"} and set(mimes[len(mimes) // 2 :]) == {"image/jpeg"}
    png_ids = {h for r in records(tmp_path / "png") for h in r["image_sha256"]}
    jpeg_ids = {h for r in records(tmp_path / "jpeg") for h in r["image_sha256"]}
    assert png_ids.isdisjoint(jpeg_ids)
    assert records(tmp_path / "jpeg-again") and all(r["cached"] for r in records(tmp_path / "jpeg-again"))
