"""`cvbench merge`: join the shard runs of one configuration into one run directory."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cvbench.rundir.format import (
    CONFIG_FILE,
    RESULTS_FILE,
    SAMPLES_FILE,
    RunDirError,
    read_json,
    unique_temp_path,
    write_json_atomic,
)
from cvbench.runner.identity import config_differences
from cvbench.runner.options import RunError
from cvbench.runner.writer import read_records
from cvbench.scoring import metrics as metrics_mod

Shard = tuple[int, int] | None


def merge_runs(run_dirs: Sequence[Path], out: Path) -> dict[str, Any]:
    """Join shard runs into `out`: same configuration apart from the shard, no record id twice.

    Records keep each shard's order, shards in index order; images are hard-linked (copied
    when linking is impossible). Returns the merged results."""
    if not run_dirs:
        raise RunError("merge: no run directories given")
    configs = [read_json(Path(d) / CONFIG_FILE) for d in run_dirs]
    base = configs[0]
    indexed, shard_count = ordered_shards(run_dirs, configs)
    out = Path(out)
    if (out / SAMPLES_FILE).exists() or (out / CONFIG_FILE).exists():
        raise RunError(f"merge: {out} already holds a run; choose an empty --out")
    statuses = [shard_status(Path(d)) for _, d in indexed]
    out.mkdir(parents=True, exist_ok=True)
    write_merged_samples([Path(d) for _, d in indexed], out)
    for _, d in indexed:
        link_images(Path(d), out)
    covered = sorted(s[0] for s, _ in indexed if s is not None)
    config = dict(base)
    config["shard"] = None
    config["merged_from"] = [
        {"run_dir": str(d), "shard": list(s) if s else None, "status": st} for (s, d), st in zip(indexed, statuses)
    ]
    write_json_atomic(out / CONFIG_FILE, config)
    records = read_records(out)
    all_shards = shard_count is not None and covered == list(range(shard_count))
    status = merged_status(statuses, all_shards or shard_count is None, any(r.parse_status == "error" for r in records))
    first = Path(indexed[0][1]) / RESULTS_FILE
    prior = read_json(first) if first.exists() else {}
    stats_cfg = base.get("statistics") or {}
    results = metrics_mod.compute_results(
        records,
        run_seed=int(base.get("seed") or 0),
        model=prior.get("model") or {"id": (base.get("model") or {}).get("id")},
        status=status,
        ci_method=stats_cfg.get("ci_method", "cluster_bootstrap"),
        n_resamples=int(stats_cfg.get("resamples", 2000)),
    )
    results["run"] = {"merged_shards": covered, "shard_count": shard_count}
    write_json_atomic(out / RESULTS_FILE, results)
    return results


def ordered_shards(
    run_dirs: Sequence[Path], configs: Sequence[Mapping[str, Any]]
) -> tuple[list[tuple[Shard, Path]], int | None]:
    """The runs in shard order with their shards, and the shard count; RunError when the runs are
    not shards of one configuration."""
    base = configs[0]
    for d, cfg in zip(run_dirs[1:], configs[1:]):
        diffs = config_differences(base, cfg, ignore=("shard",))
        if diffs:
            raise RunError(f"merge: {d} has a different configuration than {run_dirs[0]}:\n  " + "\n  ".join(diffs))
    shards: list[Shard] = [(int(c["shard"][0]), int(c["shard"][1])) if c.get("shard") else None for c in configs]
    counts = {s[1] for s in shards if s is not None}
    if len(counts) > 1:
        raise RunError(f"merge: shards of different counts: {sorted(counts)}")
    indexed = sorted(zip(shards, (Path(d) for d in run_dirs)), key=lambda p: (p[0] or (0, 0))[0])
    if len({s for s, _ in indexed}) != len(indexed):
        raise RunError("merge: the same shard is given twice: " + ", ".join(str(d) for _, d in indexed))
    return indexed, (next(iter(counts)) if counts else None)


def shard_status(run_dir: Path) -> str | None:
    """The shard's results status; a shard without readable results counts as cancelled."""
    try:
        status = read_json(run_dir / RESULTS_FILE).get("status")
    except RunDirError:
        return "cancelled"
    return str(status) if status is not None else None


def write_merged_samples(run_dirs: Sequence[Path], out: Path) -> None:
    """Every shard's records, in order, into `out`'s samples file (atomic); RunError on a record id twice."""
    seen: dict[str, Path] = {}
    tmp = unique_temp_path(out / SAMPLES_FILE)
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            for d in run_dirs:
                for rec in read_records(d):
                    if rec.record_id in seen:
                        raise RunError(f"merge: record {rec.record_id!r} is in both {seen[rec.record_id]} and {d}")
                    seen[rec.record_id] = d
                    fh.write(rec.to_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, out / SAMPLES_FILE)


def link_images(run_dir: Path, out: Path) -> None:
    """Hard-link (else copy) the shard's content-addressed images into `out`."""
    images = run_dir / "images"
    if not images.is_dir():
        return
    for src in images.rglob("*"):
        if not src.is_file() or src.name.endswith(".tmp"):
            continue
        dst = out / src.relative_to(run_dir)
        if dst.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)


def merged_status(statuses: Sequence[str | None], all_shards: bool, any_error: bool) -> str:
    if any(st == "cancelled" for st in statuses):
        return "cancelled"
    if not all_shards or any(st == "partial" for st in statuses) or any_error:
        return "partial"
    return "complete"
