"""`cvbench export-lmms` without lmms-eval: the folder's files, and the hooks it calls, driven
the way lmms-eval drives them (utils.py loaded from its path, answers stripped, per-metric
values aggregated), compared with `cvbench run` on the same data, seed and answers."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from cvbench.cli import cli
from cvbench.core.types import Capabilities, Sample
from cvbench.integrations.lmms_export import (
    MANIFEST_FILE,
    ExportError,
    LmmsExportOptions,
    export_lmms,
    lmms_task_name,
)
from cvbench.integrations.lmms_hooks import ExportHooks, hooks_for
from cvbench.prompting.build import PromptSettings, build_prompt
from cvbench.prompting.encoding import ImagePolicy, encode_image
from cvbench.rundir.format import iter_records
from cvbench.runner.options import RunOptions
from cvbench.runner.session import Runner
from cvbench.tasks.loading import iter_task_samples
from cvbench.tasks.registry import get_task
from tests.integrations.lmms_fixtures import (
    LMMS_FAILURE,
    FixedAnswerAdapter,
    accuracies,
    answer_book,
    answer_for_lmms,
    build_data_root,
)

TASKS = ("synth-mmvm", "synth-crossviewbench")
CANDIDATES = ("4", "all")
SEED = 3


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_data_root(tmp_path_factory.mktemp("lmms-data"))


@pytest.fixture(scope="module")
def export_dir(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lmms-export") / "tasks"
    export_lmms(LmmsExportOptions(tasks=TASKS, out=out, candidates=CANDIDATES, data_dir=data_root, seed=SEED))
    return out


def read_docs(export_dir: Path, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (export_dir / "data" / f"{name}.jsonl").read_text().splitlines()]


def load_utils(export_dir: Path) -> ModuleType:
    """utils.py loaded the way lmms-eval's `!function` loader does: from its file path."""
    spec = importlib.util.spec_from_file_location("utils", export_dir / "utils.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exported_names() -> list[str]:
    return [lmms_task_name("synth-mmvm", c) for c in CANDIDATES] + [lmms_task_name("synth-crossviewbench", "all")]


def test_task_names() -> None:
    assert lmms_task_name("synth-mmvm", "all") == "cvbench_synth_mmvm"
    assert lmms_task_name("synth-mmvm", "4") == "cvbench_synth_mmvm_c4"
    assert lmms_task_name("crossviewbench", "all") == "cvbench_crossviewbench"


def test_export_writes_tasks_group_manifest_and_shim(export_dir: Path, data_root: Path) -> None:
    names = exported_names()
    for name in names:
        text = (export_dir / f"{name}.yaml").read_text()
        assert f'task: "{name}"' in text
        assert "dataset_path: json" in text
        assert f'test: "{export_dir / "data" / (name + ".jsonl")}"' in text
        for hook in ("doc_to_visual", "doc_to_text", "doc_to_messages", "doc_to_target", "process_results"):
            assert f"{hook}: !function utils.{hook}" in text
        assert "aggregation: !function utils.aggregate_accuracy" in text
        assert "until: []" in text and "max_new_tokens: 1024" in text and "temperature: 0" in text
        assert f"seed: {SEED}" in text and 'cvbench_version: "0.1.0"' in text
    assert 'candidate_setting: "4"' in (export_dir / "cvbench_synth_mmvm_c4.yaml").read_text()
    assert 'protocol: "mmvm/1"' in (export_dir / "cvbench_synth_mmvm_c4.yaml").read_text()
    assert 'style: "mask"' in (export_dir / "cvbench_synth_crossviewbench.yaml").read_text()
    group = (export_dir / "_cvbench_group.yaml").read_text()
    assert 'group: "cvbench_suite"' in group and all(f'- "{n}"' in group for n in names)
    manifest = json.loads((export_dir / MANIFEST_FILE).read_text())
    assert manifest["schema"] == "cvbench.lmms-export/1"
    assert manifest["cvbench_version"] == "0.1.0" and manifest["seed"] == SEED
    assert manifest["candidates"] == list(CANDIDATES)
    assert manifest["protocol"] == {"crossviewbench": "crossviewbench/1", "mmvm": "mmvm/1"}
    assert manifest["data_dir"] == str(data_root.resolve())
    assert manifest["prompt_settings"]["seed"] == SEED
    assert sorted(manifest["tasks"]) == sorted(names)
    assert manifest["tasks"]["cvbench_synth_mmvm_c4"]["dataset_fingerprint"].startswith("sha256:")
    utils = (export_dir / "utils.py").read_text()
    assert "from cvbench.integrations.lmms_hooks import hooks_for" in utils
    assert "\ndef " not in utils  # a shim: names bound to cvbench's hooks, no logic of its own
    module = load_utils(export_dir)
    for name in names:
        for metric in manifest["tasks"][name]["metrics"]:
            text = (export_dir / f"{name}.yaml").read_text()
            assert f'metric: "{metric}"' in text
        assert callable(module.process_results)


def test_documents_are_the_runner_records(export_dir: Path, data_root: Path) -> None:
    from cvbench.runner.jobs import item_sample_id, record_id

    for task in TASKS:
        spec = get_task(task)
        items = list(iter_task_samples(spec, data_root))
        for setting in CANDIDATES if spec.benchmark == "mmvm" else ("all",):
            docs = read_docs(export_dir, lmms_task_name(task, setting))
            assert [d["record_id"] for d in docs] == [record_id(task, setting, item_sample_id(i)) for i in items]
            clusters = {d["sample_id"]: d["cluster"] for d in docs}
            for item in items:
                if isinstance(item, Sample):
                    assert clusters[item.sample_id] == item.cluster
    cvb_docs = read_docs(export_dir, "cvbench_synth_crossviewbench")
    invalid = [d for d in cvb_docs if d["invalid"]]
    assert len(invalid) == 2 and "JSON" in invalid[0]["invalid"].upper()
    assert invalid[1]["sample_id"] == "missing-image" and "does-not-exist.png" in invalid[1]["invalid"]
    mmvm = read_docs(export_dir, "cvbench_synth_mmvm_c4")
    assert all(json.loads(d["slices"])["cue"] for d in mmvm)
    assert {json.loads(d["slices"])["bucket"][0] for d in mmvm} >= {"2-4", "13+"}


def test_hooks_show_exactly_what_build_prompt_renders(export_dir: Path, data_root: Path) -> None:
    hooks = hooks_for(export_dir)
    settings = PromptSettings(seed=SEED)
    caps = Capabilities(max_images=None)
    checked = 0
    for task in TASKS:
        spec = get_task(task)
        samples = {s.sample_id: s for s in iter_task_samples(spec, data_root) if isinstance(s, Sample)}
        for setting in CANDIDATES if spec.benchmark == "mmvm" else ("all",):
            for doc in read_docs(export_dir, lmms_task_name(task, setting)):
                sample = samples.get(doc["sample_id"])
                if sample is None or doc["sample_id"] == "missing-image":
                    assert hooks.doc_to_visual(doc) == []
                    assert hooks.doc_to_text(doc).startswith("[cvbench: sample ")
                    continue
                prompt = build_prompt(sample, settings, caps, setting)
                assert hooks.doc_to_text(doc) == prompt.text
                assert hooks.doc_to_target(doc) == prompt.answer
                visuals = hooks.doc_to_visual(doc)
                assert len(visuals) == len(prompt.images) == 2
                for pil, image in zip(visuals, prompt.images):
                    # the same pixels, and cvbench's encoder gives the very bytes it sends
                    assert encode_image(np.asarray(pil), ImagePolicy(), image.label).sha256 == image.sha256
                messages = hooks.doc_to_messages(doc)
                assert [m["role"] for m in messages] == ["user"]
                parts = messages[0]["content"]
                assert [p["type"] for p in parts] == ["image", "image", "text"] and parts[-1]["text"] == prompt.text
                assert [np.asarray(p["url"]).tobytes() for p in parts[:2]] == [np.asarray(v).tobytes() for v in visuals]
                checked += 1
    assert checked == 8 * 2 + 17


def test_same_answers_give_cvbench_numbers_per_slice(export_dir: Path, data_root: Path, tmp_path: Path) -> None:
    hooks = hooks_for(export_dir)
    utils = load_utils(export_dir)
    manifest = json.loads((export_dir / MANIFEST_FILE).read_text())
    all_docs = {name: read_docs(export_dir, name) for name in manifest["tasks"]}
    book = answer_book([hooks.prompt(d) for docs in all_docs.values() for d in docs])
    assert len(book) > 30

    options = RunOptions(
        model="test",
        tasks=TASKS,
        data_dir=data_root,
        candidates=CANDIDATES,
        seed=SEED,
        out=tmp_path / "run",
        use_cache=False,
        save_images=False,
        progress=False,
        n_resamples=100,
    )
    outcome = Runner(options, resolve_model=lambda spec, opts: FixedAnswerAdapter(book)).execute()
    expected = accuracies(outcome.results)
    cvb_records = {r.record_id: r for r in iter_records(outcome.run_dir)}

    got: dict[str, float] = {}
    statuses: set[str] = set()
    for name, docs in all_docs.items():
        entry = manifest["tasks"][name]
        per_metric: dict[str, list[Any]] = {m: [] for m in entry["metrics"]}
        for doc in docs:
            answer = answer_for_lmms(hooks.doc_to_text(doc), hooks.doc_to_visual(doc), book)
            values = utils.process_results(doc, [answer.strip()])  # lmms-eval strips answers first
            assert sorted(values) == sorted(per_metric)
            for metric, value in values.items():
                per_metric[metric].append(value)
            record = values["accuracy"]["record"]
            reference = cvb_records[doc["record_id"]]
            for key in (
                "parsed",
                "parse_status",
                "correct",
                "answer",
                "n_options",
                "slices",
                "cluster",
                "invalid",
                "image_sha256",
                "options",
                "mode",
            ):
                assert record[key] == getattr(reference, key), (doc["record_id"], key)
            statuses.add(record["parse_status"])
        evaluation = f"{entry['task']}@{entry['setting']}"
        for metric, values in per_metric.items():
            aggregate = getattr(
                utils, "aggregate_accuracy" if metric == "accuracy" else _function_of(export_dir, name, metric)
            )
            key = evaluation if metric == "accuracy" else f"{evaluation}/{metric.split('/', 1)[1]}"
            got[key] = aggregate(values)
    assert statuses >= {"parsed", "unparsed", "error", "invalid"}
    assert got == expected


def _function_of(export_dir: Path, task: str, metric: str) -> str:
    lines = (export_dir / f"{task}.yaml").read_text().splitlines()
    at = lines.index(f'  - metric: "{metric}"')
    return lines[at + 1].split("utils.", 1)[1].strip()


def test_lmms_failure_placeholder_is_an_error_never_an_answer(export_dir: Path) -> None:
    hooks = hooks_for(export_dir)
    doc = read_docs(export_dir, "cvbench_synth_mmvm_c4")[0]
    answer = hooks.doc_to_target(doc)
    record = hooks.record(doc, f"{LMMS_FAILURE} {answer}")
    assert record.parse_status == "error" and not record.correct and record.error["kind"] == "transport"
    assert hooks.record(doc, answer).correct
    value = hooks.process_results(doc, [""])["accuracy"]
    assert value["score"] == 0 and value["record"]["parse_status"] == "unparsed"


def test_slice_metrics_hold_only_their_documents(export_dir: Path) -> None:
    hooks = hooks_for(export_dir)
    for doc in read_docs(export_dir, "cvbench_synth_mmvm_c4"):
        values = hooks.process_results(doc, [hooks.doc_to_target(doc)])
        slices = json.loads(doc["slices"])
        inside = {f"accuracy/{d}={label}" for d, labels in slices.items() for label in labels}
        for metric, value in values.items():
            if metric == "accuracy" or metric in inside:
                assert value["score"] == 1 and value["cluster"] == f"synth-mmvm/{doc['cluster']}"
            else:
                assert value is None


def test_reexport_replaces_the_previous_tasks(data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "tasks"
    export_lmms(LmmsExportOptions(tasks=("synth-mmvm",), out=out, candidates=("4", "all"), data_dir=data_root, limit=3))
    assert (out / "cvbench_synth_mmvm_c4.yaml").exists()
    first = hooks_for(out)
    export_lmms(LmmsExportOptions(tasks=("synth-crossviewbench",), out=out, data_dir=data_root, limit=3))
    assert sorted(p.name for p in out.glob("*.yaml")) == ["_cvbench_group.yaml", "cvbench_synth_crossviewbench.yaml"]
    assert sorted(p.name for p in (out / "data").iterdir()) == ["cvbench_synth_crossviewbench.jsonl"]
    assert len(read_docs(out, "cvbench_synth_crossviewbench")) == 3
    assert hooks_for(out) is not first  # a re-export in the same process gets fresh hooks


def test_export_refuses_what_it_cannot_do(data_root: Path, tmp_path: Path) -> None:
    (tmp_path / "someone-elses-file.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not empty"):
        export_lmms(LmmsExportOptions(tasks=("synth-mmvm",), out=tmp_path, data_dir=data_root))
    assert (tmp_path / "someone-elses-file.txt").read_text() == "keep me"
    with pytest.raises(ExportError, match="native|choose one of"):
        export_lmms(LmmsExportOptions(tasks=("synth-mmvm",), out=tmp_path / "a", data_dir=data_root, mode="native"))
    with pytest.raises(ExportError, match="no-such-task"):
        export_lmms(LmmsExportOptions(tasks=("no-such-task",), out=tmp_path / "b", data_dir=data_root))
    with pytest.raises(ExportError, match="candidate setting 5"):
        export_lmms(LmmsExportOptions(tasks=("synth-mmvm",), out=tmp_path / "c", data_dir=data_root, candidates=("5",)))
    with pytest.raises(ExportError, match="MMVM tasks only"):
        export_lmms(
            LmmsExportOptions(
                tasks=("synth-crossviewbench",), out=tmp_path / "d", data_dir=data_root, candidates=("4",)
            )
        )


def test_hooks_refuse_a_document_of_another_export(export_dir: Path) -> None:
    hooks = hooks_for(export_dir)
    doc = dict(read_docs(export_dir, "cvbench_synth_mmvm_c4")[0], lmms_task="cvbench_other")
    with pytest.raises(Exception, match="does not belong to this export"):
        hooks.doc_to_text(doc)
    with pytest.raises(Exception, match="missing"):
        ExportHooks.load(export_dir / "data")


def test_single_image_export_stacks_the_views(data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "single"
    export_lmms(LmmsExportOptions(tasks=("synth-mmvm",), out=out, data_dir=data_root, limit=2, single_image=True))
    hooks = hooks_for(out)
    doc = read_docs(out, "cvbench_synth_mmvm")[0]
    sample = next(s for s in iter_task_samples(get_task("synth-mmvm"), data_root) if s.sample_id == doc["sample_id"])
    prompt = build_prompt(sample, PromptSettings(), Capabilities(max_images=1))
    assert len(hooks.doc_to_visual(doc)) == 1 and hooks.doc_to_text(doc) == prompt.text


def test_cli_export_lmms(data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        cli,
        [
            "export-lmms",
            "--task",
            "synth-mmvm",
            "--candidates",
            "4,all",
            "--out",
            str(out),
            "--data-dir",
            str(data_root),
            "--limit",
            "2",
            "--seed",
            "5",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "cvbench_synth_mmvm_c4: 2 documents" in result.output
    assert "--include_path" in result.output
    assert json.loads((out / MANIFEST_FILE).read_text())["seed"] == 5
    bad = CliRunner().invoke(
        cli,
        [
            "export-lmms",
            "--task",
            "synth-mmvm",
            "--out",
            str(tmp_path / "x"),
            "--data-dir",
            str(data_root),
            "--candidates",
            "7",
        ],
    )
    assert bad.exit_code == 1 and "candidate setting 7" in bad.output
