"""How shortcut-resistant is the synthetic benchmark? (issue 23, item 2)

Generates a fresh synthetic CrossViewBench (N questions per task type) and MMVM set (N cases per
cue) from a seed that is not the built-in one, runs the four no-model baselines (`random`,
`first-option`, `mask-heuristic`, `text-only`) through the real runner in-process, and writes,
per baseline, task type, MMVM cue and candidate setting: accuracy, its 95% interval (Wilson;
clustered by scene for every CrossViewBench figure, by case for MMVM figures pooled over the
candidate settings: `figure`), and chance (the mean of 1/options), plus whether each meets the
targets (interval's lower bound below chance + 10 points on every type and cue; overall accuracy
within chance + 5 points).

    PYTHONPATH=$PWD .venv/bin/python bench/synthetic_validity.py [--per-type 50] [--seed 7]

Writes bench/results/synthetic_validity.json (machine and load recorded with the figures).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.heldout_shortcut import Outcome, heldout_results, probe_results, scenes_of
from bench.heldout_shortcut_mmvm import heldout_mmvm
from cvbench.core.types import TASK_TYPES
from cvbench.rundir.format import SampleRecord, iter_records
from cvbench.runner.options import RunOptions
from cvbench.runner.session import run
from cvbench.scoring.stats import effective_n, wilson, wilson_bounds, z_for
from cvbench.tasks.registry import get_task
from cvbench.tasks.synthetic import generate_crossviewbench, generate_mmvm
from cvbench.tasks.synthetic.builtin import CVB_GENERATOR_VERSION, MMVM_GENERATOR_VERSION
from cvbench.tasks.synthetic.mmvm import TSV_NAME

BASELINES = ("random", "first-option", "mask-heuristic", "text-only")
TASKS = ("synth-crossviewbench", "synth-mmvm")
GROUP_MARGIN = 0.10  # every type / cue: the interval's lower bound below chance + 10 points
OVERALL_MARGIN = 0.05  # overall: accuracy within chance + 5 points
RESULTS = REPO_ROOT / "bench" / "results" / "synthetic_validity.json"


def summarise(
    records: Iterable[SampleRecord], pooled: bool = False, scenes: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A figure over `records`; `pooled` when each MMVM case appears once per candidate setting;
    `scenes` (sample_id -> scene) for CrossViewBench records, clustered by scene."""
    recs = list(records)
    right, chances = [r.correct for r in recs], [r.chance for r in recs]
    if scenes is not None:
        return figure(right, chances, [scene_for(scenes, r.sample_id) for r in recs], unit="scenes")
    return figure(right, chances, [r.sample_id for r in recs] if pooled else None)


def scene_for(scenes: Mapping[str, str], sample_id: str) -> str:
    if sample_id not in scenes:
        raise SystemExit(f"sample {sample_id!r} is not in the generated crossviewbench.jsonl (no scene for it)")
    return scenes[sample_id]


def figure(
    right: Sequence[bool], chances: Sequence[float], clusters: Sequence[str] | None = None, unit: str = "cases"
) -> dict[str, Any]:
    """Accuracy, interval and targets of one figure. With `clusters` the interval is Wilson on the
    effective sample size n / deff, the design effect deff being the cluster-robust variance over
    the binomial one, clipped to [1, n / clusters] (`cvbench.scoring.stats.effective_n`);
    else Wilson over the records. The clusters are MMVM cases for a figure pooled over the
    settings, where every case counts once per setting (`unit` "cases"), or the scenes of
    CrossViewBench questions, 3-6 to a scene ("scenes"); the figure names `interval` = `unit`,
    the number of clusters under `unit`, and `effective_n`."""
    res = summary(sum(right), len(right), sum(chances))
    if clusters is not None and right:
        sums, counts = cluster_totals(right, clusters)
        n_eff = float(effective_n(sums, counts))
        bounds = wilson_bounds(np.asarray(sum(right) / len(right)), np.asarray(n_eff), z_for(0.95))
        low, high = float(bounds[0]), float(bounds[1])
        res.update(ci95=[round(low, 4), round(high, 4)], interval=unit)
        res.update({unit: len(counts)})
        res.update(effective_n=round(n_eff, 1), meets_group_target=low < res["chance"] + GROUP_MARGIN)
    return res


