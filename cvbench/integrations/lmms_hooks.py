"""The functions an exported lmms-eval task folder calls (through its ``utils.py`` shim).

lmms-eval hands these hooks the documents of ``DIR/data/<task>.jsonl`` (sample ids and slices,
see ``lmms_export``) and the model's answers; everything else is cvbench's own code:

- ``doc_to_visual`` / ``doc_to_text`` / ``doc_to_messages``: the sample loaded by cvbench's
  loaders and rendered by ``build_prompt`` with the export's settings, seed and capabilities;
  the images are the prompt's exact pixels (decoded from the bytes cvbench would send).
- ``process_results``: the answer scored by the runner's own record logic (strict parser,
  ``answered_record`` / ``invalid_record``); lmms-eval's failure placeholders
  (``[LMMS_EVAL_REQUEST_FAILED ...]``) become error records, never answers.
- ``aggregation(slice)``: cvbench's ``metric`` over the records of that slice (accuracy;
  errors, unparsed and invalid samples count as wrong, as in ``results.json``).

The per-document values are dicts ``{"score": 0|1, "cluster": ..., "record": {...}}`` for the
documents in the metric's slice and ``None`` for the others, so lmms-eval's clustered standard
error (``cluster_key: cluster``) sees only the slice's documents.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, cast

from cvbench.core.locations import default_response_cache
from cvbench.core.types import (
    Capabilities,
    InvalidSample,
    RenderedPrompt,
    Sample,
    TaskSpec,
)
from cvbench.integrations.lmms_export import EXPORT_SCHEMA, MANIFEST_FILE, OVERALL_METRIC, slice_metric
from cvbench.model_adapters.lmms import pil_images, response_from_text
from cvbench.prompting.build import PromptError, PromptSettings, build_prompt
from cvbench.prompting.encoding import ImagePolicy
from cvbench.rundir.format import SampleRecord
from cvbench.runner.jobs import Job, item_sample_id
from cvbench.runner.jsonable import jsonable
from cvbench.runner.prompt_cache import prompt_key
from cvbench.runner.records import answered_record, invalid_record, score_response
from cvbench.runner.render_store import open_render_store
from cvbench.scoring.metrics import metric
from cvbench.tasks.loading import dataset_fingerprint, iter_task_samples
from cvbench.tasks.registry import get_task

# prompts kept in memory with their image bytes (lmms-eval asks for text and images separately);
# beyond these a document's prompt comes from the on-disk render store, not from rendering again
FULL_PROMPT_CACHE = 16
# SampleRecord fields carried in each per-document metric value (the prompt text stays in lmms-eval's own log)
RECORD_FIELDS: tuple[str, ...] = (
    "record_id",
    "task",
    "benchmark",
    "setting",
    "sample_id",
    "cluster",
    "slices",
    "n_options",
    "answer",
    "image_sha256",
    "options",
    "mode",
    "parsed",
    "parse_status",
    "parse_reason",
    "correct",
    "error",
    "invalid",
    "source",
)


class HookError(RuntimeError):
    """The export folder and the document disagree (a stale or hand-edited export)."""


@dataclass(frozen=True)
class _Rendered:
    """A document's prompt without image bytes, kept for scoring."""

    prompt: RenderedPrompt | None  # images dropped
    image_sha256: tuple[str, ...]
    error: str | None  # "prompt: ..." when the sample could not be rendered


def compact_record(record: Any) -> dict[str, Any]:
    data = asdict(record)
    return {key: data[key] for key in RECORD_FIELDS}


def record_from_value(value: Mapping[str, Any]) -> Any:

    data = dict(value["record"])
    data.setdefault("prompt_text", "")
    return SampleRecord.from_dict(data)


def slice_accuracy(items: Sequence[Any], run_seed: int, name: str) -> float:
    """cvbench's accuracy over the per-document values of one metric (None entries are outside the slice)."""

    records = [record_from_value(v) for v in items if isinstance(v, Mapping) and v.get("record") is not None]
    if not records:
        return float("nan")
    return float(metric(records, run_seed, name, ci_method="wilson")["accuracy"])


