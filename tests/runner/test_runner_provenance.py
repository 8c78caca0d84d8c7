from __future__ import annotations

from pathlib import Path
from typing import Any

from cvbench.core.provenance import environment
from cvbench.core.redaction import is_secret_key, redact, redact_argv, secret_values
from cvbench.runner.options import RunOptions
from cvbench.runner.session import Runner


def test_redact_strings_and_dicts() -> None:
    secrets = secret_values(
        {
            "OPENAI_API_KEY": "sk-abcdefghijklmnop",
            "HF_TOKEN": "hf_xyz123456",
            "HOME": "/root",
            "DB_PASSWORD": "hunter22",
        }
    )
    assert "/root" not in secrets and "hunter22" in secrets
    data = {
        "msg": "failed with sk-abcdefghijklmnop and hf_xyz123456",
        "api_key": "anything",
        "max_tokens": 5,
        "nested": [{"Authorization": "Bearer abcdefghijklmnop"}, "token=hf_xyz123456&x=1"],
        "input_tokens": 3,
        "path": "/root/x",
    }
    out = redact(data, secrets)
    text = repr(out)
    for secret in ("sk-abcdefghijklmnop", "hf_xyz123456", "anything", "abcdefghijklmnop"):
        assert secret not in text
    assert out["max_tokens"] == 5 and out["input_tokens"] == 3 and out["path"] == "/root/x"
    assert "api_key" not in out and out["nested"][0] == {}
    assert is_secret_key("OPENAI_API_KEY") and is_secret_key("accessToken") and not is_secret_key("max_tokens")


def test_redact_argv() -> None:
    argv = [
        "cvbench",
        "run",
        "--api-key",
        "sk-abcdefghijklmnop",
        "--token=abc123456",
        "--model",
        "x",
        "--base-url",
        "http://h/v1?api_key=zzzzzzzz",
    ]
    out = redact_argv(argv, [])
    assert out[:4] == ["cvbench", "run", "--api-key", "***"] and out[4] == "--token=***"
    assert "zzzzzzzz" not in " ".join(out) and out[5:7] == ["--model", "x"]


def test_environment_provenance() -> None:
    env = environment()
    assert env["cvbench_version"] and env["python"].count(".") == 2
    assert "numpy" in env["packages"]
    assert env["git"] is None or len(env["git"]["commit"]) == 40


def test_no_secret_reaches_the_run_directory(
    tiny_data: Any, tmp_path: Path, fake_openai: Any, monkeypatch: Any
) -> None:
    secret = "sk-test-ABCDEFGHIJKLMNOPQRSTUV"
    monkeypatch.setenv("CVBENCH_VLLM_API_KEY", secret)
    monkeypatch.setenv("SOME_SERVICE_TOKEN", "tok-0123456789")
    options = RunOptions(
        model="openai-compatible:tiny",
        tasks=(tiny_data.task,),
        data_dir=tiny_data.root,
        out=tmp_path / "run",
        base_urls=(fake_openai.base_url,),
        use_cache=False,
        progress=False,
        argv=("cvbench", "run", "--api-key", secret, "--note", "tok-0123456789"),
        n_resamples=100,
    )
    Runner(options).execute()
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert secret.encode() not in data and b"tok-0123456789" not in data, path
    config = (tmp_path / "run" / "config.json").read_text()
    assert '"command"' in config and "***" in config
