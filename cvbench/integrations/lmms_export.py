"""Export cvbench tasks as an lmms-eval task folder (``cvbench export-lmms``).

The folder, loaded by lmms-eval with ``--include_path DIR``::

    DIR/cvbench_export.json          the manifest: cvbench version, protocol ids, prompt settings,
                                     seed, candidate settings, data root, dataset fingerprints
    DIR/_cvbench_group.yaml          the group (default name ``cvbench``) listing every task below
    DIR/<lmms_task>.yaml             one task per (cvbench task, candidate setting), e.g.
                                     cvbench_synth_mmvm, cvbench_synth_mmvm_c4, cvbench_synth_crossviewbench
    DIR/data/<lmms_task>.jsonl       the documents: one line per sample (ids, cluster, slices), loaded
                                     offline by lmms-eval's ``dataset_path: json`` builder
    DIR/utils.py                     a thin shim: every hook is a function of
                                     ``cvbench.integrations.lmms_hooks``

Nothing here imports lmms-eval. Images and prompt text are NOT baked into the export: the
hooks render them from the data with cvbench's own ``build_prompt`` when lmms-eval asks, so an
lmms-eval run sees exactly what ``cvbench run`` sends for the same settings and seed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvbench.core import options as declared
from cvbench.core.types import Capabilities, InvalidSample, Sample, TaskSpec
from cvbench.core.version import __version__
from cvbench.prompting.build import PromptSettings
from cvbench.prompting.protocols import crossviewbench as cvb_protocol
from cvbench.prompting.protocols import mmvm as mmvm_protocol
from cvbench.rundir.format import write_bytes_atomic
from cvbench.runner.jobs import item_sample_id, record_id, task_settings
from cvbench.runner.options import RunError
from cvbench.scoring.metrics import natural_key
from cvbench.tasks.loading import dataset_fingerprint, iter_task_samples
from cvbench.tasks.registry import get_task
from cvbench.tasks.slices import SliceError, sample_slices

EXPORT_SCHEMA = "cvbench.lmms-export/1"
MANIFEST_FILE = "cvbench_export.json"
GROUP_FILE = "_cvbench_group.yaml"
DATA_DIR = "data"
UTILS_FILE = "utils.py"
OVERALL_METRIC = "accuracy"
SPLIT = "test"
EXPORT_MODES: tuple[str, ...] = ("auto", "overlay", "prerendered")  # lmms-eval models take no native regions


class ExportError(ValueError):
    """An export that cannot be written; the message says which option or file is wrong."""


@dataclass(frozen=True)
class LmmsExportOptions:
    tasks: tuple[str, ...]
    out: Path
    candidates: tuple[str, ...] | None = None  # MMVM settings; None: "all" only
    style: str | None = declared.STYLE.default
    mode: str = declared.MODE.default
    data_dir: Path | None = None
    seed: int = declared.SEED.default
    limit: int | None = None  # first N samples of each task (as `cvbench run --limit`)
    single_image: bool = False  # stack the views into one image, for single-image models
    max_tokens: int = 1024
    group: str = "cvbench_suite"  # not "cvbench": lmms-eval reads --tasks NAME as a folder when ./NAME exists


@dataclass(frozen=True)
class ExportedTask:
    name: str  # the lmms-eval task name
    task: str  # the cvbench task
    setting: str
    docs: int
    invalid: int
    metrics: tuple[str, ...]


@dataclass(frozen=True)
class ExportSummary:
    out: Path
    group: str
    tasks: tuple[ExportedTask, ...]


# ------------------------------------------------------------------------------ names (pure)


def lmms_task_name(task: str, setting: str) -> str:
    """`synth-mmvm`, `4` -> `cvbench_synth_mmvm_c4`; the setting `all` has no suffix."""
    base = "cvbench_" + re.sub(r"[^A-Za-z0-9]+", "_", task).strip("_").lower()
    return base if setting == "all" else f"{base}_c{setting}"


def slice_metric(slice_name: str) -> str:
    """The lmms-eval metric name of a cvbench slice: `cue=CL` -> `accuracy/cue=CL`."""
    return f"{OVERALL_METRIC}/{slice_name}"


def aggregation_function(slice_name: str | None) -> str:
    """The utils.py function that aggregates one slice (None: the overall accuracy)."""
    if slice_name is None:
        return "aggregate_accuracy"
    dim, _, label = slice_name.partition("=")
    label = label.replace("+", "plus")
    return "aggregate_" + re.sub(r"[^A-Za-z0-9]+", "_", f"{dim}_{label}").strip("_")


def capabilities_for(single_image: bool) -> Capabilities:
    """What the export assumes of the lmms-eval model: images (all views, or one stacked image)."""
    return Capabilities(max_images=1 if single_image else None, native_regions=False, option_logprobs=False)


# ------------------------------------------------------------------------------ documents (pure)


def document(lmms_task: str, spec: TaskSpec, setting: str, item: Sample | InvalidSample) -> dict[str, Any]:
    """One lmms-eval document: identifiers and the slices the sample counts toward.

    Every value is a string so the JSON builder infers one schema for the whole file; slices
    are a JSON string (`{"cue": ["CL", "RP"], "bucket": ["5-8"]}`)."""

    sample_id = item_sample_id(item)
    invalid = ""
    slices: dict[str, list[str]] = {}
    cluster = sample_id
    if isinstance(item, InvalidSample):
        invalid = item.reason
    else:
        cluster = item.cluster
        try:
            slices = sample_slices(item, spec, setting)
        except SliceError as exc:
            invalid = f"slices: {exc}"
    return {
        "lmms_task": lmms_task,
        "task": spec.name,
        "setting": setting,
        "sample_id": sample_id,
        "record_id": record_id(spec.name, setting, sample_id),
        "cluster": cluster,
        "slices": json.dumps(slices, sort_keys=True),
        "invalid": invalid,
        "source": str(item.source),
    }


def slice_names(docs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every `dim=label` slice the documents count toward, in cvbench's display order."""

    names = {f"{dim}={label}" for doc in docs for dim, labels in json.loads(doc["slices"]).items() for label in labels}
    return sorted(names, key=natural_key)


