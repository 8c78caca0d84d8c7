"""The Ray executor: the sweep's units (runs, or shards of runs) on the actors of a Ray cluster.

Each [[models]] entry gets `workers` actors, each asking Ray for that model's resources (a GPU
for in-process models, a CPU slot for API and server models); an actor evaluates one unit at a
time with the Runner, exactly as `cvbench run --shard I/N` would, and commits every finished
record to that shard's folder as it arrives (the runner's own crash safety). The driver only
schedules, watches and, when all shards of a run are done, merges them into the run folder in
`cvbench run`'s record order.

A worker process that dies is restarted by Ray and its unit retried (max_restarts and
max_task_retries unlimited); the retried unit resumes its shard folder, so what is lost is the
requests in flight at the moment of death, and those whose answer reached the response cache
are not even re-sent. A driver that dies takes its actors with it; rerunning the sweep resumes
every folder the same way. Paths given to the workers are absolute: the cluster's nodes must
see the sweep's folders (and the data) at the same paths, as on a shared file system.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Any

from cvbench.core.locations import default_response_cache
from cvbench.sweep.execute import UnitResult, finish_run, run_unit
from cvbench.sweep.held_models import HeldModels
from cvbench.sweep.local import SweepOutcome
from cvbench.sweep.plan import Unit, units_for
from cvbench.sweep.progress import SweepProgress
from cvbench.sweep.spec import RunSpec, SweepSpec

RAY_HINT = "the Ray executor needs Ray: pip install 'cvbench[ray]'"
LOCK_WAIT_S = 120.0  # how long a retried unit waits for its dead predecessor's lock to go
WHERE_EVERY_S = 1.0


class SweepExecutorError(RuntimeError):
    pass


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SweepExecutorError(RAY_HINT) from None
    return ray


class ShardWorker:
    """The actor's body (made remote in run_ray, so importing this module needs no Ray). It keeps
    its in-process model loaded from one unit to the next (`HeldModels`): one load per worker."""

    def __init__(self) -> None:
        self.models = HeldModels()

    def where(self) -> dict[str, Any]:
        return {"host": socket.gethostname(), "pid": os.getpid()}

    def run(self, options: Any) -> UnitResult:
        result = run_unit(options, lock_wait_s=LOCK_WAIT_S, resolve_model=self.models.resolve)
        where = self.where()
        return replace(result, worker=f"{where['host']}:{where['pid']}", model_loads=self.models.counts())


def absolute(sweep: SweepSpec, local_cluster: bool) -> SweepSpec:
    """Paths the workers can open from their own working folder. On a cluster of this machine
    the default response cache is named too, so the workers share the driver's cache."""

    def fix(run: RunSpec) -> RunSpec:
        o = run.options
        cache = o.cache or (default_response_cache() if local_cluster and o.use_cache else None)
        return replace(
            run,
            options=replace(
                o,
                out=Path(os.path.abspath(o.out)) if o.out else None,
                data_dir=Path(os.path.abspath(o.data_dir)) if o.data_dir else None,
                cache=Path(os.path.abspath(cache)) if cache else None,
            ),
        )

    return replace(sweep, root=Path(os.path.abspath(sweep.root)), runs=tuple(fix(r) for r in sweep.runs))


def connect(ray: Any, address: str | None) -> None:
    if ray.is_initialized():
        return
    if address:
        try:
            ray.init(address=address, log_to_driver=False, logging_level="WARNING")
        except ConnectionError as exc:
            raise SweepExecutorError(f"--ray-address {address}: {exc}") from None
    else:  # a cluster of this machine, for this sweep only
        ray.init(include_dashboard=False, log_to_driver=False, logging_level="WARNING")


def run_ray(sweep: SweepSpec, progress: SweepProgress, address: str | None) -> SweepOutcome:
    ray = import_ray()
    connect(ray, address)
    local_cluster = address is None
    sweep = absolute(sweep, local_cluster)
    remote = ray.remote(ShardWorker)
    actors: dict[int, list[Any]] = {}
    queues: dict[int, deque[Unit]] = {}
    units_of: dict[Path, list[Unit]] = {}
    left: dict[Path, int] = {}
    statuses: dict[str, str] = {}
    failures: dict[str, str] = {}
    for run in sweep.runs:
        units = units_for(run, sweep.shards)
        if not units:
            statuses[str(run.run_dir)] = "complete"
            progress.skip(run, "complete")
            continue
        units_of[run.run_dir], left[run.run_dir] = units, len(units)
        queues.setdefault(run.model.index, deque()).extend(units)
    for entry in sweep.models:
        if entry.index not in queues:
            continue
        cpus, gpus = entry.placement()
        count = min(entry.workers, len(queues[entry.index]))
        actors[entry.index] = [
            remote.options(
                num_cpus=cpus, num_gpus=gpus, max_restarts=-1, max_task_retries=-1, max_concurrency=2
            ).remote()
            for _ in range(count)
        ]
    idle = {k: list(v) for k, v in actors.items()}
    inflight: dict[Any, tuple[Unit, Any, int]] = {}
    asking: dict[Any, Unit] = {}  # where() calls in flight: which worker process holds a unit
    last_ask = 0.0
    try:
        while inflight or any(queues.values()):
            for index, queue in queues.items():
                while queue and idle[index]:
                    actor, unit = idle[index].pop(), queue.popleft()
                    inflight[actor.run.remote(unit.options)] = (unit, actor, index)
                    progress.unit_started(unit)
                if not queue and idle[index]:  # this model is done: its slots go to the others
                    for actor in idle[index]:
                        ray.kill(actor)
                        actors[index].remove(actor)
                    idle[index] = []
            if time.monotonic() - last_ask >= WHERE_EVERY_S:
                busy = {id(u): u for u in asking.values()}
                for unit, actor, _ in inflight.values():
                    if id(unit) not in busy:
                        asking[actor.where.remote()] = unit
                last_ask = time.monotonic()
            ready, _ = ray.wait(list(inflight) + list(asking), num_returns=1, timeout=WHERE_EVERY_S)
            for ref in ready:
                if ref in asking:
                    unit = asking.pop(ref)
                    with contextlib.suppress(Exception):  # a worker restarting: asked again next round
                        progress.worker(unit, ray.get(ref))
                    continue
                unit, actor, index = inflight.pop(ref)
                idle[index].append(actor)
                try:
                    result = ray.get(ref)
                except Exception as exc:  # anything the worker raised ends this unit only
                    result = UnitResult("failed", failure=f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
                progress.unit_finished(unit, result)
                run_done(unit.run, result, units_of, left, statuses, failures, progress)
            progress.tick()
    finally:
        for group in actors.values():
            for actor in group:
                ray.kill(actor)
    return SweepOutcome(statuses, failures)


def run_done(
    run: RunSpec,
    result: UnitResult,
    units_of: dict[Path, list[Unit]],
    left: dict[Path, int],
    statuses: dict[str, str],
    failures: dict[str, str],
    progress: SweepProgress,
) -> None:
    """Bookkeeping after a unit: a failed unit fails its run; the last unit merges it."""
    key = str(run.run_dir)
    if result.status in ("failed", "cancelled"):
        failures.setdefault(key, result.failure or result.status)
    left[run.run_dir] -= 1
    if left[run.run_dir]:
        return
    status = "failed" if key in failures else finish_run(run, units_of[run.run_dir])
    statuses[key] = status
    progress.run_finished(run, status)
