"""Progress across the whole sweep: runs done/running/left, records/s, errors, on stderr as
plain lines (one per event, and one every few seconds while work runs) and in a status file
(JSON, rewritten atomically) that also says which worker (host, pid) holds each running unit."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from cvbench.rundir.format import SAMPLES_FILE, write_json_atomic
from cvbench.sweep.execute import UnitResult
from cvbench.sweep.plan import Unit
from cvbench.sweep.spec import RunSpec

TICK_S = 5.0


class LineCounter:
    """New lines appended to a file since the last look (reads only what was added)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.total = 0

    def new_lines(self) -> int:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return 0
        self.offset += len(data)
        lines = data.count(b"\n")
        self.total += lines
        return lines


@dataclass
class SweepProgress:
    runs: Sequence[RunSpec]
    status_path: Path | None
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    started: float = field(default_factory=time.monotonic)
    records: int = 0  # records written by this invocation
    errors: int = 0
    finished: dict[str, str] = field(default_factory=dict)  # run dir -> status
    running: dict[str, dict[str, Any]] = field(default_factory=dict)  # unit name -> {host, pid, run}
    started_runs: set[str] = field(default_factory=set)
    counters: dict[str, LineCounter] = field(default_factory=dict)
    last_line: float = 0.0
    model_loads: dict[str, dict[str, int]] = field(default_factory=dict)  # worker -> model -> loads

    def skip(self, run: RunSpec, status: str) -> None:
        self.finished[str(run.run_dir)] = status

    def unit_started(self, unit: Unit, where: dict[str, Any] | None = None) -> None:
        out = unit.options.out
        assert out is not None
        self.running[unit.name] = {"run": str(unit.run.run_dir), **(where or {})}
        self.started_runs.add(str(unit.run.run_dir))
        self.counters[unit.name] = LineCounter(out / SAMPLES_FILE)
        self.counters[unit.name].new_lines()  # lines kept from an earlier session are not progress
        self.counters[unit.name].total = 0
        self.emit(f"start {unit.name}" + (f" on {where['host']} pid {where['pid']}" if where else ""))

    def worker(self, unit: Unit, where: dict[str, Any]) -> None:
        if unit.name in self.running and self.running[unit.name].get("pid") != where.get("pid"):
            self.running[unit.name].update(where)
            self.write_status()

    def unit_finished(self, unit: Unit, result: UnitResult) -> None:
        self.running.pop(unit.name, None)
        counter = self.counters.pop(unit.name, None)
        # the live count is an estimate (a file rewritten in job order, a retried unit); the
        # unit's own count replaces it
        self.records += result.new_records - (counter.total if counter is not None else 0)
        self.errors += result.errors
        if result.model_loads:
            self.model_loads[result.worker or "local"] = dict(result.model_loads)
        why = f": {result.failure}" if result.failure else ""
        self.emit(f"{result.status} {unit.name} ({result.new_records} new, {result.resumed_records} resumed){why}")

    def run_finished(self, run: RunSpec, status: str) -> None:
        self.finished[str(run.run_dir)] = status

    def tick(self) -> None:
        if time.monotonic() - self.last_line >= TICK_S:
            self.emit(None)

    def counts(self) -> dict[str, Any]:
        live = sum(c.new_lines() for c in self.counters.values())
        self.records += live
        elapsed = max(time.monotonic() - self.started, 1e-9)
        running_runs = self.started_runs - set(self.finished)
        return {
            "runs": len(self.runs),
            "done": sum(1 for s in self.finished.values() if s == "complete"),
            "unfinished": sum(1 for s in self.finished.values() if s != "complete"),
            "running": len(running_runs),
            "left": len(self.runs) - len(self.finished) - len(running_runs),
            "records": self.records,
            "records_per_s": round(self.records / elapsed, 2),
            "errors": self.errors,
            "elapsed_s": round(elapsed, 1),
        }

    def emit(self, event: str | None) -> None:
        c = self.counts()
        line = (
            f"[sweep] runs {c['done']} done, {c['running']} running, {c['left']} left"
            + (f", {c['unfinished']} not complete" if c["unfinished"] else "")
            + f"; {c['records']} records ({c['records_per_s']}/s), {c['errors']} errors"
        )
        print(line + (f" | {event}" if event else ""), file=self.stream, flush=True)
        self.last_line = time.monotonic()
        self.write_status(c)

    def write_status(self, counts: dict[str, Any] | None = None) -> None:
        if self.status_path is None:
            return
        data = {
            **(counts or self.counts()),
            "finished": self.finished,
            "running": self.running,
            "model_loads": self.model_loads,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self.status_path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.status_path, data)
