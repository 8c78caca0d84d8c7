"""Writes realistic run directories (docs/run-format.md) for report / export / leaderboard tests.

A run holds CrossViewBench (17 task types, 4 categories) and/or MMVM (8 cues x 4 candidate
settings) records with prompt images, raw responses, parse outcomes, errors and invalid
samples, plus a results.json whose METRICs are computed from those records (accuracy, a
seeded cluster bootstrap interval, Wilson, chance, unparsed/error/invalid counts).
Everything is deterministic given the seed, so the same sample has the same images in every
run (as it does for real runs of one task with one overlay style).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cvbench.core.seeding import rng_for
from cvbench.core.types import CUES, OPTION_LETTERS, TASK_TYPES
from cvbench.rundir.config import DatasetEntry, ModelBlock, RunConfig, write_config
from cvbench.rundir.format import SampleRecord, image_relpath, write_json_atomic

XSS_NAME = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


@dataclass(frozen=True)
class FakeModel:
    model_id: str
    display_name: str
    access: str  # api | open | native | baseline
    params_b: float | None = None
    skill: float = 0.5  # probability of answering right (beyond the parse / error outcomes)
    unparsed_p: float = 0.05
    error_p: float = 0.02
    response_suffix: str = ""  # appended to every raw response (e.g. an XSS payload)


DEFAULT_MODELS: tuple[FakeModel, ...] = (
    FakeModel("openai:gpt-4o", "GPT-4o", "api", None, skill=0.7),
    FakeModel("vllm:Qwen/Qwen3-VL-8B-Instruct", "Qwen3-VL-8B", "open", 8.0, skill=0.55),
    FakeModel("crossviewer:ckpt", "CrossViewer", "native", 8.0, skill=0.8, unparsed_p=0.0),
    FakeModel("baseline:random", "Random", "baseline", None, skill=0.0, unparsed_p=0.0, error_p=0.0),
)


@dataclass
class _ImageStore:
    root: Path
    cache: dict[tuple[Any, ...], tuple[str, bytes]] = field(default_factory=dict)

    def image(self, key: tuple[Any, ...], seed: int, label: str) -> str:
        """sha256 of a small deterministic PNG for `key`, written under root/images/."""
        if key not in self.cache:
            rng = rng_for(seed, *key, "image")
            h, w = 36, 48
            base = rng.integers(30, 220, size=3)
            arr = np.empty((h, w, 3), dtype=np.uint8)
            arr[:] = base
            y, x = int(rng.integers(4, h - 14)), int(rng.integers(4, w - 14))
            arr[y : y + 10, x : x + 10] = rng.integers(0, 255, size=3)
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="PNG")
            data = buf.getvalue()
            import hashlib

            self.cache[key] = (hashlib.sha256(data).hexdigest(), data)
        sha, data = self.cache[key]
        path = self.root / image_relpath(sha, "png")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return sha


def _outcome(model: FakeModel, rng: np.random.Generator, answer: str, letters: str) -> dict[str, Any]:
    u = rng.random()
    if u < model.error_p:
        return {
            "response": None,
            "parsed": None,
            "parse_status": "error",
            "correct": False,
            "error": {"kind": "server", "message": "HTTP 503 from upstream", "status": 503},
        }
    if u < model.error_p + model.unparsed_p:
        return {
            "response": "I cannot tell which object it is." + model.response_suffix,
            "parsed": None,
            "parse_status": "unparsed",
            "parse_reason": "no option letter",
            "correct": False,
        }
    if model.skill > 0 and rng.random() < model.skill:
        letter = answer
    else:
        letter = letters[int(rng.integers(0, len(letters)))]
    return {
        "response": f"The answer is {letter}." + model.response_suffix,
        "parsed": letter,
        "parse_status": "parsed",
        "correct": letter == answer,
    }


def _cvb_records(
    model: FakeModel, task: str, per_type: int, seed: int, store: _ImageStore, invalid_every: int
) -> Iterable[SampleRecord]:
    i = 0
    for q, (name, category) in TASK_TYPES.items():
        for k in range(per_type):
            i += 1
            sample_id = f"{q.lower()}-{k:04d}"
            n_options = 2 if q in ("Q5", "Q6", "Q10", "Q13") else 4
            letters = OPTION_LETTERS[:n_options]
            data_rng = rng_for(seed, task, sample_id, "data")
            answer = letters[int(data_rng.integers(0, n_options))]
            options = [[ch, f"option {ch.lower()} for {name.lower()}"] for ch in letters]
            question = f"[{q}] {name}: is the object highlighted in red in Image 1 the one in blue in Image 2?"
            prompt = question + "\n\n" + "\n".join(f"{a}. {b}" for a, b in options)
            base: dict[str, Any] = {
                "record_id": f"{task}@all/{sample_id}",
                "task": task,
                "benchmark": "crossviewbench",
                "setting": "all",
                "sample_id": sample_id,
                "cluster": f"scene-{(i * 7) % 11:02d}",
                "slices": {"category": [category], "task_type": [q]},
                "n_options": n_options,
                "answer": answer,
                "prompt_text": prompt,
                "options": options,
                "mode": "native" if model.access == "native" else "overlay",
                "source": f"crossviewbench.jsonl:{i}",
                "protocol": {"style": "overlay-v1", "colours": ["red", "blue"]},
            }
            if invalid_every and i % invalid_every == 0:
                yield SampleRecord(
                    **base,
                    image_sha256=[],
                    parse_status="invalid",
                    invalid="views[1].objects[0].mask_rle: size [480, 640] differs from image 720x1280",
                )
                continue
            images = [store.image((task, "all", sample_id, v), seed, f"Image {v + 1}") for v in range(2)]
            out = _outcome(model, rng_for(seed, model.model_id, task, sample_id, "answer"), answer, letters)
            yield SampleRecord(
                **base,
                image_sha256=images,
                **out,
                usage={"input_tokens": 900, "output_tokens": 6},
                latency_s=0.8,
                attempts=1,
            )


def _bucket(count: int) -> str:
    return "2-4" if count <= 4 else "5-8" if count <= 8 else "9-12" if count <= 12 else "13+"


def _mmvm_records(
    model: FakeModel, task: str, n: int, seed: int, store: _ImageStore, invalid_every: int
) -> Iterable[SampleRecord]:
    codes = [code for code, _ in CUES.values()]
    for setting in ("4", "8", "12", "all"):
        for i in range(n):
            sample_id = str(1000 + i)
            data_rng = rng_for(seed, task, sample_id, "data")
            count = int(data_rng.integers(2, 38))
            cues = sorted({str(c) for c in data_rng.choice(codes, size=int(data_rng.integers(1, 3)))}, key=codes.index)
            shown = count if setting == "all" else min(count, int(setting))
            shown = min(shown, 25)
            n_options = shown + 1  # the candidates plus "None of the above"
            letters = OPTION_LETTERS[:n_options]
            answer = letters[int(rng_for(seed, task, sample_id, setting, "answer").integers(0, shown))]
            ids = sorted(int(x) for x in rng_for(seed, task, sample_id, setting, "ids").permutation(count)[:shown] + 1)
            options = [[letters[j], str(ids[j])] for j in range(shown)] + [
                [letters[shown], "None of the above choices are correct"]
            ]
            prompt = (
                "Here are two images. Which marked object in the second image is the object marked with a "
                "cyan contour in the first image? Please make a choice from the following options: \n"
                + "\n".join(f"{a}. {b}" for a, b in options)
            )
            base: dict[str, Any] = {
                "record_id": f"{task}@{setting}/{sample_id}",
                "task": task,
                "benchmark": "mmvm",
                "setting": setting,
                "sample_id": sample_id,
                "cluster": f"case_{i // 2:03d}",
                "slices": {"cue": cues, "bucket": [_bucket(count)]},
                "n_options": n_options,
                "answer": answer,
                "prompt_text": prompt,
                "options": options,
                "mode": "native" if model.access == "native" else "overlay",
                "source": f"mllm_match_eval_full.tsv:{i + 2}",
                "protocol": {"style": "mmvm-contours-v1", "subset_seed": seed, "candidates_shown": shown},
            }
            if invalid_every and (i + 1) % invalid_every == 0:
                yield SampleRecord(
                    **base,
                    image_sha256=[],
                    parse_status="invalid",
                    invalid="case_x/FRAME01_CAND.json: polygon of odd length",
                )
                continue
            images = [store.image((task, setting, sample_id, v), seed, f"Image {v + 1}") for v in range(2)]
            out = _outcome(model, rng_for(seed, model.model_id, task, setting, sample_id, "answer"), answer, letters)
            yield SampleRecord(
                **base,
                image_sha256=images,
                **out,
                usage={"input_tokens": 1500, "output_tokens": 5},
                latency_s=1.1,
                attempts=1,
            )


# --------------------------------------------------------------------------------------- metrics


def _wilson(k: int, n: int, z: float = 1.959964) -> list[float]:
    if n == 0:
        return [0.0, 0.0]
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return [max(0.0, centre - half), min(1.0, centre + half)]


def metric(records: list[SampleRecord], seed: int, label: str, resamples: int = 200) -> dict[str, Any]:
    n = len(records)
    correct = sum(r.correct for r in records)
    clusters: dict[str, list[int]] = {}
    for r in records:
        clusters.setdefault(r.cluster, []).append(int(r.correct))
    sums = np.array([sum(v) for v in clusters.values()], dtype=float)
    sizes = np.array([len(v) for v in clusters.values()], dtype=float)
    if n and len(clusters) > 1:
        rng = rng_for(seed, label, "bootstrap")
        idx = rng.integers(0, len(clusters), size=(resamples, len(clusters)))
        acc = sums[idx].sum(axis=1) / np.maximum(sizes[idx].sum(axis=1), 1)
        ci = [float(np.quantile(acc, 0.025)), float(np.quantile(acc, 0.975))]
    else:
        ci = _wilson(correct, n)
    unparsed = sum(r.parse_status == "unparsed" for r in records)
    errors = sum(r.parse_status == "error" for r in records)
    return {
        "accuracy": correct / n if n else 0.0,
        "correct": correct,
        "n": n,
        "ci": ci,
        "ci_method": "cluster_bootstrap",
        "wilson": _wilson(correct, n),
        "n_clusters": len(clusters),
        "chance": float(np.mean([r.chance for r in records])) if n else 0.0,
        "unparsed": unparsed,
        "unparsed_rate": unparsed / n if n else 0.0,
        "errors": errors,
        "error_rate": errors / n if n else 0.0,
        "invalid": sum(r.invalid is not None for r in records),
    }


def results_for(records: list[SampleRecord], model: FakeModel, seed: int, status: str = "complete") -> dict[str, Any]:
    evaluations: dict[str, Any] = {}
    flat: dict[str, Any] = {}
    groups: dict[str, list[SampleRecord]] = {}
    for r in records:
        groups.setdefault(f"{r.task}@{r.setting}", []).append(r)
    for key, recs in groups.items():
        slices: dict[str, list[SampleRecord]] = {}
        for r in recs:
            for dim, labels in r.slices.items():
                for label in labels:
                    slices.setdefault(f"{dim}={label}", []).append(r)
        slice_metrics = {s: metric(v, seed, f"{key}/{s}") for s, v in sorted(slices.items())}
        evaluations[key] = {
            "task": recs[0].task,
            "benchmark": recs[0].benchmark,
            "setting": recs[0].setting,
            "overall": metric(recs, seed, key),
            "slices": slice_metrics,
        }
        flat.update({f"{key}/{s}": m for s, m in slice_metrics.items()})
    return {
        "schema": "cvbench.results/1",
        "status": status,
        "model": {
            "id": model.model_id,
            "display_name": model.display_name,
            "access": model.access,
            "params_b": model.params_b,
        },
        "overall": metric(records, seed, "overall"),
        "evaluations": evaluations,
        "slices": flat,
    }


def write_run(
    root: Path,
    model: FakeModel,
    *,
    name: str | None = None,
    cvb_task: str | None = "crossviewbench",
    mmvm_task: str | None = "mmvm",
    cvb_per_type: int = 6,
    mmvm_n: int = 30,
    seed: int = 0,
    invalid_every: int = 23,
    image_store: dict[tuple[Any, ...], tuple[str, bytes]] | None = None,
) -> Path:
    """Write one run directory under `root` and return its path."""
    run_dir = root / (name or model.model_id.replace(":", "_").replace("/", "_"))
    run_dir.mkdir(parents=True, exist_ok=True)
    store = _ImageStore(run_dir, image_store if image_store is not None else {})
    records: list[SampleRecord] = []
    if cvb_task:
        records += list(_cvb_records(model, cvb_task, cvb_per_type, seed, store, invalid_every))
    if mmvm_task:
        records += list(_mmvm_records(model, mmvm_task, mmvm_n, seed, store, invalid_every))
    with open(run_dir / "samples.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(r.to_json() + "\n" for r in records)
    tasks = [t for t in (cvb_task, mmvm_task) if t]
    settings = {t: (("4", "8", "12", "all") if t == mmvm_task else ("all",)) for t in tasks}
    config = RunConfig(  # the shape the current runner writes (cvbench.runner.session build_config)
        created="2026-11-22T02:00:00Z",
        environment={
            "cvbench": "0.1.0",
            "git": {"commit": "6b5af51", "dirty": False},
            "python": "3.11.2",
            "packages": {"numpy": "2.4.6", "pillow": "13.0.0"},
        },
        command=("cvbench", "run", "--model", model.model_id, "--data-dir", str(root / "data")),
        model=ModelBlock(
            id=model.model_id,
            spec=model.model_id,
            info={"display_name": model.display_name, "access": model.access},
            capabilities={},
        ),
        model_settings={"detail": "high"},
        generation={"temperature": 0.0, "max_tokens": 1024, "top_p": None, "seed": seed},
        tasks=tuple(tasks),
        candidates=settings,
        mode="auto",
        style=None,
        seed=seed,
        limit=None,
        shard=None,
        judge=None,
        prompt_settings={"style": "fill", "alpha": 0.5, "thickness": 3},
        datasets={
            t: DatasetEntry(
                benchmark="mmvm" if t == mmvm_task else "crossviewbench",
                fingerprint="sha256:" + "ab" * 8,
                synthetic=False,
                settings=settings[t],
            )
            for t in tasks
        },
        protocol={"crossviewbench": "crossviewbench-protocol/1", "mmvm": "mmvm-protocol/1"},
        runtime={"concurrency": 8, "cache": "default", "save_images": True, "data_dir": str(root / "data")},
        statistics={"ci_method": "cluster_bootstrap", "resamples": 200},
        pricing=None,
    )
    write_config(run_dir, config)
    write_json_atomic(run_dir / "results.json", results_for(records, model, seed))
    return run_dir


def write_runs(root: Path, models: Iterable[FakeModel] = DEFAULT_MODELS, **kwargs: Any) -> list[Path]:
    store: dict[tuple[Any, ...], tuple[str, bytes]] = {}
    return [write_run(root, m, image_store=store, **kwargs) for m in models]