class ExportHooks:
    """The hooks of one export folder: samples are loaded once, prompts rendered on demand."""

    def __init__(self, folder: Path, manifest: Mapping[str, Any]) -> None:

        self.folder = folder
        self.manifest = manifest
        ps = manifest["prompt_settings"]
        self.seed = int(manifest["seed"])
        self.settings = PromptSettings(
            mode=ps["mode"],
            style=ps["style"],
            alpha=float(ps["alpha"]),
            thickness=int(ps["thickness"]),
            seed=int(ps["seed"]),
            image=ImagePolicy(
                format=ps["image"]["format"],
                jpeg_quality=int(ps["image"]["jpeg_quality"] or 90),
                max_side=ps["image"]["max_side"],
                max_pixels=ps["image"]["max_pixels"],
            ),
        )
        self.capabilities = Capabilities(max_images=manifest["capabilities"]["max_images"], native_regions=False)
        self.data_dir = Path(manifest["data_dir"]) if manifest.get("data_dir") else None
        self._lock = threading.RLock()
        self._specs: dict[str, TaskSpec] = {}
        self._samples: dict[str, dict[str, Sample | InvalidSample]] = {}
        self._full: OrderedDict[tuple[str, str], RenderedPrompt] = OrderedDict()
        self._rendered: dict[tuple[str, str], _Rendered] = {}
        self._fingerprints: dict[str, str] = {}
        self._store: Any = None  # the render store, opened on first use (False: turned off)

    # lmms-eval deep-copies task configs (whose hooks are bound methods of this object) and may
    # pickle them: both resolve to the one instance of the folder instead of copying locks and caches.
    def __deepcopy__(self, memo: dict[int, Any]) -> ExportHooks:
        return self

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return hooks_for, (str(self.folder),)

    @classmethod
    def load(cls, folder: Path) -> ExportHooks:

        path = folder / MANIFEST_FILE
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise HookError(f"{path}: missing; re-run `cvbench export-lmms` for this folder") from None
        except ValueError as exc:
            raise HookError(f"{path}: invalid JSON ({exc})") from None
        if manifest.get("schema") != EXPORT_SCHEMA:
            raise HookError(
                f"{path}: schema {manifest.get('schema')!r} is not {EXPORT_SCHEMA!r}; "
                f"re-export with this cvbench version"
            )
        return cls(folder, manifest)

    # -- samples and prompts -------------------------------------------------------------

    def _task_entry(self, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        entry = self.manifest["tasks"].get(doc.get("lmms_task"))
        if entry is None or entry["task"] != doc.get("task") or entry["setting"] != doc.get("setting"):
            raise HookError(
                f"{self.folder}: document {doc.get('record_id')!r} does not belong to this export "
                f"(task {doc.get('lmms_task')!r}); re-export the folder"
            )
        return cast("Mapping[str, Any]", entry)

    def _spec(self, task: str) -> TaskSpec:

        if task not in self._specs:
            self._specs[task] = get_task(task)
        return self._specs[task]

    def _item(self, doc: Mapping[str, Any]) -> Sample | InvalidSample:

        self._task_entry(doc)
        task = str(doc["task"])
        with self._lock:
            if task not in self._samples:
                index: dict[str, Sample | InvalidSample] = {}
                for loaded in iter_task_samples(self._spec(task), self.data_dir):
                    index.setdefault(item_sample_id(loaded), loaded)
                self._samples[task] = index
            item = self._samples[task].get(str(doc["sample_id"]))
        if item is None:
            raise HookError(
                f"task {task}: sample {doc['sample_id']!r} is not in the data under "
                f"{self.data_dir or 'the default data root'}; the data changed since the export"
            )
        return item

    def _render(self, doc: Mapping[str, Any]) -> tuple[RenderedPrompt | None, _Rendered]:
        """(full prompt or None when not cached, the light copy); renders at most once per call."""

        key = (str(doc["lmms_task"]), str(doc["sample_id"]))
        with self._lock:
            full = self._full.get(key)
            if full is not None:
                self._full.move_to_end(key)
                return full, self._rendered[key]
        item = self._item(doc)
        if doc.get("invalid") or isinstance(item, InvalidSample):
            light = _Rendered(None, (), None)
            with self._lock:
                self._rendered[key] = light
            return None, light
        try:
            prompt = self._stored_or_built(item, str(doc["task"]), str(doc["setting"]), build_prompt)
        except PromptError as exc:
            light = _Rendered(None, (), f"prompt: {exc}")
            with self._lock:
                self._rendered[key] = light
            return None, light
        shown = RenderedPrompt(replace(prompt.prompt, images=()), prompt.answer, prompt.protocol)
        light = _Rendered(shown, tuple(i.sha256 for i in prompt.images), None)
        with self._lock:
            self._rendered[key] = light
            self._full[key] = prompt
            while len(self._full) > FULL_PROMPT_CACHE:
                self._full.popitem(last=False)
        return prompt, light

    def _stored_or_built(
        self, sample: Sample, task: str, setting: str, build: Callable[..., RenderedPrompt]
    ) -> RenderedPrompt:
        """From the on-disk render store (shared with `cvbench run`; bounded, LRU) when there,
        else rendered and stored: each document is rendered once however lmms-eval orders its
        calls, and not again by a later lmms-eval process, run or model on the same settings."""

        store = self._render_store()
        key = None
        if store is not None:
            with self._lock:
                if task not in self._fingerprints:
                    self._fingerprints[task] = dataset_fingerprint(self._spec(task), self.data_dir)
                fingerprint = self._fingerprints[task]
            settings = jsonable(self.settings.as_dict())
            key = prompt_key(sample, task, setting, fingerprint, settings, self.capabilities)
            found = store.get(key) if key is not None else None
            if found is not None:
                return cast(RenderedPrompt, found)
        rendered = build(sample, self.settings, self.capabilities, setting)
        if store is not None and key is not None:
            store.put(key, rendered, jsonable(dict(rendered.protocol)))
        return rendered

    def _render_store(self) -> Any:

        with self._lock:
            if self._store is None:
                self._store = open_render_store(default_response_cache()) or False
            return self._store or None

    def prompt(self, doc: Mapping[str, Any]) -> RenderedPrompt | None:
        """The full prompt cvbench sends for this document (None: invalid sample)."""
        full, _ = self._render(doc)
        return full

    def _light(self, doc: Mapping[str, Any]) -> _Rendered:
        key = (str(doc["lmms_task"]), str(doc["sample_id"]))
        with self._lock:
            light = self._rendered.get(key)
        if light is None:
            _, light = self._render(doc)
        return light

    # -- the lmms-eval hooks -------------------------------------------------------------

    def doc_to_visual(self, doc: Mapping[str, Any]) -> list[Any]:
        prompt = self.prompt(doc)
        return [] if prompt is None else pil_images(prompt.images)

    def doc_to_text(self, doc: Mapping[str, Any]) -> str:
        light = self._light(doc)
        if light.prompt is None:
            reason = doc.get("invalid") or light.error or "invalid sample"
            return f"[cvbench: sample {doc['record_id']} cannot be shown: {reason}]"
        return light.prompt.text

    def doc_to_messages(self, doc: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One user turn: the images in order, then the text (and the system turn, if any)."""
        prompt = self.prompt(doc)
        messages: list[dict[str, Any]] = []
        if prompt is not None and prompt.system:
            messages.append({"role": "system", "content": [{"type": "text", "text": prompt.system}]})
        content: list[dict[str, Any]] = [{"type": "image", "url": image} for image in self.doc_to_visual(doc)]
        content.append({"type": "text", "text": self.doc_to_text(doc)})
        messages.append({"role": "user", "content": content})
        return messages

    def doc_to_target(self, doc: Mapping[str, Any]) -> str:
        light = self._light(doc)
        return (light.prompt.answer or "") if light.prompt is not None else ""

    def record(self, doc: Mapping[str, Any], text: str | None) -> Any:
        """The SampleRecord `cvbench run` would write for this document and answer text."""

        item = self._item(doc)
        spec = self._spec(str(doc["task"]))
        job = Job(0, spec, str(doc["setting"]), item, str(doc["record_id"]))
        sample = item if isinstance(item, Sample) else None
        if isinstance(item, InvalidSample):
            return invalid_record(job, item.reason)
        if doc.get("invalid"):
            return invalid_record(job, str(doc["invalid"]), sample=sample)
        slices = json.loads(doc["slices"])
        light = self._light(doc)
        if light.prompt is None:
            return invalid_record(job, light.error or "prompt: not rendered", sample=sample, slices=slices)
        response = response_from_text(text)
        parsed = score_response(response, light.prompt.prompt)
        record = answered_record(job, item, slices, light.prompt, response, parsed, False, None)
        return replace(record, image_sha256=list(light.image_sha256))

    def process_results(self, doc: Mapping[str, Any], results: Sequence[Any]) -> dict[str, Any]:
        text = results[0] if results else None
        if isinstance(text, list):  # a multi-round backend: the last round answers
            text = text[-1] if text else None
        record = self.record(doc, None if text is None else str(text))
        value = {
            "score": 1 if record.correct else 0,
            "cluster": f"{record.task}/{record.cluster}",
            "record": compact_record(record),
        }

        out: dict[str, Any] = {}
        doc_slices = {f"{dim}={label}" for dim, labels in record.slices.items() for label in labels}
        for metric_name in self._task_entry(doc)["metrics"]:
            if metric_name == OVERALL_METRIC:
                out[metric_name] = value
            else:
                in_slice = any(metric_name == slice_metric(s) for s in doc_slices)
                out[metric_name] = value if in_slice else None
        return out

    def aggregation(self, slice_name: str | None) -> Callable[[Sequence[Any]], float]:
        """The aggregation of one metric: cvbench's accuracy over that slice's records."""
        name = "overall" if slice_name is None else slice_name

        def aggregate(items: Sequence[Any]) -> float:
            return slice_accuracy(items, self.seed, name)

        aggregate.__name__ = "cvbench_accuracy" if slice_name is None else f"cvbench_accuracy[{slice_name}]"
        return aggregate


_HOOKS: dict[tuple[Path, int], ExportHooks] = {}
_HOOKS_LOCK = threading.Lock()


def hooks_for(folder: Path | str) -> ExportHooks:
    """The hooks of an export folder, loaded once per process and export (lmms-eval executes
    utils.py once per hook; a re-export in the same process gets fresh hooks)."""

    path = Path(folder).resolve()
    try:
        stamp = (path / MANIFEST_FILE).stat().st_mtime_ns
    except FileNotFoundError:
        stamp = -1
    with _HOOKS_LOCK:
        hooks = _HOOKS.get((path, stamp))
        if hooks is None:
            hooks = ExportHooks.load(path)
            _HOOKS[(path, stamp)] = hooks
        return hooks
