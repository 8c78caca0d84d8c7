"""Costs from a user-given price: per record, per run, refused on a mismatched resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cvbench.cli import cli
from cvbench.core.types import Usage
from cvbench.rundir.format import iter_records
from cvbench.runner.options import ConfigMismatchError, RunOptions
from cvbench.runner.pricing import Price, parse_price, response_cost
from cvbench.runner.progress import usage_line
from cvbench.runner.session import Runner


def test_parse_price_and_cost() -> None:
    assert parse_price("2.5/10") == Price(2.5, 10.0)
    assert parse_price(" $0.15 , $0.6 ") == Price(0.15, 0.6)
    assert Price(2.5, 10).cost(1_000_000, 100_000) == pytest.approx(3.5)
    for bad, message in (
        ("2.5", "expected IN/OUT"),
        ("a/b", "must be numbers"),
        ("1/2/3", "expected IN/OUT"),
        ("-1/2", ">= 0"),
        ("nan/1", "finite"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_price(bad)


def test_a_reported_cost_wins_and_no_price_is_unknown() -> None:
    assert response_cost(Usage(1000, 10, 0.5), Price(1, 1)) == 0.5
    assert response_cost(Usage(1000, 10), None) is None
    assert response_cost(Usage(1000, 10), Price(1, 2)) == pytest.approx(0.00102)


def test_usage_line() -> None:
    usage = {
        "responses": 1200,
        "cached": 300,
        "input_tokens": 1234567,
        "output_tokens": 8900,
        "cost_usd": 3.214,
        "cost_usd_known_part": 3.214,
        "responses_without_cost": 0,
    }
    assert usage_line(usage) == (
        "usage: 1,200 responses (300 cached), 1,234,567 input / 8,900 output tokens, cost $3.21"
    )
    partial = {**usage, "cost_usd": None, "cost_usd_known_part": 1.0, "responses_without_cost": 7}
    assert usage_line(partial).endswith("cost $1.00 for the responses with a known cost (7 without)")
    assert usage_line({**usage, "cost_usd": None, "cost_usd_known_part": None}).endswith("8,900 output tokens")
    assert usage_line({"responses": 0}) is None
    assert (
        usage_line({"responses": 5, "cached": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0})
        == "usage: 5 responses (0 cached), cost $0.00"
    )


def _run(tiny_data: Any, out: Path, fake_openai: Any, price: Price | None) -> Any:
    return Runner(
        RunOptions(
            model="openai-compatible:tiny",
            base_urls=(fake_openai.base_url,),
            tasks=(tiny_data.task,),
            data_dir=tiny_data.root,
            out=out,
            progress=False,
            use_cache=False,
            n_resamples=200,
            price=price,
        )
    ).execute()


def test_priced_run_records_costs_and_refuses_another_price_on_resume(
    tiny_data: Any, tmp_path: Path, fake_openai: Any
) -> None:
    outcome = _run(tiny_data, tmp_path / "run", fake_openai, Price(2.5, 10.0))
    each = (100 * 2.5 + 3 * 10.0) / 1e6  # the fake server reports 100 prompt and 3 completion tokens
    answered = [r for r in iter_records(tmp_path / "run") if r.parse_status not in ("invalid", "error")]
    assert answered and all(r.usage["cost_usd"] == pytest.approx(each) for r in answered)
    assert outcome.results["usage"]["cost_usd"] == pytest.approx(each * len(answered))
    assert outcome.results["usage"]["responses_without_cost"] == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["pricing"] == {"input_usd_per_mtok": 2.5, "output_usd_per_mtok": 10.0}
    with pytest.raises(ConfigMismatchError, match="pricing"):
        _run(tiny_data, tmp_path / "run", fake_openai, Price(3.0, 10.0))

    unpriced = _run(tiny_data, tmp_path / "free", fake_openai, None)
    assert unpriced.results["usage"]["cost_usd"] is None
    assert all(r.usage.get("cost_usd") is None for r in iter_records(tmp_path / "free"))


def test_cli_price_option(tiny_data: Any, tmp_path: Path, fake_openai: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CVBENCH_TASK_DIRS", str(tiny_data.spec_dir))
    args = [
        "run",
        "--model",
        "openai-compatible:tiny",
        "--base-url",
        fake_openai.base_url,
        "--task",
        tiny_data.task,
        "--data-dir",
        str(tiny_data.root),
        "--no-cache",
        "--no-progress",
        "--save-images",
        "none",
    ]
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "a"), "--price", "2.5/ten"])
    assert result.exit_code == 1 and "--price '2.5/ten': both parts must be numbers" in result.output
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "b"), "--price", "2.5/10"])
    assert result.exit_code == 0, result.output
    assert f"usage: {tiny_data.n_valid} responses (0 cached)" in result.output and "cost $0.01" in result.output
