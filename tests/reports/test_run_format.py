"""The typed run directory: one reader and one writer per file, marks instead of key lists,
clear errors for older or corrupted files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cvbench.rundir.config import RunConfig, comparability_differences, config_differences, read_config, write_config
from cvbench.rundir.format import RunDirError, find_run_dirs, iter_records, load_run
from cvbench.rundir.portable import portable_config
from cvbench.rundir.results import Results, read_results, write_results
from cvbench.rundir.schema import comparable_keys, identity_keys


def test_identity_and_comparability_are_the_marked_fields() -> None:
    assert identity_keys(RunConfig) == (
        "model",
        "model_settings",
        "generation",
        "tasks",
        "mode",
        "style",
        "seed",
        "limit",
        "shard",
        "judge",
        "prompt_settings",
        "datasets",
        "protocol",
        "pricing",
        "ablation",
    )
    # a comparison is about the model: its id, settings and generation are not comparability
    assert set(comparable_keys(RunConfig)) == {
        "mode",
        "style",
        "seed",
        "limit",
        "shard",
        "judge",
        "prompt_settings",
        "protocol",
    }


def test_factory_runs_read_back_identically(factory_runs: list[Path], tmp_path: Path) -> None:
    for run_dir in factory_runs:
        for name, read, write in (
            ("config.json", read_config, write_config),
            ("results.json", read_results, write_results),
        ):
            raw = json.loads((run_dir / name).read_text(encoding="utf-8"))
            value = read(run_dir)
            assert value.to_json() == raw
            out = tmp_path / run_dir.name
            out.mkdir(exist_ok=True)
            write(out, value)  # type: ignore[operator]
            assert (out / name).read_bytes() == (run_dir / name).read_bytes()


def _corrupt(run_dir: Path, name: str, edit: object) -> None:
    path = run_dir / name
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)  # type: ignore[operator]
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        (
            "results.json",
            lambda d: d["evaluations"]["mmvm@4"]["overall"].update(n="ten"),
            "results.json: field 'evaluations.mmvm@4.overall.n' must be a whole number",
        ),
        ("results.json", lambda d: d.update(schema="cvbench.results/0"), "field 'schema' is \"cvbench.results/0\""),
        ("results.json", lambda d: d.update(status="finished"), "field 'status' must be one of complete"),
        ("results.json", lambda d: d.pop("evaluations"), "results.json: field 'evaluations' is missing"),
        ("config.json", lambda d: d.update(seed="0"), "config.json: field 'seed' must be a whole number"),
        ("config.json", lambda d: d["model"].pop("id"), "config.json: field 'model.id' is missing"),
        ("config.json", lambda d: d.update(created_utc="x"), "config.json: field 'created_utc' is not a field"),
        ("config.json", lambda d: d.update(shard=[1]), "config.json: field 'shard' must be a list of two"),
    ],
)
def test_corrupted_files_are_named_with_their_field(
    factory_runs: list[Path], tmp_path: Path, name: str, edit: object, message: str
) -> None:
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(factory_runs[0], run_dir)
    _corrupt(run_dir, name, edit)
    with pytest.raises(RunDirError, match=None) as info:
        load_run(run_dir)
    assert message in str(info.value) and str(run_dir / name) in str(info.value)


def test_a_record_of_another_schema_names_its_line(factory_runs: list[Path], tmp_path: Path) -> None:
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(factory_runs[0], run_dir)
    lines = (run_dir / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    second = json.loads(lines[1])
    second["schema"] = "cvbench.record/0"
    lines[1] = json.dumps(second)
    (run_dir / "samples.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(RunDirError, match=r"samples.jsonl:2: field 'schema' is \"cvbench.record/0\""):
        list(iter_records(run_dir))


def test_differences_come_from_the_marks(factory_runs: list[Path]) -> None:
    a = read_config(factory_runs[0])
    data = a.to_json()
    data["seed"] = 7
    data["runtime"]["concurrency"] = 99  # runtime is neither identity nor comparability
    data["model_settings"] = {"detail": "low"}
    b = RunConfig.from_json(data)
    assert config_differences(a, b) == [
        'model_settings.detail: "high" (existing run) != "low" (this command)',
        "seed: 0 (existing run) != 7 (this command)",
    ]
    assert [d[0] for d in comparability_differences(a, b)] == ["seed"]


def test_published_config_has_no_local_paths(factory_runs: list[Path]) -> None:
    config = read_config(factory_runs[0])
    root = str((config.runtime or {})["data_dir"])
    shown = json.dumps(portable_config(config))
    assert root not in shown and str(factory_runs[0].parent) not in shown
    assert "<data root>" in shown


def test_nested_run_directories_are_found(factory_runs: list[Path], tmp_path: Path) -> None:
    import shutil

    runs = tmp_path / "runs"
    for i, run in enumerate(factory_runs[:2]):
        shutil.copytree(run, runs / f"model{i}" / "crossviewbench+mmvm")
    found = find_run_dirs([runs / "model0", runs / "model1"])
    assert found == [runs / "model0" / "crossviewbench+mmvm", runs / "model1" / "crossviewbench+mmvm"]
    assert find_run_dirs([runs]) == found
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="no run directory below"):
        find_run_dirs([tmp_path / "empty"])


def test_results_value_answers_metric_lookups(factory_runs: list[Path]) -> None:
    results = Results.from_json(json.loads((factory_runs[0] / "results.json").read_text(encoding="utf-8")))
    assert results.metric("mmvm", "4", "overall") == results.evaluations["mmvm@4"].overall
    assert results.metric("mmvm", "5", "overall") is None


def test_a_key_left_out_stays_out_until_a_value_is_set(factory_runs: list[Path], tmp_path: Path) -> None:
    """Reading keeps which optional keys a file left out; one set since (a resume's `resumed`) is written."""
    from dataclasses import replace

    config = read_config(factory_runs[0])
    assert "resumed" not in json.loads((factory_runs[0] / "config.json").read_text())
    write_config(tmp_path, config)
    assert "resumed" not in json.loads((tmp_path / "config.json").read_text())
    write_config(tmp_path, replace(config, resumed=("2026-12-05T10:00:00Z",)))
    assert json.loads((tmp_path / "config.json").read_text())["resumed"] == ["2026-12-05T10:00:00Z"]