def cluster_totals(right: Sequence[bool], clusters: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster: how many of its records are right, and how many it has."""
    index: dict[str, int] = {}
    for c in clusters:
        index.setdefault(c, len(index))
    sums, counts = np.zeros(len(index)), np.zeros(len(index))
    for r, c in zip(right, clusters):
        sums[index[c]] += r
        counts[index[c]] += 1
    return sums, counts


def summary(correct: int, n: int, chance_sum: float) -> dict[str, Any]:
    chance = chance_sum / n if n else 0.0
    low, high = wilson(correct, n) if n else (0.0, 0.0)
    acc = correct / n if n else 0.0
    return {
        "n": n,
        "correct": correct,
        "accuracy": round(acc, 4),
        "ci95": [round(low, 4), round(high, 4)],
        "interval": "wilson",
        "chance": round(chance, 4),
        "meets_group_target": low < chance + GROUP_MARGIN,
        "meets_overall_target": acc <= chance + OVERALL_MARGIN,
    }


def groups_of(records: Sequence[SampleRecord]) -> dict[str, dict[str, list[SampleRecord]]]:
    """Per dimension: label -> records. CrossViewBench by task type; MMVM by cue and by cue within
    each candidate setting, and by setting."""
    out: dict[str, dict[str, list[SampleRecord]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r.benchmark == "crossviewbench":
            for t in r.slices.get("task_type", []):
                out["task_type"][t].append(r)
        else:
            out["mmvm_setting"][r.setting].append(r)
            for cue in r.slices.get("cue", []):
                out["mmvm_cue"][cue].append(r)
                out["mmvm_cue_setting"][f"{cue}@{r.setting}"].append(r)
    return out


def evaluate(
    model: str, data: Path, work: Path, tasks: Sequence[str] = TASKS, scenes: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """One baseline's figures; `scenes` (sample_id -> scene of the generated CrossViewBench set)
    clusters the CrossViewBench figures by scene."""
    out = work / "runs" / model
    if out.exists():
        shutil.rmtree(out)
    candidates = tuple(dict.fromkeys(s for t in tasks for s in get_task(t).candidate_settings))
    started = time.perf_counter()
    outcome = run(
        RunOptions(
            model=model,
            tasks=tuple(tasks),
            data_dir=data,
            candidates=candidates,
            seed=0,
            concurrency=4,
            out=out,
            use_cache=False,
            save_images=False,
            progress=False,
            argv=("bench/synthetic_validity.py",),
        )
    )
    if outcome.status != "complete":
        raise SystemExit(f"{model}: run ended {outcome.status} (see {out})")
    records = list(iter_records(out))
    by_bench = {b: rs for b in ("crossviewbench", "mmvm") if (rs := [r for r in records if r.benchmark == b])}
    result: dict[str, Any] = {
        "seconds": round(time.perf_counter() - started, 1),
        "overall": {
            b: summarise(rs, pooled=b == "mmvm", scenes=_scenes(scenes) if b == "crossviewbench" else None)
            for b, rs in by_bench.items()
        },
    }
    for dim, labels in groups_of(records).items():
        by = _scenes(scenes) if dim == "task_type" else None
        result[dim] = {label: summarise(rs, dim == "mmvm_cue", by) for label, rs in sorted(labels.items())}
    return result


def _scenes(scenes: Mapping[str, str] | None) -> Mapping[str, str]:
    if scenes is None:
        raise ValueError("CrossViewBench records need the scenes of their generated set (evaluate(scenes=...))")
    return scenes


HELDOUT = "heldout-shortcut"  # bench/heldout_shortcut.py: a pixel rule the generator does not steer by
PROBE = "heldout-probe"  # bench/heldout_shortcut.py: a classifier over region statistics, fitted on another seed


def heldout(jsonl: Path, train: Path | None = None) -> dict[str, Any]:
    """The held-out rule on `jsonl`, or (with `train`) the probe fitted on `train` and scored on it."""
    started = time.perf_counter()
    outcomes = heldout_results(jsonl) if train is None else probe_results(train, jsonl)
    by_type: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_type[o.question_type].append(o)
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "overall": {"crossviewbench": scene_figure(outcomes)},
        "task_type": {t: scene_figure(group) for t, group in sorted(by_type.items())},
    }


def scene_figure(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """A figure over held-out outcomes, clustered by scene."""
    return figure([o.right for o in outcomes], [o.chance for o in outcomes], [o.scene for o in outcomes], unit="scenes")


def _overall_line(model: str, what: str, s: dict[str, Any]) -> str:
    over = 100 * (s["accuracy"] - s["chance"] - OVERALL_MARGIN)
    return (
        f"{model} {what} {100 * s['accuracy']:.1f}% (chance {100 * s['chance']:.1f}%): "
        f"{abs(over):.1f} points {'over' if over > 0 else 'within'} chance + {100 * OVERALL_MARGIN:.0f}"
    )


def _group_line(model: str, dim: str, label: str, s: dict[str, Any]) -> str:
    over = 100 * (s["ci95"][0] - s["chance"] - GROUP_MARGIN)
    return (
        f"{model} {dim} {label}: {100 * s['accuracy']:.1f}% [{100 * s['ci95'][0]:.1f}, "
        f"{100 * s['ci95'][1]:.1f}] chance {100 * s['chance']:.1f}%: lower bound {abs(over):.1f} points "
        f"{'over' if over >= 0 else 'within'} chance + {100 * GROUP_MARGIN:.0f}"
    )


def judged(results: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(misses, own-cue figures). A miss is a group or overall figure off its target. A held-out
    MMVM rule's figures on the cues it reads itself (its `own_cues`, heldout_shortcut_mmvm.OWN_CUES)
    are listed apart, never as misses, with its overall MMVM figure (which holds them); its
    `overall_off_cue` figure (cases without an own cue) is held to the overall target instead."""
    missed, own_lines = [], []
    for model, res in results.items():
        own = set(res.get("own_cues", ()))
        for bench, s in res["overall"].items():
            if own and bench == "mmvm":
                own_lines.append(_overall_line(model, "mmvm overall (own cues included)", s))
            elif not s["meets_overall_target"]:
                missed.append(_overall_line(model, bench + " overall", s))
        for bench, s in res.get("overall_off_cue", {}).items():
            if not s["meets_overall_target"]:
                missed.append(_overall_line(model, bench + " overall off its own cues", s))
        for dim in ("task_type", "mmvm_cue", "mmvm_cue_setting"):
            for label, s in res.get(dim, {}).items():
                if dim != "task_type" and label.split("@")[0] in own:
                    own_lines.append(_group_line(model, dim, label, s) + " (own cue)")
                elif not s["meets_group_target"]:
                    missed.append(_group_line(model, dim, label, s))
    return missed, own_lines


def misses(results: dict[str, Any]) -> list[str]:
    """Every group or overall figure that misses its target, as readable lines."""
    return judged(results)[0]


def combine(paths: Sequence[Path]) -> dict[str, Any]:
    """One report from halves measured apart (e.g. `--tasks synth-crossviewbench` and `--tasks
    synth-mmvm`): each baseline's figures joined, each half's data, machine and load kept."""
    halves = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    results: dict[str, Any] = {}
    for half in halves:
        for model, res in half["results"].items():
            merged = results.setdefault(model, {"seconds": 0.0, "overall": {}})
            merged["seconds"] = round(merged["seconds"] + res.get("seconds", 0.0), 1)
            for key, value in res.items():
                if isinstance(value, dict):
                    merged.setdefault(key, {}).update(value)
                elif key != "seconds":
                    merged[key] = value
    report = {k: v for k, v in halves[0].items() if k in ("schema", "targets")}
    report["halves"] = {
        str(p.name): {k: half[k] for k in ("data", "generation_seconds", "machine", "load_avg")}
        for p, half in zip(paths, halves)
    }
    report["generation_seconds"] = {k: v for half in halves for k, v in half["generation_seconds"].items()}
    report["results"] = results
    report["misses"], report["own_cue"] = judged(results)
    return report


def _join(into: dict[str, Any], res: dict[str, Any]) -> None:
    """One baseline's figures from two measurements: per-group tables joined, seconds added."""
    for key, value in res.items():
        if isinstance(value, dict):
            into.setdefault(key, {}).update(value)
        elif key == "seconds":
            into[key] = round(into.get(key, 0.0) + value, 1)
        else:
            into[key] = value


def _reused(folder: Path, seed: int, per_type: int, types: Sequence[str] | None) -> Path:
    """A CrossViewBench set generated before, checked to be the one asked for (its manifest)."""
    manifest = json.loads((folder / "MANIFEST.json").read_text(encoding="utf-8"))["generator"]
    want = {"set": "crossviewbench", "seed": seed, "per_type": per_type, "version": CVB_GENERATOR_VERSION}
    got = {k: manifest.get(k) for k in want}
    same_types = manifest.get("types") in ((None, list(TASK_TYPES)) if types is None else (list(types),))
    if got != want or not same_types:
        raise SystemExit(f"{folder / 'MANIFEST.json'}: generator {manifest}, expected {want} and types {types}")
    return folder


def _reused_mmvm(folder: Path, seed: int, per_cue: int) -> Path:
    """An MMVM set generated before, checked to be the one asked for (its manifest); its TSV."""
    manifest = json.loads((folder / "MANIFEST.json").read_text(encoding="utf-8"))["generator"]
    want = {"set": "mmvm", "seed": seed, "per_cue": per_cue, "version": MMVM_GENERATOR_VERSION}
    if {k: manifest.get(k) for k in want} != want:
        raise SystemExit(f"{folder / 'MANIFEST.json'}: generator {manifest}, expected {want}")
    return folder / TSV_NAME


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--combine", nargs="+", type=Path, help="join reports measured apart into --out (measures nothing)")
    ap.add_argument("--per-type", type=int, default=50, help="questions per task type and MMVM cases per cue")
    ap.add_argument("--seed", type=int, default=7, help="data seed (not the built-in 0)")
    ap.add_argument("--models", default=",".join(BASELINES))
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma-separated: synth-crossviewbench, synth-mmvm")
    ap.add_argument(
        "--types",
        default=None,
        help="comma-separated CrossViewBench task types (e.g. Q7,Q8): generate and measure only these (quick checks)",
    )
    ap.add_argument(
        "--probe-seed",
        type=int,
        default=8,
        help="seed of a second CrossViewBench set that the held-out probe is fitted on (-1: no probe)",
    )
    ap.add_argument(
        "--probe-per-type",
        type=int,
        default=None,
        help="questions per task type of the probe's training set (default: --per-type)",
    )
    ap.add_argument(
        "--reuse",
        type=Path,
        nargs="+",
        metavar="FOLDER",
        help="CrossViewBench sets generated before (their MANIFEST.json must name --seed, --per-type, --types, "
        "and for a second folder --probe-seed): measured instead of generating them again",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--probe-train-per-cue",
        type=int,
        default=12,
        help="MMVM cases per cue of the set (seed --probe-seed) the MMVM probe is fitted on",
    )
    ap.add_argument(
        "--reuse-mmvm",
        type=Path,
        nargs="+",
        metavar="FOLDER",
        help="MMVM sets generated before (`cvbench data synth --benchmark mmvm`; their MANIFEST.json must name "
        "--seed and --per-type, and for a second folder --probe-seed and --probe-train-per-cue): used instead "
        "of generating them again (e.g. generated side by side on two cores)",
    )
    args = ap.parse_args(argv)
    if args.combine:
        combined = combine(args.combine)
        args.out.write_text(json.dumps(combined, indent=2) + "\n", encoding="utf-8")
        print(f"{len(combined['misses'])} misses; written to {args.out}")
        for line in combined["misses"]:
            print("  " + line)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")  # the generator says when it relaxes
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="cvbench-validity-") as tmp:
        work = Path(tmp)
        data = work / "data"
        tasks = args.tasks.split(",")
        types = args.types.split(",") if args.types else None
        if types is not None and tasks != ["synth-crossviewbench"]:
            raise SystemExit("--types needs --tasks synth-crossviewbench")
        seconds: dict[str, float] = {}
        probe_per_type = args.probe_per_type or args.per_type
        sizes = ((args.seed, args.per_type), (args.probe_seed, probe_per_type))
        reuse = [_reused(p, s, n, types) for p, (s, n) in zip(args.reuse or [], sizes)]
        for task in tasks:
            started = time.perf_counter()
            folder = data / get_task(task).data_subdir
            if task == "synth-crossviewbench" and reuse:
                shutil.copytree(reuse[0], folder)
                continue
            if task == "synth-mmvm" and args.reuse_mmvm:
                shutil.copytree(_reused_mmvm(args.reuse_mmvm[0], args.seed, args.per_type).parent, folder)
                continue
            if task == "synth-crossviewbench":
                generate_crossviewbench(folder, args.per_type, args.seed, types)
            else:
                generate_mmvm(folder, args.per_type, args.seed)
            seconds[task] = round(time.perf_counter() - started, 1)
        jsonl = data / get_task("synth-crossviewbench").data_subdir / "crossviewbench.jsonl"
        scenes = scenes_of(jsonl) if "synth-crossviewbench" in tasks else None
        results = {m: evaluate(m, data, work, tasks, scenes) for m in args.models.split(",")}
        if "synth-crossviewbench" in tasks:
            results[HELDOUT] = heldout(jsonl)
            if args.probe_seed >= 0:
                if args.probe_seed == args.seed:
                    raise SystemExit("--probe-seed must differ from --seed (the probe is scored on unseen scenes)")
                started = time.perf_counter()
                if len(reuse) > 1:
                    train = reuse[1] / "crossviewbench.jsonl"
                else:
                    train = generate_crossviewbench(work / "probe-train", probe_per_type, args.probe_seed, types)
                    seconds["probe-train-crossviewbench"] = round(time.perf_counter() - started, 1)
                results[PROBE] = heldout(jsonl, train)
        if "synth-mmvm" in tasks:  # held-out MMVM rules and a probe fitted on another seed (heldout_shortcut_mmvm.py)
            mmvm_tsv = data / get_task("synth-mmvm").data_subdir / TSV_NAME
            train_tsv = None
            if args.probe_seed >= 0:
                if args.probe_seed == args.seed:
                    raise SystemExit("--probe-seed must differ from --seed (the probe is scored on unseen cases)")
                if args.reuse_mmvm and len(args.reuse_mmvm) > 1:
                    train_tsv = _reused_mmvm(args.reuse_mmvm[1], args.probe_seed, args.probe_train_per_cue)
                else:
                    started = time.perf_counter()
                    train_tsv = generate_mmvm(work / "probe-train-mmvm", args.probe_train_per_cue, args.probe_seed)
                    seconds["probe-train-mmvm"] = round(time.perf_counter() - started, 1)
            for name, res in heldout_mmvm(mmvm_tsv, train_tsv, figure).items():
                _join(results.setdefault(name, {}), res)  # "heldout-probe" may already hold the CVB probe
    report = {
        "schema": "cvbench.bench.synthetic_validity/1",
        "data": {
            "seed": args.seed,
            "per_type": args.per_type,
            "per_cue": args.per_type,
            "types": types,
            "probe_train_seed": args.probe_seed if "synth-crossviewbench" in tasks and args.probe_seed >= 0 else None,
            "probe_train_per_type": args.probe_per_type or args.per_type,
            "generator": CVB_GENERATOR_VERSION if "synth-crossviewbench" in tasks else None,
            "mmvm_generator": MMVM_GENERATOR_VERSION if "synth-mmvm" in tasks else None,
            "mmvm_probe_train": {"seed": args.probe_seed, "per_cue": args.probe_train_per_cue}
            if "synth-mmvm" in tasks and args.probe_seed >= 0
            else None,
            "reused": [str(p) for p in [*(args.reuse or []), *(args.reuse_mmvm or [])]],
        },
        "targets": {
            "group": "every type, cue and cue@setting: 95% lower bound < chance + 0.10",
            "overall": "per benchmark: accuracy <= chance + 0.05",
            "intervals": "Wilson on n / design effect (cvbench.scoring.stats.effective_n; deff clipped to [1, "
            "n / clusters]): every CrossViewBench figure with each scene a cluster (interval: scenes), MMVM "
            "figures pooled over the four candidate settings (overall, per cue) with each case a cluster "
            "(interval: cases); the per-setting MMVM figures: Wilson over records (interval: wilson)",
            "own_cue": "a held-out MMVM rule's figures on the cues it reads itself (own_cues) are listed under "
            "own_cue, not as misses; its other figures leave those cases out and overall_off_cue is held to the "
            "overall target",
        },
        "generation_seconds": seconds,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "load_avg": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]},
        "results": results,
        "misses": [],
        "own_cue": [],
    }
    report["misses"], report["own_cue"] = judged(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for model, res in results.items():
        for bench, s in res["overall"].items():
            print(f"{model:15s} {bench:15s} {100 * s['accuracy']:5.1f}% (chance {100 * s['chance']:.1f}%)")
    for model, res in results.items():
        by_type = res.get("task_type", {})
        cells = [f"{t} {100 * (s['accuracy'] - s['chance']):+.0f}" for t, s in by_type.items()]
        if cells:
            print(f"{model:15s} vs chance: " + ", ".join(cells))
    print(f"{len(report['misses'])} misses; written to {args.out}")
    for line in report["misses"]:
        print("  " + line)
    print(f"{len(report['own_cue'])} own-cue figures (not misses):")
    for line in report["own_cue"]:
        print("  " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