# ------------------------------------------------------------------------------ files (pure renderers)


def _q(value: Any) -> str:
    """A YAML scalar: JSON strings, numbers and booleans are valid YAML flow scalars."""
    return json.dumps(value, ensure_ascii=False)


def render_task_yaml(
    name: str, docs_file: Path, metrics: Sequence[str | None], max_tokens: int, metadata: Mapping[str, Any]
) -> str:
    """One lmms-eval task config. `metrics` holds None for the overall accuracy and slice names."""
    lines = [
        "# Written by `cvbench export-lmms`; regenerate rather than edit (see cvbench_export.json).",
        f"task: {_q(name)}",
        "dataset_path: json",
        "dataset_kwargs:",
        "  data_files:",
        f"    {SPLIT}: {_q(str(docs_file))}",
        f"test_split: {SPLIT}",
        "output_type: generate_until",
        "doc_to_visual: !function utils.doc_to_visual",
        "doc_to_text: !function utils.doc_to_text",
        "doc_to_messages: !function utils.doc_to_messages",
        "doc_to_target: !function utils.doc_to_target",
        "process_results: !function utils.process_results",
        "generation_kwargs:",
        f"  max_new_tokens: {int(max_tokens)}",
        "  temperature: 0",
        "  do_sample: false",
        "  until: []",  # cvbench never cuts an answer at a blank line
        "metric_list:",
    ]
    for slice_name in metrics:
        metric = OVERALL_METRIC if slice_name is None else slice_metric(slice_name)
        lines += [
            f"  - metric: {_q(metric)}",
            f"    aggregation: !function utils.{aggregation_function(slice_name)}",
            "    higher_is_better: true",
        ]
    lines += ["cluster_key: cluster", "score_key: score", "metadata:"]
    lines += [f"  {key}: {_q(value)}" for key, value in metadata.items()]
    return "\n".join(lines) + "\n"


def image_encoding_note(image_format: str) -> list[str]:
    """Comment lines on how lmms-eval re-encodes the images the hooks hand it (facts of lmms-eval
    0.7's OpenAI-style wrappers: LMMS_IMAGE_ENCODE_FORMAT, default PNG; LMMS_IMAGE_JPEG_QUALITY,
    default 85)."""
    lines = [
        "# Images: the hooks hand lmms-eval decoded PIL images holding exactly the pixels `cvbench run`",
        f"# sends with this export's image policy ({image_format}). lmms-eval's OpenAI-style model wrappers",
        "# re-encode every image before sending it, as LMMS_IMAGE_ENCODE_FORMAT says (PNG by default:",
        "# lossless, the same pixels, but PNG encoding dominates the CPU cost of a run).",
    ]
    if image_format == "jpeg":
        lines += [
            "# This export's pixels are already JPEG-decoded: LMMS_IMAGE_ENCODE_FORMAT=PNG keeps them exactly;",
            "# LMMS_IMAGE_ENCODE_FORMAT=JPEG with LMMS_IMAGE_JPEG_QUALITY=90 costs a fraction of PNG but compresses",
            "# them a second time (the model then sees slightly different pixels than cvbench sends).",
        ]
    else:
        lines += [
            "# Keep LMMS_IMAGE_ENCODE_FORMAT=PNG (the default) for the pixels cvbench sends; JPEG changes them.",
        ]
    return lines


