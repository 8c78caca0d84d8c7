"""Options that no task of a run can use are errors, not silently ignored (they would still name
the run directory and enter its identity): `--candidates` on CrossViewBench only, `--mode
prerendered` or `--style upstream` without an MMVM task. One check, used by the runner (so the
Python API refuses what the CLI refuses) and by the CLI commands before anything loads."""

from __future__ import annotations

from collections.abc import Sequence

from cvbench.core.candidates import CandidateSetting, CandidateSettingError, check_applies, check_for_task
from cvbench.core.types import TaskSpec
from cvbench.tasks.registry import MODES


class OptionNotApplicable(ValueError):
    """An option none of the run's tasks can use; the message names the option and the tasks."""


def check_options_apply(
    specs: Sequence[TaskSpec],
    candidates: Sequence[CandidateSetting] | None,
    mode: str,
    style: str | None,
) -> None:
    try:
        check_applies(specs, candidates)
        for spec in specs:
            check_for_task(spec, candidates)
    except CandidateSettingError as exc:
        raise OptionNotApplicable(str(exc)) from None
    benchmarks = sorted({spec.benchmark for spec in specs})
    if not any(mode in MODES[b] for b in benchmarks):
        raise OptionNotApplicable(f"--mode {mode} does not apply to {', '.join(benchmarks)} tasks")
    if style == "upstream" and "mmvm" not in benchmarks:
        raise OptionNotApplicable(
            "--style upstream is MMVM's own drawing rule and applies to MMVM tasks only; for "
            f"{', '.join(benchmarks)} choose contour, mask, box or marks"
        )
