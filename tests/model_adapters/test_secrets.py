"""Keys come from the environment or ./.env only, and never show up in messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from cvbench.core.redaction import scrub
from cvbench.core.secrets import (
    DotenvError,
    find_secret,
    parse_dotenv,
    secret_is_set,
)


def test_parse_dotenv_forms() -> None:
    text = "\n".join(
        [
            "# comment",
            "",
            "PLAIN=abc",
            "export EXPORTED=def",
            'DOUBLE="with space # not comment"',
            "SINGLE='lit\\n'",
            'ESCAPED="a\\nb\\"c"',
            "TRAILING=value # comment",
            "EMPTY=",
        ]
    )
    values = parse_dotenv(text)
    assert values == {
        "PLAIN": "abc",
        "EXPORTED": "def",
        "DOUBLE": "with space # not comment",
        "SINGLE": "lit\\n",
        "ESCAPED": 'a\nb"c',
        "TRAILING": "value",
        "EMPTY": "",
    }


def test_parse_dotenv_errors_name_the_line() -> None:
    with pytest.raises(DotenvError, match=r"\.env:2: expected NAME=value"):
        parse_dotenv("A=1\nnot a pair\n")
    with pytest.raises(DotenvError, match=r"x/.env:1: unterminated"):
        parse_dotenv('KEY="open', source="x/.env")


def test_environment_wins_over_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("OPENAI_API_KEY=from-file-123456\nGOOGLE_API_KEY=g-from-file-123456\n")
    env = {"OPENAI_API_KEY": "from-env-123456"}
    secret = find_secret(("OPENAI_API_KEY",), env, tmp_path)
    assert secret is not None and secret.value == "from-env-123456" and secret.origin == "env"
    google = find_secret(("GEMINI_API_KEY", "GOOGLE_API_KEY"), env, tmp_path)
    assert google is not None and google.name == "GOOGLE_API_KEY" and google.origin == ".env"
    assert "g-from-file" not in repr(google) and "g-from-file" not in str(google)
    assert find_secret(("ANTHROPIC_API_KEY",), env, tmp_path) is None
    assert secret_is_set(("GOOGLE_API_KEY",), env, tmp_path) == "GOOGLE_API_KEY (.env)"


def test_blank_values_do_not_count(tmp_path: Path) -> None:
    assert find_secret(("OPENAI_API_KEY",), {"OPENAI_API_KEY": "  "}, tmp_path) is None


def test_scrub_removes_read_keys_and_token_shapes(tmp_path: Path) -> None:
    secret = find_secret(("MY_SERVICE_KEY",), {"MY_SERVICE_KEY": "plainvalue-not-shaped"}, tmp_path)
    assert secret is not None
    text = scrub("got plainvalue-not-shaped and Bearer abcdefgh12345678 and ?key=AIzaSyAbcdefghijklmnopqrstuvwx&x=1")
    assert "plainvalue-not-shaped" not in text
    assert "abcdefgh12345678" not in text
    assert "AIzaSyAbcdefghijklmnopqrstuvwx" not in text
    assert "&x=1" in text


def test_the_source_of_the_key_is_announced_never_its_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".env").write_text("CVBENCH_VLLM_API_KEY=from-file-abcdef\n")
    secret = find_secret(("CVBENCH_VLLM_API_KEY", "OPENAI_API_KEY"), {"OPENAI_API_KEY": "from-env-abcdef"}, tmp_path)
    assert secret is not None and secret.name == "OPENAI_API_KEY" and secret.origin == "env"
    err = capsys.readouterr().err
    assert err.strip() == (
        f"cvbench: API key from $OPENAI_API_KEY in the environment (CVBENCH_VLLM_API_KEY in "
        f"{tmp_path / '.env'} not used: the environment wins over .env)"
    )
    secret = find_secret(("CVBENCH_VLLM_API_KEY", "OPENAI_API_KEY"), {}, tmp_path)
    assert secret is not None and secret.origin == ".env"
    err = capsys.readouterr().err
    assert err.strip() == f"cvbench: API key from $CVBENCH_VLLM_API_KEY in {tmp_path / '.env'}"
    assert "from-file" not in err and "from-env" not in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://user:pw-SECRET@host:8000/v1", "http://***@host:8000/v1"),
        ("https://TOKENONLY@host/v1", "https://***@host/v1"),
        ("http://u:pa/ss@host/v1", "http://***@host/v1"),
        (
            "http://h/v1?api-version=2024-01-01&sig=S1&client_secret=S2&X-Amz-Signature=S3",
            "http://h/v1?api-version=2024-01-01&sig=***&client_secret=***&X-Amz-Signature=***",
        ),
        ("no route POST /v1/?page=2&access_token=S4chat/completions", "no route POST /v1/?page=2&access_token=***"),
        ("see http://host/v1 for details", "see http://host/v1 for details"),
    ],
)
def test_urls_lose_userinfo_and_credential_query_values(text: str, expected: str) -> None:
    from cvbench.core.redaction import redact

    assert redact(text, []) == expected


def test_header_options_keep_names_and_lose_values() -> None:
    from cvbench.core.redaction import redact, redact_argv

    assert redact({"extra_headers": {"X-Trace": "v1", "X-Custom-Auth": "HV"}, "max_tokens": 5}, []) == {
        "extra_headers": {"X-Trace": "***", "X-Custom-Auth": "***"},
        "max_tokens": 5,
    }
    argv = [
        "cvbench",
        "run",
        "--model-option",
        'extra_headers={"X-A": "HV"}',
        "--model-option=default_headers=HV",
        "--model-option",
        "display_name=mine",
        "--base-url",
        "http://u:pw@h/v1",
    ]
    assert redact_argv(argv, []) == [
        "cvbench",
        "run",
        "--model-option",
        "extra_headers=***",
        "--model-option=default_headers=***",
        "--model-option",
        "display_name=mine",
        "--base-url",
        "http://***@h/v1",
    ]