def render_group_yaml(group: str, tasks: Sequence[str], metadata: Mapping[str, Any], image_format: str = "png") -> str:
    """The group config. No aggregate over its tasks: the candidate settings share questions."""
    lines = ["# Written by `cvbench export-lmms`.", *image_encoding_note(image_format), f"group: {_q(group)}", "task:"]
    lines += [f"  - {_q(t)}" for t in tasks]
    lines += ["metadata:"] + [f"  {key}: {_q(value)}" for key, value in metadata.items()]
    return "\n".join(lines) + "\n"


def render_utils_py(slices: Sequence[str]) -> str:
    """The shim lmms-eval imports: names bound to cvbench's hooks for this folder, nothing else."""
    lines = [
        '"""lmms-eval hooks of a `cvbench export-lmms` folder: a shim over cvbench.integrations.lmms_hooks.',
        "",
        "Regenerate with `cvbench export-lmms` rather than edit. Needs cvbench importable in the",
        "lmms-eval environment (pip install cvbench).",
        '"""',
        "",
        "from pathlib import Path",
        "",
        "from cvbench.integrations.lmms_hooks import hooks_for",
        "",
        "_hooks = hooks_for(Path(__file__).resolve().parent)",
        "",
        "doc_to_visual = _hooks.doc_to_visual",
        "doc_to_text = _hooks.doc_to_text",
        "doc_to_messages = _hooks.doc_to_messages",
        "doc_to_target = _hooks.doc_to_target",
        "process_results = _hooks.process_results",
        f"{aggregation_function(None)} = _hooks.aggregation(None)",
    ]
    lines += [f"{aggregation_function(s)} = _hooks.aggregation({_q(s)})" for s in slices]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ the export (I/O)


