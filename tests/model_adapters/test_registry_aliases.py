"""Model strings and aliases -> adapters; what can run where, and the advice when nothing can."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cvbench.core.types import ModelAdapter
from cvbench.model_adapters.aliases import (
    AliasFileError,
    alias_for_model_id,
    load_aliases,
)
from cvbench.model_adapters.availability import (
    Environment,
    alias_availability,
    backend_module,
    check_provider,
    choose_backend,
)
from cvbench.model_adapters.registry import (
    PROVIDERS,
    ModelOptions,
    ModelResolutionError,
    recommended_max_tokens,
)
from cvbench.model_adapters.resolve import resolve_model
from tests.model_adapters.api_helpers import TEST_KEYS, isolate_keys, make_request, run
from tests.wire import OpenAIWireServer

ALL_BACKENDS = frozenset(backend_module(p) for p in PROVIDERS.values())


def env(*modules: str, cuda: bool = False, keys: tuple[str, ...] = (), urls: tuple[str, ...] = ()) -> Environment:
    return Environment(
        importable=frozenset(modules) | ALL_BACKENDS, cuda=cuda, keys={k: f"{k} (env)" for k in keys}, base_urls=urls
    )


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    isolate_keys(monkeypatch, tmp_path)


def test_every_required_provider_is_registered() -> None:
    expected = {
        "openai",
        "anthropic",
        "google",
        "openai-compatible",
        "vllm",
        "hf",
        "crossviewer",
        "colva",
        "random",
        "first-option",
        "mask-heuristic",
        "baseline",
    }
    assert expected <= set(PROVIDERS)
    assert PROVIDERS["vllm"].factory == "cvbench.model_adapters.vllm_local:make_adapter"
    assert PROVIDERS["hf"].factory == "cvbench.model_adapters.transformers_local:make_adapter"
    assert PROVIDERS["crossviewer"].factory == "cvbench.model_adapters.crossviewer:make_adapter"
    assert PROVIDERS["colva"].factory == "cvbench.model_adapters.colva:make_adapter"


def test_shipped_aliases_parse_and_carry_metadata() -> None:
    aliases = load_aliases()
    for name in (
        "qwen3-vl-8b",
        "qwen2.5-vl-7b",
        "qwen2.5-vl-72b",
        "internvl3-8b",
        "llava-onevision-7b",
        "gpt-4o",
        "gpt-4.1",
        "claude-sonnet",
        "gemini-pro",
        "gemini-flash",
        "colva-internvl2-4b",
        "crossviewer",
    ):
        assert name in aliases, name
    qwen = aliases["qwen3-vl-8b"]
    assert qwen.hf_repo == "Qwen/Qwen3-VL-8B-Instruct" and qwen.access == "open" and qwen.params_b == 8.0
    assert aliases["gpt-4o"].target == "openai:gpt-4o" and aliases["gpt-4o"].access == "api"
    assert aliases["crossviewer"].access == "native"
    for alias in aliases.values():
        assert alias.max_tokens and alias.display_name
        for spec in alias.backend_specs().values():
            assert spec.partition(":")[0] in PROVIDERS, spec


def test_open_alias_prefers_server_then_vllm_then_transformers() -> None:
    qwen = load_aliases()["qwen3-vl-8b"]
    everything = env("openai", "vllm", "torch", "transformers", cuda=True, urls=("http://h:8000/v1",))
    assert choose_backend(qwen, everything) == "openai-compatible:Qwen/Qwen3-VL-8B-Instruct"
    assert (
        choose_backend(qwen, env("openai", "vllm", "torch", "transformers", cuda=True))
        == "vllm:Qwen/Qwen3-VL-8B-Instruct"
    )
    assert choose_backend(qwen, env("vllm", "torch", "transformers")) == "hf:Qwen/Qwen3-VL-8B-Instruct"  # no GPU
    internvl = load_aliases()["internvl3-8b"]
    assert choose_backend(internvl, env("torch", "transformers")) == "hf:OpenGVLab/InternVL3-8B-hf"


def test_open_alias_that_cannot_run_lists_every_way() -> None:
    with pytest.raises(ModelResolutionError) as info:
        choose_backend(load_aliases()["qwen3-vl-8b"], env())
    message = str(info.value)
    assert "vllm serve Qwen/Qwen3-VL-8B-Instruct" in message and "--base-url" in message
    assert "pip install 'cvbench[vllm]'" in message and "pip install 'cvbench[local]'" in message


def test_api_alias_needs_its_key() -> None:
    gpt = load_aliases()["gpt-4o"]
    with pytest.raises(ModelResolutionError, match="OPENAI_API_KEY"):
        choose_backend(gpt, env("openai"))
    assert choose_backend(gpt, env("openai", keys=("OPENAI_API_KEY",))) == "openai:gpt-4o"
    row = alias_availability(gpt, env(keys=("OPENAI_API_KEY",)))
    assert not row.can_run and any("pip install 'cvbench[openai]'" in f for f in row.fixes)


def test_missing_backend_module_is_reported() -> None:
    problems, _ = check_provider("vllm", Environment(importable=frozenset({"vllm"}), cuda=True))
    assert any("cvbench.model_adapters.vllm_local" in p for p in problems)


def test_resolve_api_alias_sets_display_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEYS["OPENAI_API_KEY"])
    adapter = resolve_model("gpt-4o", ModelOptions())
    assert isinstance(adapter, ModelAdapter)
    assert adapter.info.model_id == "openai:gpt-4o" and adapter.info.display_name == "GPT-4o"
    assert adapter.info.access == "api"
    # the answer budget; thinking gets its own on top, the same for the alias and the provider string
    assert recommended_max_tokens("gemini-pro") == 1024 and recommended_max_tokens("openai:gpt-4o") is None


def test_resolve_open_alias_to_a_served_endpoint() -> None:
    with OpenAIWireServer(answer="A") as server:
        adapter = resolve_model("qwen2.5-vl-7b", ModelOptions(base_urls=(server.base_url(),), max_retries=0))
        assert adapter.info.model_id == "openai-compatible:Qwen/Qwen2.5-VL-7B-Instruct"
        assert adapter.info.display_name == "Qwen2.5-VL-7B-Instruct" and adapter.info.params_b == 7.0
        response = run(adapter.generate(make_request(adapter.info.model_id)))
        assert response.text == "A" and server.requests[0].model == "Qwen/Qwen2.5-VL-7B-Instruct"
        assert alias_for_model_id(adapter.info.model_id).name == "qwen2.5-vl-7b"  # type: ignore[union-attr]


def test_resolve_open_alias_via_env_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CVBENCH_VLLM_URL", "http://127.0.0.1:9/v1")
    adapter = resolve_model("internvl3-8b", ModelOptions())
    assert adapter.info.model_id == "openai-compatible:OpenGVLab/InternVL3-8B"


def test_baselines_by_bare_name_and_prefix() -> None:
    assert resolve_model("random", ModelOptions()).info.model_id == "baseline:random"
    assert resolve_model("baseline:first-option", ModelOptions()).info.model_id == "baseline:first-option"
    with pytest.raises(ModelResolutionError, match="random, first-option, mask-heuristic"):
        resolve_model("baseline:oracle", ModelOptions())


@pytest.mark.parametrize(
    "spec,pattern",
    [
        ("nonsense:model", "unknown model 'nonsense:model'.*known providers"),
        ("openai:", "needs a model name"),
        ("", "empty model string"),
        ("gpt4o", "no provider 'gpt4o'"),
    ],
)
def test_resolution_errors_say_what_to_do(spec: str, pattern: str) -> None:
    with pytest.raises(ModelResolutionError, match=pattern):
        resolve_model(spec, ModelOptions())


def test_provider_model_string_with_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelResolutionError, match="ANTHROPIC_API_KEY"):
        resolve_model("anthropic:claude-sonnet-4-6", ModelOptions())


def test_alias_file_errors_name_file_alias_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "aliases.toml"
    bad.write_text('[m1]\naccess = "closed"\n')
    with pytest.raises(AliasFileError, match=r"aliases.toml: \[m1\] access must be one of"):
        load_aliases(bad)
    bad.write_text('[m2]\naccess = "open"\n')
    with pytest.raises(AliasFileError, match=r"\[m2\] an open alias needs hf_repo"):
        load_aliases(bad)
    bad.write_text('[m3]\naccess = "api"\ntarget = "openai:x"\nparams = 3\n')
    with pytest.raises(AliasFileError, match=r"\[m3\] unknown field\(s\) params"):
        load_aliases(bad)
    bad.write_text('[m4]\naccess = "api"\ntarget = "openai:x"\nmax_tokens = "many"\n')
    with pytest.raises(AliasFileError, match=r"\[m4\] max_tokens must be int"):
        load_aliases(bad)


def test_broken_dotenv_is_a_resolution_error_naming_the_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-x\nthis line is wrong\n")
    with pytest.raises(ModelResolutionError, match=r"\.env:2: expected NAME=value"):
        resolve_model("openai:gpt-4o", ModelOptions())


def test_an_alias_and_its_provider_string_get_the_same_reasoning_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    from cvbench.runner.options import RunOptions, effective_max_tokens

    monkeypatch.setenv("GEMINI_API_KEY", TEST_KEYS["GEMINI_API_KEY"])
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEYS["OPENAI_API_KEY"])
    for alias, target in (("gemini-pro", "google:gemini-2.5-pro"), ("gemini-flash", "google:gemini-2.5-flash")):
        by_alias, by_target = resolve_model(alias, ModelOptions()), resolve_model(target, ModelOptions())
        assert dict(by_alias.settings()) == dict(by_target.settings())
        assert by_alias.settings()["reasoning"]["enabled"] is True
        assert effective_max_tokens(RunOptions(model=alias)) == effective_max_tokens(RunOptions(model=target))


def test_reasoning_aliases_carry_their_recorded_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_KEYS["ANTHROPIC_API_KEY"])
    thinking = resolve_model("claude-sonnet-thinking", ModelOptions())
    assert thinking.settings()["reasoning"] == {
        "enabled": True,
        "reasoning_tokens": 8192,
        "effort": None,
        "thinking_budget": 8192,
    }
    assert thinking.settings()["send_temperature"] is False
    own = resolve_model("claude-sonnet-thinking", ModelOptions(extra={"thinking_budget": "4096"}))
    assert own.settings()["reasoning"]["thinking_budget"] == 4096  # --model-option wins over the alias
    assert resolve_model("claude-sonnet", ModelOptions()).settings()["reasoning"]["enabled"] is False


def test_models_listing_shows_reasoning_and_image_policy() -> None:
    import json

    from cvbench.model_adapters.availability import models_json

    aliases = {a["name"]: a for a in json.loads(models_json())["aliases"]}
    assert aliases["gpt-5"]["metadata"]["reasoning"] == "effort medium, +25000 tokens"
    assert aliases["o3"]["metadata"]["reasoning"].startswith("effort medium")
    assert aliases["claude-sonnet-thinking"]["metadata"]["reasoning"] == "thinking, budget 8192 tokens"
    assert aliases["gemini-3-pro"]["metadata"]["reasoning"].startswith("thinking level high")
    assert aliases["gpt-4o"]["metadata"].get("reasoning") is None
    assert "5 MiB base64/image" in aliases["claude-sonnet"]["metadata"]["image_contract"]
    assert "sent at long side 1568 px / 1.15 MP" in aliases["claude-sonnet"]["metadata"]["image_contract"]
    assert "<= 20 MB base64/request" in aliases["gemini-pro"]["metadata"]["image_contract"]
