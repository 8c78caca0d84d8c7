"""Issue 15 item 5: each option's default and range is declared once and used by `run`, `render`,
`export-lmms` and the Python API alike; bad values fail at parse time with one message."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cvbench.cli import cli
from cvbench.core import options as declared
from cvbench.core.candidates import CandidateSetting, CandidateSettingError, parse_settings, sort_settings
from cvbench.imaging.render import ALL_STYLES
from cvbench.prompting.build import MODES, PromptSettings
from cvbench.runner.options import RunOptions

COMMANDS = {
    "run": ["run"],
    "render": ["render", "--task", "synth-mmvm", "--sample", "x", "--out", "o"],
    "export-lmms": ["export-lmms", "--task", "synth-mmvm", "--out", "o"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--alpha", "0", "--alpha must be in (0, 1], got 0"),
        ("--alpha", "1.5", "--alpha must be in (0, 1], got 1.5"),
        ("--thickness", "0", "--thickness must be >= 1, got 0"),
        ("--seed", "x", "--seed must be a whole number, got 'x'"),
        ("--style", "circle", "--style must be one of upstream, contour, mask, box, marks, got 'circle'"),
        ("--candidates", "5x", "candidate setting '5x' must be 'all' or a whole number"),
        ("--limit", "0", "--limit must be >= 1, got 0"),
    ],
)
def test_bad_values_fail_while_parsing_with_the_declared_range(
    tmp_path, monkeypatch: pytest.MonkeyPatch, command: str, flag: str, value: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    args = COMMANDS[command]
    if flag in ("--alpha", "--thickness") and command == "export-lmms":
        pytest.skip("export-lmms draws with the default overlay only")
    if flag == "--limit" and command == "render":
        pytest.skip("render takes one sample")
    result = CliRunner().invoke(cli, [*args, flag, value], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert not (tmp_path / "o").exists()


def test_render_refuses_a_setting_the_task_does_not_have(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, [*COMMANDS["render"], "--candidates", "5"])
    assert result.exit_code == 1
    assert "task 'synth-mmvm' has no candidate setting 5 (settings: 4, 8, 12, all)" in result.output


def test_the_python_api_checks_through_the_same_declarations() -> None:
    with pytest.raises(ValueError, match=r"--alpha must be in \(0, 1\], got 0"):
        RunOptions(alpha=0.0)
    with pytest.raises(ValueError, match=r"--thickness must be >= 1, got 0"):
        PromptSettings(thickness=0)
    with pytest.raises(ValueError, match="--jpeg-quality must be in"):
        RunOptions(jpeg_quality=101)
    with pytest.raises(ValueError, match="candidate setting 'five'"):
        RunOptions(candidates=("five",))


def test_defaults_come_from_one_declaration() -> None:
    options, settings = RunOptions(), PromptSettings()
    for decl in declared.PROMPT_OPTIONS:
        assert getattr(options, decl.name) == decl.default == getattr(settings, decl.name)
    for decl in (*declared.IMAGE_OPTIONS, declared.CONCURRENCY, declared.MAX_ERROR_RATE, declared.FAIL_FAST):
        assert getattr(options, decl.name) == decl.default, decl.name
    assert set(ALL_STYLES) == set(declared.STYLE.choices)
    assert set(MODES) == set(declared.MODE.choices)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_shows_the_declared_default_and_range(command: str) -> None:
    result = CliRunner().invoke(cli, [COMMANDS[command][0], "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())  # the help wraps at 100 columns
    assert "--seed INTEGER Run seed" in text and "[default: 0]" in text
    if command != "export-lmms":
        assert "(styles mask, marks). (in (0, 1]) [default: 0.4]" in text


def test_candidate_settings_are_one_type_in_one_order() -> None:
    assert parse_settings("all, 12,4,8,4") == tuple(CandidateSetting(n) for n in (4, 8, 12, None))
    assert [str(s) for s in parse_settings("all,4") or ()] == ["4", "all"]
    assert sort_settings(["all", "12", "4", "8"]) == ("4", "8", "12", "all")
    assert parse_settings("") is None and parse_settings(None) is None
    for bad in ("1", "04", "-4", "many"):
        with pytest.raises(CandidateSettingError):
            CandidateSetting.parse(bad)
    assert RunOptions(candidates=("all", "8", "4")).candidates == ("4", "8", "all")