def _write_text(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"), fsync=False)


def _settings_for(spec: TaskSpec, candidates: Sequence[str] | None) -> tuple[str, ...]:

    try:
        return task_settings(spec, candidates)
    except RunError as exc:
        raise ExportError(str(exc)) from None


def clear_previous_export(out: Path) -> None:
    """Make `out` ready for an export: absent, empty, or a previous export (whose files are
    removed, so no stale task of it stays visible to lmms-eval). Anything else is refused."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ExportError(f"--out {out}: exists and is not a folder")
    entries = [p for p in out.iterdir() if p.name != "__pycache__"]
    if not entries:
        return
    manifest = out / MANIFEST_FILE
    if not manifest.is_file():
        raise ExportError(
            f"--out {out}: the folder is not empty and holds no {MANIFEST_FILE} "
            f"(not an earlier cvbench export); choose an empty or new folder"
        )
    try:
        previous = json.loads(manifest.read_text(encoding="utf-8"))
        names = list(previous["tasks"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"{manifest}: unreadable manifest of an earlier export ({exc}); remove the folder") from None
    for name in names:
        for path in (out / f"{name}.yaml", out / DATA_DIR / f"{name}.jsonl"):
            if path.is_file():
                path.unlink()
    for path in (out / GROUP_FILE, out / UTILS_FILE, manifest):
        if path.is_file():
            path.unlink()


def _validate(options: LmmsExportOptions) -> None:
    if not options.tasks:
        raise ExportError("--task: give at least one task (`cvbench tasks` lists them)")
    if options.mode not in EXPORT_MODES:
        raise ExportError(
            f"--mode {options.mode!r}: lmms-eval models take images and text only; choose one of "
            f"{', '.join(EXPORT_MODES)}"
        )
    if options.limit is not None and options.limit < 1:
        raise ExportError("--limit must be at least 1")
    if options.max_tokens < 1:
        raise ExportError("--max-tokens must be at least 1")
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", options.group):
        raise ExportError(f"--group {options.group!r}: use letters, digits, '_', '-' and '.' only")


def prompt_settings_for(options: LmmsExportOptions) -> Any:

    try:
        return PromptSettings(mode=options.mode, style=options.style, seed=options.seed)
    except ValueError as exc:
        raise ExportError(str(exc)) from None


def export_lmms(options: LmmsExportOptions) -> ExportSummary:
    """Write the lmms-eval task folder for `options.tasks` into `options.out`."""

    _validate(options)
    settings = prompt_settings_for(options)
    specs: list[TaskSpec] = []
    for name in options.tasks:
        try:
            specs.append(get_task(name))
        except KeyError as exc:
            raise ExportError(str(exc)) from None
    if len({s.name for s in specs}) != len(specs):
        raise ExportError(f"task listed twice in --task {','.join(options.tasks)}")
    if options.candidates and not any(s.benchmark == "mmvm" for s in specs):
        raise ExportError("--candidates applies to MMVM tasks only, and none was given")

    out = Path(options.out).resolve()
    clear_previous_export(out)
    data_folder = out / DATA_DIR
    data_folder.mkdir(parents=True, exist_ok=True)
    data_dir = Path(options.data_dir).resolve() if options.data_dir is not None else None
    protocol = {"crossviewbench": cvb_protocol.PROTOCOL_ID, "mmvm": mmvm_protocol.PROTOCOL_ID}

    exported: list[ExportedTask] = []
    manifest_tasks: dict[str, Any] = {}
    all_slices: set[str] = set()
    yaml_texts: dict[str, str] = {}
    for spec in specs:
        settings_for_task = _settings_for(spec, options.candidates)
        items: list[Sample | InvalidSample] = []
        for n, item in enumerate(iter_task_samples(spec, data_dir)):
            if options.limit is not None and n >= options.limit:
                break
            items.append(item)
        if not items:
            raise ExportError(f"task {spec.name!r}: no samples to export")
        fingerprint = dataset_fingerprint(spec, data_dir)
        for setting in settings_for_task:
            name = lmms_task_name(spec.name, setting)
            docs = [document(name, spec, setting, item) for item in items]
            docs_file = data_folder / f"{name}.jsonl"
            _write_text(docs_file, "".join(json.dumps(d, ensure_ascii=False, sort_keys=True) + "\n" for d in docs))
            slices = slice_names(docs)
            all_slices.update(slices)
            metadata = {
                "version": 1,
                "cvbench_version": __version__,
                "cvbench_task": spec.name,
                "candidate_setting": setting,
                "protocol": protocol[spec.benchmark],
                "style": settings.style_for(spec.benchmark),
                "prompt_mode": options.mode,
                "seed": options.seed,
            }
            yaml_texts[name] = render_task_yaml(name, docs_file, [None, *slices], options.max_tokens, metadata)
            invalid = sum(1 for d in docs if d["invalid"])
            metrics = (OVERALL_METRIC, *(slice_metric(s) for s in slices))
            exported.append(ExportedTask(name, spec.name, setting, len(docs), invalid, metrics))
            manifest_tasks[name] = {
                "task": spec.name,
                "benchmark": spec.benchmark,
                "setting": setting,
                "docs": f"{DATA_DIR}/{docs_file.name}",
                "n_docs": len(docs),
                "invalid": invalid,
                "dataset_fingerprint": fingerprint,
                "metrics": list(metrics),
            }

    functions = [aggregation_function(s) for s in sorted(all_slices)]
    if len(set(functions)) != len(functions):
        raise ExportError(f"two slices map to the same aggregation function name: {sorted(all_slices)}")
    capabilities = capabilities_for(options.single_image)
    manifest = {
        "schema": EXPORT_SCHEMA,
        "cvbench_version": __version__,
        "group": options.group,
        "tasks": manifest_tasks,
        "data_dir": str(data_dir) if data_dir is not None else None,
        "seed": options.seed,
        "mode": options.mode,
        "style": options.style,
        "candidates": list(options.candidates) if options.candidates else None,
        "limit": options.limit,
        "single_image": options.single_image,
        "max_tokens": options.max_tokens,
        "prompt_settings": settings.as_dict(),
        "capabilities": {"max_images": capabilities.max_images, "native_regions": False},
        "protocol": protocol,
    }
    for name, text in yaml_texts.items():
        _write_text(out / f"{name}.yaml", text)
    group_meta = {"version": 1, "cvbench_version": __version__, "seed": options.seed}
    _write_text(out / GROUP_FILE, render_group_yaml(options.group, list(yaml_texts), group_meta, settings.image.format))
    _write_text(out / UTILS_FILE, render_utils_py(sorted(all_slices, key=_natural)))
    _write_text(out / MANIFEST_FILE, json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    return ExportSummary(out=out, group=options.group, tasks=tuple(exported))


def _natural(name: str) -> list[Any]:

    return natural_key(name)
