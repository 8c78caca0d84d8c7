"""What both executors share: evaluating one unit with the Runner (the same code as `cvbench
run`), and turning a run's finished shards into its run folder."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvbench.rundir.config import read_config
from cvbench.rundir.format import CONFIG_FILE, RESULTS_FILE, SAMPLES_FILE, RunDirError
from cvbench.rundir.results import read_results
from cvbench.runner.merge import merge_runs
from cvbench.runner.options import RunError, RunOptions
from cvbench.runner.runlock import RunDirBusyError, RunDirLock
from cvbench.runner.session import Runner
from cvbench.runner.writer import reorder_samples
from cvbench.sweep.plan import Unit, iter_record_ids, shard_dir
from cvbench.sweep.spec import RunSpec

STAGING_SUFFIX = ".merging"


@dataclass(frozen=True)
class UnitResult:
    status: str  # complete | partial | cancelled | failed
    new_records: int = 0
    resumed_records: int = 0
    errors: int = 0  # records that hold a model error (retried by a rerun)
    failure: str | None = None
    # where the unit ran and how often each in-process model was loaded there so far (docs/scaling.md)
    worker: str | None = None
    model_loads: Mapping[str, int] = field(default_factory=dict)


def count_errors(run_dir: Path) -> int:
    path = run_dir / SAMPLES_FILE
    if not path.exists():
        return 0
    with open(path, "rb") as fh:
        return sum(1 for line in fh if b'"parse_status": "error"' in line)


def wait_for_lock(run_dir: Path, timeout_s: float) -> None:
    """Wait until no process holds the run folder. A worker that Ray (or a dead driver's
    clean-up) is still ending may hold it for a moment after its unit was handed to another."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            RunDirLock.acquire(run_dir).release()
            return
        except RunDirBusyError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def run_unit(
    options: RunOptions, lock_wait_s: float = 0.0, resolve_model: Callable[..., Any] | None = None
) -> UnitResult:
    """`cvbench run` with these options, in this process (models resolved by `resolve_model`, e.g.
    a worker's `HeldModels`). A run that cannot start is a failed unit (the message says why), not
    an exception: the other runs of the sweep go on."""

    assert options.out is not None
    try:
        if lock_wait_s > 0:
            wait_for_lock(options.out, lock_wait_s)
        outcome = Runner(options, resolve_model=resolve_model).execute()
    except (RunError, RunDirError, RunDirBusyError, ValueError, OSError) as exc:
        return UnitResult("failed", failure=str(exc))
    status = outcome.status if outcome.failure is None else "failed"
    errors = count_errors(options.out)
    return UnitResult(status, outcome.new_records, outcome.resumed_records, errors, outcome.failure)


def finish_run(run: RunSpec, units: Sequence[Unit]) -> str:
    """After the run's units ended: merge its shards (if it had any) into the run folder in
    `cvbench run`'s record order. Returns the run's status.

    The merge is written to a staging folder beside the run folder, ordered there and then
    renamed into place, so a driver killed at any point leaves either no run folder or a whole
    one; a rerun merges again from the shards, which stay as they are."""
    if not units or units[0].shard is None:
        return final_status(run.run_dir)
    shards = units[0].shard[1]
    staging = run.run_dir.with_name(run.run_dir.name + STAGING_SUFFIX)
    if staging.exists():
        shutil.rmtree(staging)
    merge_runs([shard_dir(run, (i, shards)) for i in range(shards)], staging)
    reorder_samples(staging, list(iter_record_ids(run.options)))
    if run.run_dir.exists():  # an earlier, not complete merge (ours: it names its shards)
        merged = read_config(run.run_dir).merged_from if (run.run_dir / CONFIG_FILE).exists() else None
        if merged is None and any(run.run_dir.iterdir()):
            raise RunError(f"{run.run_dir} holds something other than a merge of its shards; move it away")
        shutil.rmtree(run.run_dir)
    staging.rename(run.run_dir)
    return final_status(run.run_dir)


def final_status(run_dir: Path) -> str:
    """The status results.json gives (complete | partial | cancelled), "cancelled" without one."""
    path = run_dir / RESULTS_FILE
    return read_results(run_dir).status if path.exists() else "cancelled"
