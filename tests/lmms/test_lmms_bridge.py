"""The lmms-eval bridge against a real lmms-eval: its TaskManager loads the exported folder, the
requests it builds carry cvbench's images and text, its evaluator reports cvbench's numbers for
the same answers, `python -m lmms_eval` end to end against a loopback OpenAI-compatible server
agrees with `cvbench run` against the same server, and `lmms:<model>` runs lmms-eval models
inside cvbench."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.lmms.requirement import require_lmms_eval

lmms_eval = require_lmms_eval()

from lmms_eval.api.model import lmms as LmmsModel

from cvbench.integrations.lmms_export import MANIFEST_FILE, LmmsExportOptions, export_lmms
from cvbench.integrations.lmms_hooks import hooks_for
from cvbench.prompting.encoding import ImagePolicy, encode_image
from cvbench.rundir.format import iter_records
from cvbench.runner.options import RunOptions
from cvbench.runner.session import Runner, run
from tests.integrations.lmms_fixtures import (
    LMMS_FAILURE,
    FixedAnswerAdapter,
    accuracies,
    answer_book,
    answer_for_lmms,
    fixed_answer,
    pixel_digest_of_bytes,
)
from tests.wire.openai_wire import OpenAIWireServer

REPO = Path(__file__).resolve().parents[2]
TASKS = ("synth-mmvm", "synth-crossviewbench")
CANDIDATES = ("4", "all")
SEED = 2


@pytest.fixture(scope="module")
def export_dir(lmms_data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lmms-export") / "tasks"
    export_lmms(LmmsExportOptions(tasks=TASKS, out=out, candidates=CANDIDATES, data_dir=lmms_data_root, seed=SEED))
    return out


@pytest.fixture(scope="module")
def manifest(export_dir: Path) -> dict[str, Any]:
    return json.loads((export_dir / MANIFEST_FILE).read_text())


@pytest.fixture(scope="module")
def book(export_dir: Path, manifest: dict[str, Any]) -> dict[str, str]:
    hooks = hooks_for(export_dir)
    docs = [
        json.loads(line)
        for name in manifest["tasks"]
        for line in (export_dir / "data" / f"{name}.jsonl").read_text().splitlines()
    ]
    return answer_book([hooks.prompt(d) for d in docs])


def task_manager(export_dir: Path, defaults: bool = False) -> Any:
    from lmms_eval.tasks import TaskManager

    return TaskManager(include_path=str(export_dir), include_defaults=defaults)


def cvbench_run(data_root: Path, out: Path, model: str, **kwargs: Any) -> Any:
    options = RunOptions(
        model=model,
        tasks=TASKS,
        data_dir=data_root,
        candidates=CANDIDATES,
        seed=SEED,
        out=out,
        use_cache=False,
        save_images=False,
        progress=False,
        n_resamples=100,
        **kwargs,
    )
    return options


def lmms_accuracies(results: dict[str, Any], manifest: dict[str, Any]) -> dict[str, float]:
    """lmms-eval's per-task metrics renamed to cvbench's `task@setting[/slice]` keys."""
    out: dict[str, float] = {}
    for name, entry in manifest["tasks"].items():
        evaluation = f"{entry['task']}@{entry['setting']}"
        for metric in entry["metrics"]:
            key = evaluation if metric == "accuracy" else f"{evaluation}/{metric.split('/', 1)[1]}"
            out[key] = results["results"][name][f"{metric},none"]
    return out


def test_task_manager_finds_and_loads_the_exported_tasks(export_dir: Path, manifest: dict[str, Any]) -> None:
    tm = task_manager(export_dir, defaults=True)  # next to lmms-eval's own tasks, as users run it
    names = sorted(manifest["tasks"])
    assert set(names) <= set(tm.all_subtasks) and "cvbench_suite" in tm.all_groups
    for kind in ("simple", "chat"):
        loaded = tm.load_task_or_group(["cvbench_suite"], task_type=kind)
        ((group, tasks),) = loaded.items()
        assert str(group.config["group"]) == "cvbench_suite" and sorted(tasks) == names
        for name, task in tasks.items():
            assert len(task.test_docs()) == manifest["tasks"][name]["n_docs"]
            assert sorted(task.aggregation()) == sorted(manifest["tasks"][name]["metrics"])


def _pixels(image: Any) -> bytes:
    return np.asarray(image.convert("RGB")).tobytes()


def test_requests_carry_cvbench_images_and_text(export_dir: Path) -> None:
    from lmms_eval.protocol import ChatMessages

    hooks = hooks_for(export_dir)
    name = "cvbench_synth_mmvm_c4"
    checked = 0
    for kind in ("simple", "chat"):
        task = task_manager(export_dir).load_task_or_group([name], task_type=kind)[name]
        task.build_all_requests(limit=4)
        assert len(task.instances) == 4
        for inst in task.instances:
            doc = task.test_docs()[inst.doc_id]
            prompt = hooks.prompt(doc)
            if kind == "simple":
                ctx, gen_kwargs, doc_to_visual, _, task_name, split = inst.args
                images = doc_to_visual(doc)
                assert ctx == prompt.text
            else:
                ctx, doc_to_messages, gen_kwargs, _, task_name, split = inst.args
                openai = ChatMessages(messages=doc_to_messages(doc)).to_openai_messages()
                (user,) = openai
                assert [p["type"] for p in user["content"]] == ["image_url", "image_url", "text"]
                assert user["content"][-1]["text"] == prompt.text

                images = [
                    Image.open(io.BytesIO(base64.b64decode(p["image_url"]["url"].split(",", 1)[1])))
                    for p in user["content"][:2]
                ]
            assert gen_kwargs["max_new_tokens"] == 1024 and gen_kwargs["temperature"] == 0 and gen_kwargs["until"] == []
            assert (task_name, split) == (name, "test")
            assert len(images) == len(prompt.images)
            for image, sent in zip(images, prompt.images):
                # pixel-identical, and cvbench's own encoder turns them into the exact bytes cvbench sends
                assert encode_image(np.asarray(image.convert("RGB")), ImagePolicy(), sent.label).sha256 == sent.sha256
            checked += 1
    assert checked == 8


class FixedAnswers(LmmsModel):
    """An lmms-eval model (simple interface) answering from what it is shown, like FixedAnswerAdapter."""

    def __init__(self, book: dict[str, str]) -> None:
        super().__init__()
        self.book = book

    def generate_until(self, requests: list[Any]) -> list[str]:
        answers = []
        for request in requests:
            ctx, _, doc_to_visual, doc_id, task, split = request.args
            answers.append(answer_for_lmms(ctx, doc_to_visual(self.task_dict[task][split][doc_id]), self.book))
        return answers

    def loglikelihood(self, requests: list[Any]) -> list[Any]:
        raise NotImplementedError

    def generate_until_multi_round(self, requests: list[Any]) -> list[str]:
        raise NotImplementedError


def test_lmms_evaluator_reports_cvbench_numbers_for_the_same_answers(
    export_dir: Path, manifest: dict[str, Any], book: dict[str, str], lmms_data_root: Path, tmp_path: Path
) -> None:
    from lmms_eval.evaluator import simple_evaluate

    results = simple_evaluate(
        model=FixedAnswers(book),
        tasks=["cvbench_suite"],
        task_manager=task_manager(export_dir),
        bootstrap_iters=0,
        log_samples=True,
    )
    options = cvbench_run(lmms_data_root, tmp_path / "run", "test")
    outcome = Runner(options, resolve_model=lambda spec, opts: FixedAnswerAdapter(book)).execute()
    expected = accuracies(outcome.results)
    assert lmms_accuracies(results, manifest) == expected
    statuses = {s["accuracy"]["record"]["parse_status"] for samples in results["samples"].values() for s in samples}
    assert statuses >= {"parsed", "unparsed", "error", "invalid"}
    # the clustered standard error sees the slice's documents only
    c4 = results["results"]["cvbench_synth_mmvm_c4"]
    assert isinstance(c4.get("accuracy_stderr_clt,none", 0.0), (float, str))


def wire_answer(book: dict[str, str]) -> Any:
    def answer(request: Any) -> str:
        text = fixed_answer(request.text, pixel_digest_of_bytes([i.data for i in request.images]), book)
        return "no idea" if text == LMMS_FAILURE else text  # a real server returns text, not lmms-eval's placeholder

    return answer


def _sent(server: OpenAIWireServer, start: int = 0) -> list[tuple[str, str]]:
    """(text, pixel digest) of the requests the server received from the `start`-th on, sorted."""
    return sorted((r.text, pixel_digest_of_bytes([i.data for i in r.images])) for r in server.requests[start:])


def test_lmms_eval_cli_end_to_end_matches_cvbench_run(
    lmms_data_root: Path, book: dict[str, str], tmp_path: Path
) -> None:
    """`python -m lmms_eval --model openai` and `cvbench run --model openai-compatible:...` against the
    same loopback server: the same requests (text and pixels) and the same accuracy per slice."""
    out = tmp_path / "tasks"
    export_lmms(LmmsExportOptions(tasks=TASKS, out=out, candidates=("4",), data_dir=lmms_data_root, seed=SEED, limit=5))
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    with OpenAIWireServer(answer=wire_answer(book)) as server:
        env = dict(os.environ, PYTHONPATH=str(REPO), OPENAI_API_KEY="test-key")
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "lmms_eval",
                "--include_path",
                str(out),
                "--tasks",
                "cvbench_suite",
                "--model",
                "openai",
                "--model_args",
                f"model_version=wire-model,base_url={server.base_url()},api_key=test-key,max_retries=1,num_concurrent=4",
                "--output_path",
                str(tmp_path / "lmms-out"),
                "--log_samples",
            ],
            check=False,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        log = proc.stdout[-3000:] + proc.stderr[-3000:]
        assert proc.returncode == 0, log  # lmms-eval also exits 0 after some errors: the results file decides
        result_files = sorted((tmp_path / "lmms-out").rglob("*_results.json"))
        assert result_files, log
        lmms_requests = _sent(server)
        start = len(server.requests)
        options = RunOptions(
            model="openai-compatible:wire-model",
            tasks=TASKS,
            data_dir=lmms_data_root,
            candidates=("4",),
            seed=SEED,
            limit=5,
            out=tmp_path / "run",
            use_cache=False,
            save_images=False,
            progress=False,
            n_resamples=100,
            base_urls=(server.base_url(),),
            image_format="png",  # the lossless pixels the export hands lmms-eval (openai-compatible defaults to JPEG)
        )
        outcome = run(options)
        cvbench_requests = _sent(server, start)
    # lmms-eval cannot skip a document: the invalid one (a broken JSON line) is asked as a text-only placeholder
    placeholders = [r for r in lmms_requests if r[0].startswith("[cvbench: sample ")]
    assert len(placeholders) == 1 and "invalid JSON" in placeholders[0][0]
    assert [r for r in lmms_requests if r not in placeholders] == cvbench_requests and len(cvbench_requests) == 9
    results = json.loads(result_files[-1].read_text())
    assert lmms_accuracies(results, manifest) == accuracies(outcome.results)


def test_lmms_adapter_runs_an_lmms_eval_model_inside_cvbench(
    lmms_data_root: Path, book: dict[str, str], tmp_path: Path
) -> None:
    """`lmms:openai,...` (lmms-eval's chat model) and cvbench's own openai-compatible adapter, same server:
    the same requests and the same records."""
    with OpenAIWireServer(answer=wire_answer(book)) as server:
        url = server.base_url()
        via_lmms = run(
            RunOptions(
                model=f"lmms:openai,model_version=wire-model,base_url={url},api_key=test-key,max_retries=1",
                tasks=TASKS,
                data_dir=lmms_data_root,
                candidates=("4",),
                seed=SEED,
                limit=4,
                out=tmp_path / "lmms",
                use_cache=False,
                save_images=False,
                progress=False,
                n_resamples=100,
            )
        )
        lmms_requests = _sent(server)
        start = len(server.requests)
        direct = run(
            RunOptions(
                model="openai-compatible:wire-model",
                tasks=TASKS,
                data_dir=lmms_data_root,
                candidates=("4",),
                seed=SEED,
                limit=4,
                out=tmp_path / "direct",
                use_cache=False,
                save_images=False,
                image_format="png",  # as lmms-eval receives them: lossless
                progress=False,
                n_resamples=100,
                base_urls=(url,),
            )
        )
        direct_requests = _sent(server, start)
    assert lmms_requests == direct_requests
    a = {r.record_id: (r.response, r.parsed, r.parse_status, r.correct) for r in iter_records(via_lmms.run_dir)}
    b = {r.record_id: (r.response, r.parsed, r.parse_status, r.correct) for r in iter_records(direct.run_dir)}
    assert a == b and len(a) == 8
    assert accuracies(via_lmms.results) == accuracies(direct.results)
    config = json.loads((via_lmms.run_dir / "config.json").read_text())
    assert config["model"]["id"] == "lmms:openai/wire-model"
    assert config["model_settings"]["model_args"]["model_version"] == "wire-model"
    assert config["model_settings"]["model_args"].get("api_key", "***") == "***"
    assert "test-key" not in (via_lmms.run_dir / "config.json").read_text()


def test_lmms_adapter_with_a_simple_model(lmms_data_root: Path, tmp_path: Path) -> None:
    """lmms-eval's `dummy` model (the simple interface) answers B everywhere: cvbench parses and scores it."""
    outcome = run(
        RunOptions(
            model="lmms:dummy,response=B",
            tasks=("synth-mmvm",),
            data_dir=lmms_data_root,
            candidates=("4",),
            seed=SEED,
            limit=4,
            out=tmp_path / "dummy",
            use_cache=False,
            save_images=False,
            progress=False,
            n_resamples=100,
        )
    )
    records = list(iter_records(outcome.run_dir))
    assert len(records) == 4 and all(r.response == "B" and r.parsed == "B" for r in records)
    assert sum(r.correct for r in records) == sum(r.answer == "B" for r in records)


def test_lmms_adapter_reports_unknown_models_clearly() -> None:
    from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError
    from cvbench.model_adapters.resolve import resolve_model

    with pytest.raises(ModelResolutionError, match="no usable model 'no_such_model'"):
        resolve_model("lmms:no_such_model", ModelOptions())
    with pytest.raises(ModelResolutionError, match="given twice"):
        resolve_model("lmms:dummy,response=B", ModelOptions(extra={"response": "C"}))
