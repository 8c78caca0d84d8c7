"""Prompt snapshots: exactly what a model receives, per protocol and mode, committed as text.

For a fixed set of synthetic samples (generated from the golden suite's fixed seed) and each
case below -- CrossViewBench overlay in every style, CrossViewBench native, MMVM overlay at all
candidates and @4, MMVM native, MMVM pre-rendered, and single-image concatenation -- the
snapshot holds the prompt text, system prompt, options, answer letter, every image's sha256,
size and format, the native-region digest and the protocol record. `tests/golden/prompts/
<case>.json` holds the committed copy; any change is a diff (`cvbench regress --suite prompts`,
`--update` to accept it on purpose).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvbench.core.types import Capabilities, InvalidSample, RenderedPrompt, Sample
from cvbench.prompting.build import PromptSettings, build_prompt
from cvbench.runner.jsonable import jsonable
from cvbench.tasks.loading import iter_task_samples
from cvbench.tasks.registry import get_task

SNAPSHOT_SCHEMA = "cvbench.prompt-snapshot/1"

# Which samples are snapshotted: the first sample (in sample-id order) of these task types, and
# MMVM samples with more than 4 candidates (so @4 really subsets) and with at most 4.
CVB_TASK_TYPES = ("Q1", "Q4", "Q6", "Q10", "Q17")
MMVM_LARGE = 2  # samples with more than 4 candidates
MMVM_SMALL = 1  # samples with at most 4 candidates (unchanged by @4)

MULTI_IMAGE = Capabilities()
SINGLE_IMAGE = Capabilities(max_images=1)
NATIVE = Capabilities(native_regions=True)


@dataclass(frozen=True)
class SnapshotCase:
    name: str  # file stem in tests/golden/prompts/
    benchmark: str
    mode: str
    capabilities: Capabilities
    style: str | None = None  # None: the benchmark's default style
    setting: str = "all"


CASES: tuple[SnapshotCase, ...] = (
    SnapshotCase("crossviewbench-overlay-contour", "crossviewbench", "overlay", MULTI_IMAGE, "contour"),
    SnapshotCase("crossviewbench-overlay-mask", "crossviewbench", "overlay", MULTI_IMAGE, "mask"),
    SnapshotCase("crossviewbench-overlay-box", "crossviewbench", "overlay", MULTI_IMAGE, "box"),
    SnapshotCase("crossviewbench-overlay-marks", "crossviewbench", "overlay", MULTI_IMAGE, "marks"),
    SnapshotCase("crossviewbench-native", "crossviewbench", "native", NATIVE),
    SnapshotCase("crossviewbench-single-image", "crossviewbench", "overlay", SINGLE_IMAGE),
    SnapshotCase("mmvm-overlay", "mmvm", "overlay", MULTI_IMAGE),
    SnapshotCase("mmvm-overlay-4", "mmvm", "overlay", MULTI_IMAGE, setting="4"),
    SnapshotCase("mmvm-native", "mmvm", "native", NATIVE),
    SnapshotCase("mmvm-prerendered", "mmvm", "prerendered", MULTI_IMAGE),
    SnapshotCase("mmvm-single-image", "mmvm", "overlay", SINGLE_IMAGE),
)


class SnapshotError(RuntimeError):
    """The snapshot samples could not be chosen or rendered; the message says why."""


def choose_samples(benchmark: str, items: Iterable[Sample | InvalidSample]) -> list[Sample]:
    """The fixed snapshot samples of one benchmark (pure; invalid samples are an error)."""
    samples = []
    for item in items:
        if isinstance(item, InvalidSample):
            raise SnapshotError(f"synthetic sample failed to load: {item}")
        samples.append(item)
    samples.sort(key=lambda s: s.sample_id)
    if benchmark == "crossviewbench":
        chosen = []
        for task_type in CVB_TASK_TYPES:
            first = next((s for s in samples if s.task_type == task_type), None)
            if first is None:
                raise SnapshotError(f"the synthetic CrossViewBench has no {task_type} sample")
            chosen.append(first)
        return chosen
    large = [s for s in samples if (s.candidate_count or len(s.views[-1].regions)) > 4][:MMVM_LARGE]
    small = [s for s in samples if (s.candidate_count or len(s.views[-1].regions)) <= 4][:MMVM_SMALL]
    if len(large) < MMVM_LARGE:
        raise SnapshotError(f"the synthetic MMVM has fewer than {MMVM_LARGE} samples with more than 4 candidates")
    return large + small


def portable(value: Any, data_root: Path | None) -> Any:
    """`value` with absolute paths under `data_root` written as `<data>/...`, so that snapshots do
    not depend on where the data was generated."""
    if data_root is None:
        return value
    prefix = str(data_root).rstrip("/") + "/"
    if isinstance(value, str):
        return "<data>/" + value[len(prefix) :] if value.startswith(prefix) else value
    if isinstance(value, list):
        return [portable(v, data_root) for v in value]
    if isinstance(value, dict):
        return {k: portable(v, data_root) for k, v in value.items()}
    return value


def prompt_snapshot(prompt: RenderedPrompt, data_root: Path | None = None) -> dict[str, Any]:
    """Everything the model sees, with images as hashes (pure)."""

    native = None
    if prompt.native is not None:
        n = prompt.native
        native = {
            "digest": n.digest(),
            "views": [
                {
                    "view_id": v.view_id,
                    "image_shape": list(v.image.shape),
                    "region_ids": list(v.region_ids),
                    "mask_areas": [int(m.sum()) for m in v.masks],
                }
                for v in n.views
            ],
            "refs": [[r.view_index, r.region_index] for r in n.refs],
            "token_counts": list(n.token_counts) if n.token_counts is not None else None,
            "query": [n.query.view_index, n.query.region_index] if n.query is not None else None,
            "candidate_order": list(n.candidate_order),
        }
    return {
        "sample_id": prompt.sample_id,
        "mode": prompt.mode,
        "setting": prompt.setting,
        "system": prompt.system,
        "text": prompt.text,
        "options": [[o.letter, o.text] for o in prompt.options],
        "answer": prompt.answer,
        "images": [
            {"label": i.label, "mime": i.mime, "width": i.width, "height": i.height, "identity": i.sha256}
            for i in prompt.images
        ],
        "native": native,
        "protocol": portable(jsonable(dict(prompt.protocol)), data_root),
        "content_digest": prompt.prompt.content_digest(),
    }


def case_snapshot(case: SnapshotCase, samples: Sequence[Sample], data_root: Path | None = None) -> dict[str, Any]:

    settings = PromptSettings(mode=case.mode, style=case.style)
    prompts = [
        prompt_snapshot(build_prompt(s, settings, case.capabilities, setting=case.setting), data_root) for s in samples
    ]
    return {
        "schema": SNAPSHOT_SCHEMA,
        "case": case.name,
        "benchmark": case.benchmark,
        "prompt_settings": settings.as_dict(),
        "capabilities": {
            "max_images": case.capabilities.max_images,
            "native_regions": case.capabilities.native_regions,
            "image_formats": list(case.capabilities.image_formats),
        },
        "setting": case.setting,
        "prompts": prompts,
    }


def build_snapshots(data_root: Path, cases: Sequence[SnapshotCase] = CASES) -> dict[str, dict[str, Any]]:
    """Snapshots of every case, by file stem, from the suite's synthetic data under `data_root`."""

    tasks = {"crossviewbench": "synth-crossviewbench", "mmvm": "synth-mmvm"}
    samples: Mapping[str, list[Sample]] = {
        benchmark: choose_samples(benchmark, iter_task_samples(get_task(task), Path(os.path.abspath(data_root))))
        for benchmark, task in tasks.items()
    }
    root = Path(os.path.abspath(data_root))
    return {case.name: case_snapshot(case, samples[case.benchmark], root) for case in cases}
