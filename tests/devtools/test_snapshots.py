"""Prompt snapshots: the exact text and image bytes per protocol and mode must not drift unseen.

`test_prompts_match_committed_snapshots` renders the fixed synthetic samples in every case and
compares with tests/golden/prompts/. To accept a change on purpose:
`cvbench regress --suite prompts --update`, or `CVBENCH_UPDATE_GOLDEN=1 python -m pytest ...`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cvbench.cli import cli
from cvbench.devtools import regress as R
from cvbench.devtools import snapshots as S
from cvbench.tasks.loading import iter_task_samples
from cvbench.tasks.registry import get_task

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # one copy per pytest session (test_regress.py uses the same folder; a marker file guards reuse)
    return R.generate_suite_data(tmp_path_factory.getbasetemp() / "cvbench-suite" / "ci" / "data")


@pytest.fixture(scope="module")
def snapshots(data_root: Path) -> dict[str, dict[str, Any]]:
    return S.build_snapshots(data_root)


@pytest.mark.slow
def test_prompts_match_committed_snapshots(snapshots: dict[str, dict[str, Any]]) -> None:
    result = R.compare_or_update("prompts", GOLDEN / "prompts", snapshots, update=R.update_requested())
    if R.update_requested():
        pytest.skip(f"snapshots updated: {', '.join(result.updated) or 'none changed'}")
    assert result.passed, (
        "prompt snapshots changed (cvbench regress --suite prompts --update if intended):\n"
        + "\n".join(result.diff[:60])
    )


@pytest.mark.slow
def test_every_protocol_and_mode_is_covered(snapshots: dict[str, dict[str, Any]]) -> None:
    assert set(snapshots) == {c.name for c in S.CASES}
    assert {p.stem for p in (GOLDEN / "prompts").glob("*.json")} == {c.name for c in S.CASES}
    cvb_styles = {s["prompt_settings"]["style"] for n, s in snapshots.items() if n.startswith("crossviewbench-overlay")}
    assert cvb_styles == {"contour", "mask", "box", "marks"}
    modes = {
        (s["benchmark"], p["mode"], s["setting"], s["capabilities"]["max_images"])
        for s in snapshots.values()
        for p in s["prompts"]
    }
    assert modes == {
        ("crossviewbench", "overlay", "all", None),
        ("crossviewbench", "native", "all", None),
        ("crossviewbench", "overlay", "all", 1),
        ("mmvm", "overlay", "all", None),
        ("mmvm", "overlay", "4", None),
        ("mmvm", "native", "all", None),
        ("mmvm", "prerendered", "all", None),
        ("mmvm", "overlay", "all", 1),
    }


@pytest.mark.slow
def test_snapshot_contents_describe_what_the_model_sees(snapshots: dict[str, dict[str, Any]], data_root: Path) -> None:
    assert str(data_root) not in json.dumps(snapshots)  # no machine-specific paths
    for name, snap in snapshots.items():
        assert snap["prompts"], name
        for p in snap["prompts"]:
            assert p["text"] and p["answer"] in {o[0] for o in p["options"]}
            assert len(p["content_digest"]) == 64
            if p["mode"] == "native":
                assert p["native"] is not None and len(p["native"]["digest"]) == 64
            else:
                assert p["native"] is None and p["images"]
                assert all(len(i["identity"]) == 64 and i["width"] > 0 for i in p["images"])
            if snap["capabilities"]["max_images"] == 1:
                assert len(p["images"]) == 1  # views concatenated into one image
    styles = [
        snapshots[f"crossviewbench-overlay-{s}"]["prompts"][0]["images"][0]["identity"]
        for s in ("contour", "mask", "box", "marks")
    ]
    assert len(set(styles)) == 4  # each style draws different pixels
    all_settings = {p["sample_id"]: p for p in snapshots["mmvm-overlay"]["prompts"]}
    for p in snapshots["mmvm-overlay-4"]["prompts"]:
        full = all_settings[p["sample_id"]]
        assert len(p["options"]) <= len(full["options"])
        assert len([o for o in p["options"] if o[1].strip().isdigit()]) <= 4
    assert any(
        len(p["options"]) < len(all_settings[p["sample_id"]]["options"]) for p in snapshots["mmvm-overlay-4"]["prompts"]
    )  # @4 really subsets the large samples


@pytest.mark.slow
def test_a_prompt_change_is_a_visible_diff(data_root: Path, snapshots: dict[str, dict[str, Any]]) -> None:
    samples = S.choose_samples("crossviewbench", iter_task_samples(get_task("synth-crossviewbench"), data_root))
    case = next(c for c in S.CASES if c.name == "crossviewbench-overlay-mask")
    drifted = S.case_snapshot(replace(case, style="box"), samples, data_root)  # the renderer drew something else
    diff = R.diff_payloads("prompts/crossviewbench-overlay-mask.json", snapshots[case.name], drifted)
    assert any("images > " in d or "sha256" in d for d in diff)
    assert any("content_digest" in d for d in diff)
    same = S.case_snapshot(case, samples, data_root)
    assert R.diff_payloads("x", snapshots[case.name], same) == []  # deterministic


@pytest.mark.slow
def test_regress_cli_prompts_suite_fails_on_a_changed_snapshot(
    tmp_path: Path, data_root: Path, snapshots: dict[str, dict[str, Any]]
) -> None:
    golden = tmp_path / "golden"
    (golden / "prompts").mkdir(parents=True)
    for path in (GOLDEN / "prompts").glob("*.json"):
        (golden / "prompts" / path.name).write_text(path.read_text())
    target = golden / "prompts" / "mmvm-overlay.json"
    committed = json.loads(target.read_text())
    committed["prompts"][0]["text"] = committed["prompts"][0]["text"].replace("Please", "Kindly", 1)
    target.write_text(R.dump_json(committed))
    keep = data_root.parent.parent  # --keep reuses the session's suite data (same marker)
    args = ["regress", "--suite", "prompts", "--golden", str(golden), "--keep", str(keep)]
    res = _separate_stderr_runner().invoke(cli, args)
    assert res.exit_code == 1
    sample = committed["prompts"][0]["sample_id"]
    assert f"prompts/mmvm-overlay.json: prompts > sample {sample} > text: golden " in res.stderr
    assert "Kindly" in res.stderr and "--suite prompts --update" in res.stderr
    res = CliRunner().invoke(cli, args + ["--update"])
    assert res.exit_code == 0 and "1 rewritten" in res.output
    assert target.read_text() == R.dump_json(snapshots["mmvm-overlay"])


def _separate_stderr_runner() -> CliRunner:
    """stderr kept apart from stdout under every supported click (8.1 mixes them by default;
    8.2 removed the switch and always separates)."""
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        return CliRunner()


def test_portable_rewrites_paths_under_the_data_root() -> None:
    root = Path("/data/root")
    value = {"a": ["/data/root/synth-mmvm/x.jpg", "/elsewhere/y.jpg"], "b": "/data/rootless", "c": 3}
    assert S.portable(value, root) == {
        "a": ["<data>/synth-mmvm/x.jpg", "/elsewhere/y.jpg"],
        "b": "/data/rootless",
        "c": 3,
    }
