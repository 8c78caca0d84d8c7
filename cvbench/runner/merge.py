"""`cvbench merge`: join the shard runs of one configuration into one run directory."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
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


def merge_runs(run_dirs: Sequence[Path], out: Path) -> dict[str, Any]:
    """Join shard runs into `out`: same configuration apart from the shard, no record id twice.

    Records keep each shard's order, shards in index order; images are hard-linked (copied
    when linking is impossible). Returns the merged results."""
    if not run_dirs:
        raise RunError("merge: no run directories given")
    configs = [read_json(Path(d) / CONFIG_FILE) for d in run_dirs]
    base = configs[0]
    for d, cfg in zip(run_dirs[1:], configs[1:]):
        diffs = config_differences(base, cfg, ignore=("shard",))
        if diffs:
            raise RunError(f"merge: {d} has a different configuration than {run_dirs[0]}:\n  " + "\n  ".join(diffs))
    shards = [tuple(c["shard"]) if c.get("shard") else None for c in configs]
    counts = {s[1] for s in shards if s is not None}
    if len(counts) > 1:
        raise RunError(f"merge: shards of different counts: {sorted(counts)}")
    indexed = sorted(zip(shards, run_dirs), key=lambda p: (p[0] or (0, 0))[0])
    if len({s for s, _ in indexed}) != len(indexed):
        raise RunError("merge: the same shard is given twice: " + ", ".join(str(d) for _, d in indexed))
    out = Path(out)
    if (out / SAMPLES_FILE).exists() or (out / CONFIG_FILE).exists():
        raise RunError(f"merge: {out} already holds a run; choose an empty --out")
    statuses = []
    for _, d in indexed:
        try:
            statuses.append(read_json(Path(d) / RESULTS_FILE).get("status"))
        except RunDirError:
            statuses.append("cancelled")
    out.mkdir(parents=True, exist_ok=True)
    seen: dict[str, Path] = {}
    tmp = unique_temp_path(out / SAMPLES_FILE)
    with open(tmp, "w", encoding="utf-8") as fh:
        for _, d in indexed:
            for rec in read_records(Path(d)):
                if rec.record_id in seen:
                    fh.close()
                    tmp.unlink()
                    raise RunError(f"merge: record {rec.record_id!r} is in both {seen[rec.record_id]} and {d}")
                seen[rec.record_id] = Path(d)
                fh.write(rec.to_json() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, out / SAMPLES_FILE)
    for _, d in indexed:
        images = Path(d) / "images"
        if not images.is_dir():
            continue
        for src in images.rglob("*"):
            if not src.is_file() or src.name.endswith(".tmp"):
                continue
            dst = out / src.relative_to(d)
            if dst.exists():
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
    shard_count = next(iter(counts)) if counts else None
    covered = sorted(s[0] for s, _ in indexed if s is not None)
    all_shards = shard_count is not None and covered == list(range(shard_count))
    config = dict(base)
    config["shard"] = None
    config["merged_from"] = [
        {"run_dir": str(d), "shard": list(s) if s else None, "status": st} for (s, d), st in zip(indexed, statuses)
    ]
    write_json_atomic(out / CONFIG_FILE, config)
    records = read_records(out)
    if any(st == "cancelled" for st in statuses):
        status = "cancelled"
    elif (
        (shard_count is not None and not all_shards)
        or any(st == "partial" for st in statuses)
        or any(r.parse_status == "error" for r in records)
    ):
        status = "partial"
    else:
        status = "complete"
    prior = read_json(Path(indexed[0][1]) / RESULTS_FILE) if (Path(indexed[0][1]) / RESULTS_FILE).exists() else {}
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
