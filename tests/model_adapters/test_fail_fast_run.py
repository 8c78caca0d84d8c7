"""`cvbench run` fails fast and loud against loopback provider servers (issue 16 items 1, 4, 5):
the first error of each kind on screen (key redacted), a dead endpoint or a 401 stops the run
after the first requests with what to fix and exit status 3, an error rate above
--max-error-rate fails a finished run, and a reasoning reply that runs out of budget is an
error record, never a scored answer.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cvbench.cli import cli
from cvbench.runner.failfast import EXIT_FAILED
from tests.model_adapters.api_helpers import TEST_KEYS, isolate_keys, small_mmvm_set
from tests.wire import Fault, OpenAIWireServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_mmvm_set(tmp_path_factory, per_cue=3)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    isolate_keys(monkeypatch, tmp_path, OPENAI_API_KEY=TEST_KEYS["OPENAI_API_KEY"])
    monkeypatch.setenv("CVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    yield monkeypatch


def invoke(model: str, data_dir: Path, out: Path, limit: int, *extra: str) -> Any:
    return CliRunner().invoke(
        cli,
        [
            "run",
            "--model",
            model,
            "--task",
            "synth-mmvm",
            "--limit",
            str(limit),
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


def records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines() if line.strip()]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens there any more: connections are refused


def test_a_401_stops_the_run_after_the_first_requests_with_the_error_on_screen(
    env: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path
) -> None:
    key = TEST_KEYS["OPENAI_API_KEY"]
    with OpenAIWireServer() as server:
        server.add_faults(*[Fault(status=401, message=f"Incorrect API key provided: {key}")] * 40)
        env.setenv("OPENAI_BASE_URL", server.base_url())
        result = invoke("openai:gpt-4o", data_dir, tmp_path / "run", 20)
        sent = len(server.requests)
    assert result.exit_code == EXIT_FAILED, result.output
    assert "model error (auth): HTTP 401" in result.output and "Incorrect API key provided: ***" in result.output
    assert result.output.count("model error (auth)") == 1  # the first of its kind, once
    assert "stopped: the first 8 requests all failed (auth)" in result.output and "check the key" in result.output
    assert key not in result.output
    assert 8 <= sent < 20  # stopped: no new samples after the eighth failure (two were in flight)
    kept = records(tmp_path / "run")
    assert len(kept) == sent and all(r["error"]["kind"] == "auth" and r["attempts"] == 1 for r in kept)
    run = json.loads((tmp_path / "run" / "results.json").read_text())["run"]
    assert run["failure"].startswith("stopped: the first 8 requests all failed")


def test_a_dead_endpoint_fails_at_once_instead_of_retrying(
    env: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path
) -> None:
    env.setenv("OPENAI_BASE_URL", closed_port_url())
    result = invoke("openai:gpt-4o", data_dir, tmp_path / "run", 20)
    assert result.exit_code == EXIT_FAILED, result.output
    assert "model error (transport)" in result.output and "cannot connect" in result.output
    assert "the endpoint cannot be reached: check --base-url" in result.output
    kept = records(tmp_path / "run")
    assert 8 <= len(kept) < 20 and all(r["attempts"] == 1 for r in kept)


def test_the_error_rate_decides_the_exit_status_of_a_finished_run(
    env: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path
) -> None:
    with OpenAIWireServer(answer="A") as server:
        env.setenv("OPENAI_BASE_URL", server.base_url())
        server.add_faults(*[Fault(status=400, message="Invalid image")] * 2)  # 2 of 6 samples: 33%
        failed = invoke("openai:gpt-4o", data_dir, tmp_path / "strict", 6)
        server.add_faults(*[Fault(status=400, message="Invalid image")] * 2)
        tolerated = invoke("openai:gpt-4o", data_dir, tmp_path / "lenient", 6, "--max-error-rate", "0.5")
    assert failed.exit_code == EXIT_FAILED and "error rate 33.3% is above --max-error-rate 0.2" in failed.output
    assert "model error (invalid_request): HTTP 400" in failed.output and "Invalid image" in failed.output
    assert tolerated.exit_code == 0, tolerated.output
    results = json.loads((tmp_path / "lenient" / "results.json").read_text())
    assert results["status"] == "partial" and results["run"]["failure"] is None
    assert abs(results["run"]["error_rate"] - 2 / 6) < 1e-9


def test_a_reasoning_reply_out_of_budget_is_an_error_record_never_scored(
    env: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path
) -> None:
    with OpenAIWireServer(answer="A", reasoning_spend=600) as server:
        env.setenv("OPENAI_BASE_URL", server.base_url())
        starved = invoke(
            "openai:o3", data_dir, tmp_path / "starved", 4, "--max-tokens", "50", "--model-option", "reasoning_tokens=0"
        )
        answered = invoke("openai:o3", data_dir, tmp_path / "answered", 4)
    assert starved.exit_code == EXIT_FAILED and "model error (budget_exhausted)" in starved.output
    rows = records(tmp_path / "starved")
    assert len(rows) == 4
    assert all(
        r["parse_status"] == "error"
        and r["error"]["kind"] == "budget_exhausted"
        and r["correct"] is False
        and r["parsed"] is None
        for r in rows
    )
    results = json.loads((tmp_path / "starved" / "results.json").read_text())
    assert results["overall"]["errors"] == 4 and results["overall"]["accuracy"] in (0.0, None)
    assert answered.exit_code == 0, answered.output
    good = records(tmp_path / "answered")
    assert all(r["error"] is None and r["parsed"] == "A" for r in good)
    config = json.loads((tmp_path / "answered" / "config.json").read_text())
    assert config["model_settings"]["reasoning"]["reasoning_tokens"] == 25_000


def test_model_option_false_in_any_case_reaches_the_adapter_as_false(
    env: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path
) -> None:
    with OpenAIWireServer(answer="A") as server:
        env.setenv("OPENAI_BASE_URL", server.base_url())
        result = invoke("openai:gpt-4o", data_dir, tmp_path / "run", 2, "--model-option", "send_temperature=False")
        bad = invoke("openai:gpt-4o", data_dir, tmp_path / "bad", 2, "--model-option", "temprature=0")
    assert result.exit_code == 0, result.output
    assert all("temperature" not in q.settings for q in server.requests)
    assert bad.exit_code == 1 and "unknown model option(s) temprature; valid options:" in bad.output
    assert "send_temperature" in bad.output
