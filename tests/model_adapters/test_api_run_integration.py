"""`cvbench run` end to end against the loopback provider servers: every image reaches the model.

The synthetic MMVM set is generated small (one case per cue) into a temporary data folder,
then `cvbench run --model <provider>:<model> --task synth-mmvm --limit 5` runs in-process with
the SDKs pointed at the wire servers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cvbench.cli import cli
from tests.model_adapters.api_helpers import TEST_KEYS, isolate_keys, small_mmvm_set
from tests.wire import (
    AnthropicWireServer,
    Fault,
    GoogleWireServer,
    OpenAIWireServer,
    WireServer,
)

pytestmark = pytest.mark.slow

LIMIT = 5


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_mmvm_set(tmp_path_factory)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    isolate_keys(monkeypatch, tmp_path)
    monkeypatch.setenv("CVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    yield monkeypatch


def run_cli(model: str, data_dir: Path, out: Path, *extra: str) -> Any:
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "--model",
            model,
            "--task",
            "synth-mmvm",
            "--limit",
            str(LIMIT),
            "--data-dir",
            str(data_dir),
            "--out",
            str(out),
            "--no-cache",
            "--no-progress",
            "--concurrency",
            "2",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines() if line.strip()]


def assert_server_saw_every_image(server: WireServer, out: Path) -> list[dict[str, Any]]:
    rows = records(out)
    assert len(rows) == LIMIT
    assert all(r["error"] is None and r["parse_status"] in ("parsed", "logprob") for r in rows), rows
    answered = [q for q in server.requests if q.fault is None]
    assert len(answered) == LIMIT
    sent = sorted(h for r in rows for h in r["image_sha256"])
    received = sorted(i.identity for q in answered for i in q.images)
    assert sent and received == sent  # the exact pixels of every image, nothing else
    by_images = {tuple(i.identity for i in q.images): q for q in answered}
    for row in rows:
        request = by_images[tuple(row["image_sha256"])]  # same images, in the same order
        assert request.text.startswith(row["prompt_text"])  # logprob mode appends an instruction
        assert request.parts[-1] == "text" and set(request.parts[:-1]) == {"image"}
    config_text = (out / "config.json").read_text()
    for key in TEST_KEYS.values():
        assert key not in config_text and key not in (out / "samples.jsonl").read_text()
    return rows


def test_run_openai_with_a_rate_limit(env: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path) -> None:
    env.setenv("OPENAI_API_KEY", TEST_KEYS["OPENAI_API_KEY"])
    with OpenAIWireServer(answer="The answer is A.") as server:
        server.add_faults(Fault(status=429, retry_after="1"))
        env.setenv("OPENAI_BASE_URL", server.base_url())
        run_cli("openai:gpt-4o", data_dir, tmp_path / "run")
        rows = assert_server_saw_every_image(server, tmp_path / "run")
    assert sorted(r["attempts"] for r in rows) == [1, 1, 1, 1, 2]
    assert all(r["response"] == "The answer is A." and r["parsed"] == "A" for r in rows)
    assert all(i.detail == "high" for q in server.requests for i in q.images)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model_settings"]["image_detail"] == "high"
    assert config["model"]["info"]["display_name"] == "GPT-4o"


def test_run_anthropic(env: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path) -> None:
    env.setenv("ANTHROPIC_API_KEY", TEST_KEYS["ANTHROPIC_API_KEY"])
    with AnthropicWireServer(answer="B") as server:
        env.setenv("ANTHROPIC_BASE_URL", server.url)
        run_cli("anthropic:claude-sonnet-4-6", data_dir, tmp_path / "run")
        rows = assert_server_saw_every_image(server, tmp_path / "run")
    assert all(r["parsed"] == "B" for r in rows)


def test_run_google(env: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path) -> None:
    env.setenv("GEMINI_API_KEY", TEST_KEYS["GEMINI_API_KEY"])
    with GoogleWireServer(answer="(C)") as server:
        server.add_faults(Fault(status=503))
        env.setenv("CVBENCH_GOOGLE_BASE_URL", server.url)
        run_cli("google:gemini-2.5-flash", data_dir, tmp_path / "run")
        rows = assert_server_saw_every_image(server, tmp_path / "run")
    assert all(r["parsed"] == "C" for r in rows)


def test_run_openai_compatible_two_endpoints_with_logprobs(
    env: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path
) -> None:
    top = {"B": -0.2, " A": -1.9, "C": -3.0}
    with OpenAIWireServer(top_logprobs=top) as one, OpenAIWireServer(top_logprobs=top) as two:
        run_cli(
            "openai-compatible:Qwen/Qwen3-VL-8B-Instruct",
            data_dir,
            tmp_path / "run",
            "--base-url",
            one.base_url(),
            "--base-url",
            two.base_url(),
            "--option-logprobs",
        )
        rows = records(tmp_path / "run")
        assert len(one.requests) >= 1 and len(two.requests) >= 1
        assert len(one.requests) + len(two.requests) == LIMIT
        sent = sorted(h for r in rows for h in r["image_sha256"])
        received = sorted(i.identity for s in (one, two) for q in s.requests for i in q.images)
        assert received == sent
        assert all(
            q.settings["logprobs"] is True and q.settings["max_tokens"] == 1 for s in (one, two) for q in s.requests
        )
    assert all(r["error"] is None for r in rows)
    assert all(r["option_scores"] and r["option_scores"]["B"] == -0.2 for r in rows)


def test_model_options_and_alias_max_tokens_reach_the_server(
    env: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path
) -> None:
    from cvbench.model_adapters.registry import recommended_max_tokens

    env.setenv("OPENAI_API_KEY", TEST_KEYS["OPENAI_API_KEY"])
    with OpenAIWireServer(answer="A") as server:
        env.setenv("OPENAI_BASE_URL", server.base_url())
        run_cli("gpt-4o", data_dir, tmp_path / "run", "--model-option", "image_detail=low")
        assert_server_saw_every_image(server, tmp_path / "run")
    assert all(i.detail == "low" for q in server.requests for i in q.images)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model_settings"]["image_detail"] == "low"
    expected = recommended_max_tokens("gpt-4o") or 1024
    assert {q.settings.get("max_tokens") or q.settings.get("max_completion_tokens") for q in server.requests} == {
        expected
    }


def test_a_bad_model_option_is_a_clear_error(env: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "--model",
            "random",
            "--task",
            "synth-mmvm",
            "--data-dir",
            str(data_dir),
            "--out",
            str(tmp_path / "run"),
            "--model-option",
            "no-equals-sign",
        ],
    )
    assert result.exit_code != 0 and "expected KEY=VALUE" in result.output
