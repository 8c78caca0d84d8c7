"""The local executor: the sweep's runs one after another in this process, each exactly as
`cvbench run` does it (no extra dependency)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from cvbench.sweep.execute import finish_run, run_unit
from cvbench.sweep.held_models import HeldModels
from cvbench.sweep.plan import units_for
from cvbench.sweep.progress import SweepProgress
from cvbench.sweep.spec import SweepSpec


@dataclass(frozen=True)
class SweepOutcome:
    statuses: dict[str, str]  # run dir -> complete | partial | cancelled | failed
    failures: dict[str, str]  # run dir -> why

    @property
    def exit_code(self) -> int:
        return 0 if all(s == "complete" for s in self.statuses.values()) else 3


def run_local(sweep: SweepSpec, progress: SweepProgress) -> SweepOutcome:
    """Every run in turn; an in-process model is loaded once for all the runs that use it."""
    models = HeldModels()
    try:
        return _run_all(sweep, progress, models)
    finally:
        asyncio.run(models.close())


def _run_all(sweep: SweepSpec, progress: SweepProgress, models: HeldModels) -> SweepOutcome:
    statuses: dict[str, str] = {}
    failures: dict[str, str] = {}
    for run in sweep.runs:
        units = units_for(run, sweep.shards)
        if not units:
            statuses[str(run.run_dir)] = "complete"
            progress.skip(run, "complete")
            continue
        failed = None
        for unit in units:
            progress.unit_started(unit)
            result = replace(run_unit(unit.options, resolve_model=models.resolve), model_loads=models.counts())
            progress.unit_finished(unit, result)
            if result.status in ("failed", "cancelled"):
                failed = result.failure or result.status
                break
        status = finish_run(run, units) if failed is None else "failed"
        statuses[str(run.run_dir)] = status
        if failed is not None:
            failures[str(run.run_dir)] = failed
        progress.run_finished(run, status)
        if failed == "cancelled":  # Ctrl+C: the runner stopped cleanly; so does the sweep
            break
    return SweepOutcome(statuses, failures)
