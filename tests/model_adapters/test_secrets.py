"""Keys come from the environment or ./.env only, and never show up in messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from cvbench.model_adapters.secrets import (
    DotenvError,
    find_secret,
    parse_dotenv,
    scrub,
    secret_is_set,
)


def test_parse_dotenv_forms() -> None:
    text = "\n".join([  # noqa: FLY002 - one line per .env form
        "# comment", "", "PLAIN=abc", "export EXPORTED=def", 'DOUBLE="with space # not comment"',
        "SINGLE='lit\\n'", 'ESCAPED="a\\nb\\"c"', "TRAILING=value # comment", "EMPTY=",
    ])
    values = parse_dotenv(text)
    assert values == {"PLAIN": "abc", "EXPORTED": "def", "DOUBLE": "with space # not comment", "SINGLE": "lit\\n",
                      "ESCAPED": 'a\nb"c', "TRAILING": "value", "EMPTY": ""}


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
