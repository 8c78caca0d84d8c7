"""From run specs to units of work: shards with their folders, the job order of a whole run (to
put merged records back in `cvbench run` order) and the dry run's request estimate."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from cvbench.rundir.config import read_config
from cvbench.rundir.format import CONFIG_FILE, RESULTS_FILE, SAMPLES_FILE, RunDirError
from cvbench.rundir.results import read_results
from cvbench.runner.jobs import iter_jobs, task_settings
from cvbench.runner.options import RunOptions, default_out_dir
from cvbench.sweep.spec import RunSpec
from cvbench.tasks.registry import get_task


@dataclass(frozen=True)
class Unit:
    """One Runner invocation: a whole run (shard None) or one shard of it, in its own folder."""

    run: RunSpec
    shard: tuple[int, int] | None

    @property
    def options(self) -> RunOptions:
        if self.shard is None:
            return self.run.options
        return replace(self.run.options, shard=self.shard, out=shard_dir(self.run, self.shard))

    @property
    def name(self) -> str:
        return str(self.run.run_dir) + (f" [shard {self.shard[0]}/{self.shard[1]}]" if self.shard else "")


def shard_dir(run: RunSpec, shard: tuple[int, int]) -> Path:
    """The folder `cvbench run --shard I/N` names, beside the run's own folder."""
    assert run.options.out is not None
    sharded = replace(run.options, shard=shard, out=None)
    return run.options.out.parent / default_out_dir(sharded).name


def run_state(run_dir: Path) -> str:
    """'complete' (nothing to do), 'merged' (a merge of shards that is not complete), 'direct'
    (an unfinished or partial unsharded run: resume it as such), or 'new'."""
    try:
        results = read_results(run_dir) if (run_dir / RESULTS_FILE).exists() else None
        config = read_config(run_dir) if (run_dir / CONFIG_FILE).exists() else None
    except RunDirError:
        return "direct"  # the runner says what is wrong with it
    if results is not None and results.status == "complete" and config is not None:
        return "complete"
    if config is not None and config.merged_from is not None:
        return "merged"
    if config is not None or (run_dir / SAMPLES_FILE).exists():
        return "direct"
    return "new"


def units_for(run: RunSpec, shards: int) -> list[Unit]:
    """A folder that already holds an unsharded run is resumed as one unit (its records are kept);
    else the sweep's shard count applies."""
    state = run_state(run.run_dir)
    if state == "complete":
        return []
    if shards == 1 or state == "direct":
        return [Unit(run, None)]
    return [Unit(run, (i, shards)) for i in range(shards)]


def iter_record_ids(options: RunOptions) -> Iterator[str]:
    """Record ids of an unsharded run in its job order (the runner's order: tasks as listed,
    samples in file order, settings in order; a repeated sample id is an invalid sample)."""

    specs = [get_task(name) for name in options.tasks]
    settings = {spec.name: task_settings(spec, options.candidates) for spec in specs}
    for job in iter_jobs(specs, settings, options.data_dir, options.limit, None):
        yield job.record_id


def count_done(run_dir: Path) -> int:
    """Finished (non-error) records already in a run folder."""
    path = run_dir / SAMPLES_FILE
    if not path.exists():
        return 0
    done = 0
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip() and b'"parse_status": "error"' not in line:
                done += 1
    return done


@dataclass(frozen=True)
class Estimate:
    run: RunSpec
    records: int | None  # None: the data cannot be read here (reason says why)
    done: int
    reason: str = ""

    @property
    def requests(self) -> int | None:
        """Model requests left: one per record not yet finished (a judge call may add one for an
        unparsed answer; retries are not counted)."""
        return None if self.records is None else max(0, self.records - self.done)


def estimate(run: RunSpec, shards: int) -> Estimate:
    folders = [run.run_dir] + ([shard_dir(run, (i, shards)) for i in range(shards)] if shards > 1 else [])
    done = count_done(run.run_dir) if run_state(run.run_dir) != "merged" else 0
    if run_state(run.run_dir) != "complete":
        done = max(done, sum(count_done(f) for f in folders[1:]))
    try:
        records = sum(1 for _ in iter_record_ids(run.options))
    except (KeyError, OSError, ValueError) as exc:
        return Estimate(run, None, done, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return Estimate(run, records, min(done, records))


def matrix_lines(runs: Sequence[RunSpec], estimates: Sequence[Estimate], shards: int) -> list[str]:
    """The dry run's table: one line per run, then the totals."""
    lines = []
    for run, est in zip(runs, estimates):
        o = run.options
        axes = {
            "model": o.model,
            "tasks": ",".join(o.tasks),
            "candidates": ",".join(o.candidates) if o.candidates else "all",
            "style": o.style or "default",
            "mode": o.mode,
            "seed": o.seed,
        }
        if o.ablation is not None:
            axes["ablation"] = o.ablation
        policy = {k: getattr(o, k) for k in ("image_format", "max_side", "max_pixels") if getattr(o, k) is not None}
        if policy:
            axes["image"] = json.dumps(policy, sort_keys=True)
        size = f"{est.records} records, {est.done} done" if est.records is not None else f"? records ({est.reason})"
        lines.append(f"{run.run_dir}  " + " ".join(f"{k}={v}" for k, v in axes.items()) + f"  [{size}]")
    known = [e for e in estimates if e.records is not None]
    total = sum(e.requests or 0 for e in known)
    unknown = len(estimates) - len(known)
    lines.append(
        f"{len(runs)} runs x {shards} shard(s); about {total} model requests to send"
        + (f" (+ {unknown} runs whose data is not here)" if unknown else "")
    )
    return lines
