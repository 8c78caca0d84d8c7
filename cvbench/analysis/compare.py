"""Paired comparison of two runs and the CI regression gate.

Two runs A (baseline) and B (candidate) are matched record by record on `record_id`. For
every evaluation (`<task>@<setting>`) and every slice of it (`<task>@<setting>/<dim>=<label>`)
this module reports both accuracies, the paired difference B - A on the shared records, an
exact McNemar test on the discordant pairs and a paired cluster-bootstrap interval for the
difference. The gate fails only when B is significantly worse than A on a named slice:

    Holm-adjusted McNemar p < alpha  AND  bootstrap upper bound < 0  AND  drop >= min_effect

Everything here is a pure function over records and configs except `compare_runs` (loading
run directories). The statistics are in `paired_tests`, the outputs (messages, JSON, Markdown,
terminal) in `compare_output`. Formulas are documented in docs/ci.md.

Over 500 lines: the comparison's value types and the pure function that builds them from records
are read together; statistics and presentation are already in their own modules.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cvbench.analysis.paired_tests import (
    MinimumDetectableEffect,
    exact_mcnemar_p,
    holm_adjust,
    minimum_detectable_drop,
    paired_cluster_bootstrap,
)
from cvbench.rundir.config import RunConfig, comparability_differences
from cvbench.rundir.format import RunData, SampleRecord, load_run
from cvbench.rundir.results import MetricSummary, Results
from cvbench.scoring import stats

COMPARE_SCHEMA = "cvbench.compare/1"

# What must agree for a paired comparison to mean what it says is marked on RunConfig's fields
# (`comparable=True`): the model, its settings and the generation config are what a comparison is
# for, so they are not marked; `datasets` is compared per task, for the tasks both runs evaluated.


class CompareError(ValueError):
    """The two runs cannot be compared as asked (unknown slice, bad option); the message says why."""


@dataclass(frozen=True)
class CompareOptions:
    slices: tuple[str, ...] = ()  # names or glob patterns of the gated slices; () = each evaluation's overall
    alpha: float = 0.05
    min_effect: float = 0.0  # smallest drop (accuracy points as a fraction) that counts as a regression
    n_boot: int = 2000
    seed: int = 0
    power: float = 0.8  # for the minimum-detectable-effect line

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise CompareError(f"--alpha must be in (0, 1), got {self.alpha}")
        if not 0.0 <= self.min_effect <= 1.0:
            raise CompareError(f"--min-effect must be in [0, 1] (a fraction of accuracy), got {self.min_effect}")
        if self.n_boot < 100:
            raise CompareError(f"--bootstrap must be at least 100 replicates, got {self.n_boot}")
        if not 0.0 < self.power < 1.0:
            raise CompareError(f"power must be in (0, 1), got {self.power}")


# --------------------------------------------------------------------------------------
# Slices and per-slice statistics (pure)
# --------------------------------------------------------------------------------------


def evaluation_of(record: SampleRecord) -> str:
    return f"{record.task}@{record.setting}"


def slice_names(record: SampleRecord) -> list[str]:
    """The slices a record counts toward: its evaluation's overall, then each `dim=label`."""
    evaluation = evaluation_of(record)
    names = [evaluation]
    for dim in sorted(record.slices):
        for label in dict.fromkeys(record.slices[dim]):  # a record counts once per label
            names.append(f"{evaluation}/{dim}={label}")
    return names


def is_answered(record: SampleRecord) -> bool:
    return record.error is None and record.invalid is None


@dataclass(frozen=True)
class RunSummary:
    """One run's accuracy on one slice (all its records in the slice, shared or not)."""

    accuracy: float | None
    correct: int
    n: int
    ci: tuple[float, float] | None  # the run's own interval from results.json, when it has this slice
    ci_method: str | None
    errors: int
    invalid: int


@dataclass(frozen=True)
class PairedResult:
    n: int  # shared records
    a_correct: int
    b_correct: int
    a_only: int  # A right, B wrong
    b_only: int  # B right, A wrong
    difference: float | None  # accuracy(B) - accuracy(A) on the shared records
    p_value: float | None  # exact McNemar, two-sided
    ci: tuple[float, float] | None  # paired cluster bootstrap interval for `difference`
    n_clusters: int
    mde: MinimumDetectableEffect
    # "paired_cluster_bootstrap", or "newcombe_paired" where the bootstrap collapsed to a point
    # (every pair agrees in every resample): never a zero-width interval for a finite sample
    ci_method: str = "paired_cluster_bootstrap"

    @property
    def a_accuracy(self) -> float | None:
        return self.a_correct / self.n if self.n else None

    @property
    def b_accuracy(self) -> float | None:
        return self.b_correct / self.n if self.n else None

    @property
    def drop(self) -> float | None:
        return None if self.difference is None else -self.difference


@dataclass(frozen=True)
class SliceComparison:
    name: str  # "<task>@<setting>" or "<task>@<setting>/<dim>=<label>"
    evaluation: str
    a: RunSummary
    b: RunSummary
    paired: PairedResult
    gated: bool
    p_holm: float | None  # Holm-adjusted over the gated slices; None for slices not gated
    verdict: str  # see VERDICTS

    @property
    def slice_label(self) -> str:
        return self.name.partition("/")[2] or "overall"


VERDICTS = ("regression", "worse", "better", "no significant difference", "no shared records")


@dataclass(frozen=True)
class ConfigDifference:
    key: str  # dotted path in config.json
    a: Any
    b: Any


@dataclass(frozen=True)
class AblationPair:
    """A model's run and its ablated run (docs/ablations.md): compared as a pair, not as configs that differ."""

    kind: str  # "images" | "marks" | "text"
    row_kind: str  # "blind" | "unmarked" | "options only"
    ablated: str  # which side is ablated: "A" | "B"

    def gap(self, paired: PairedResult) -> tuple[float | None, tuple[float, float] | None]:
        """Accuracy(ablated) - accuracy(full) on the shared records, and its paired interval."""
        if self.ablated == "B" or paired.difference is None:
            return paired.difference, paired.ci
        return -paired.difference, None if paired.ci is None else (-paired.ci[1], -paired.ci[0])


@dataclass(frozen=True)
class Comparison:
    run_a: str
    run_b: str
    model_a: str
    model_b: str
    status_a: str
    status_b: str
    options: CompareOptions
    slices: tuple[SliceComparison, ...]
    only_in_a: tuple[str, ...]
    only_in_b: tuple[str, ...]
    config_differences: tuple[ConfigDifference, ...]
    warnings: tuple[str, ...]
    ablation: AblationPair | None = None

    @property
    def regressions(self) -> tuple[SliceComparison, ...]:
        return tuple(s for s in self.slices if s.verdict == "regression")

    @property
    def passed(self) -> bool:
        return not self.regressions


def slice_matches(name: str, pattern: str) -> bool:
    """Glob match per part: `*` never crosses the `/` between evaluation and slice, so `*` is every
    evaluation's overall and `*/*` every slice; `*/task_type=*` every task type of every evaluation."""
    name_eval, name_sep, name_slice = name.partition("/")
    pat_eval, pat_sep, pat_slice = pattern.partition("/")
    if bool(name_sep) != bool(pat_sep):
        return False
    return fnmatch.fnmatchcase(name_eval, pat_eval) and fnmatch.fnmatchcase(name_slice, pat_slice)


def select_slices(available: Sequence[str], patterns: Sequence[str]) -> list[str]:
    """Slice names matched by the patterns (exact names or globs), in `available` order.

    No patterns: every evaluation's overall. A pattern that matches nothing is an error.
    """
    if not patterns:
        return [name for name in available if "/" not in name]
    chosen: set[str] = set()
    for pattern in patterns:
        hits = [name for name in available if slice_matches(name, pattern)]
        if not hits:
            shown = ", ".join(available[:30]) + (" ..." if len(available) > 30 else "")
            raise CompareError(f"--slices {pattern!r} matches no slice shared by the runs (slices: {shown})")
        chosen.update(hits)
    return [name for name in available if name in chosen]


def _result_metric(results: Results | None, name: str) -> MetricSummary | None:
    if results is None:
        return None
    evaluation, _, slice_part = name.partition("/")
    entry = results.evaluations.get(evaluation)
    if entry is None:
        return None
    return entry.overall if not slice_part else (entry.slices or {}).get(slice_part)


def summarize_run(
    records: Sequence[SampleRecord], results: Results | None, name: str, level: float = stats.DEFAULT_LEVEL
) -> RunSummary:
    n = len(records)
    correct = sum(1 for r in records if r.correct)
    ci: tuple[float, float] | None = None
    method: str | None = None
    metric = _result_metric(results, name)
    # The run's own interval, when results.json describes exactly these records and it has width
    # (runs written before the default interval could hold a collapsed one at 0% or 100%).
    if metric is not None and metric.n == n and metric.correct == correct and metric.ci:
        lo, hi = metric.ci
        if float(hi) > float(lo):
            ci, method = (float(lo), float(hi)), str(metric.ci_method or "")
    if ci is None and n:
        values = [1.0 if r.correct else 0.0 for r in records]
        ci = stats.wilson_design_effect(values, [f"{r.task}/{r.cluster}" for r in records], level)
        method = "wilson_design_effect"
    return RunSummary(
        accuracy=correct / n if n else None,
        correct=correct,
        n=n,
        ci=ci,
        ci_method=method,
        errors=sum(1 for r in records if r.error is not None),
        invalid=sum(1 for r in records if r.invalid is not None),
    )


def paired_statistics(
    pairs: Sequence[tuple[SampleRecord, SampleRecord]], options: CompareOptions, label: str
) -> PairedResult:
    n = len(pairs)
    a = np.fromiter((pa.correct for pa, _ in pairs), dtype=bool, count=n)
    b = np.fromiter((pb.correct for _, pb in pairs), dtype=bool, count=n)
    a_only = int(np.sum(a & ~b))
    b_only = int(np.sum(b & ~a))
    clusters = [f"{pa.task}/{pa.cluster}" for pa, _ in pairs]  # as cvbench.scoring.metrics clusters
    mde = minimum_detectable_drop(n, (a_only + b_only) / n if n else 0.0, options.alpha, options.power)
    if n == 0:
        return PairedResult(0, 0, 0, 0, 0, None, None, None, 0, mde)
    ci = paired_cluster_bootstrap(
        a, b, clusters, n_boot=options.n_boot, level=1.0 - options.alpha, seed=options.seed, label=label
    )
    ci_method = "paired_cluster_bootstrap"
    if ci is not None and ci[1] - ci[0] <= 0.0:
        both = int(np.sum(a & b))
        ci = stats.newcombe_paired_difference(
            both, a_only, b_only, n - both - a_only - b_only, level=1.0 - options.alpha
        )
        ci_method = "newcombe_paired"
    return PairedResult(
        n=n,
        a_correct=int(a.sum()),
        b_correct=int(b.sum()),
        a_only=a_only,
        b_only=b_only,
        difference=float(b.mean() - a.mean()),
        p_value=exact_mcnemar_p(a_only, b_only),
        ci=ci,
        n_clusters=len(set(clusters)),
        mde=mde,
        ci_method=ci_method,
    )


def _verdict(paired: PairedResult, gated: bool, p_holm: float | None, options: CompareOptions) -> str:
    if paired.n == 0 or paired.p_value is None or paired.ci is None or paired.difference is None:
        return "no shared records"
    p = p_holm if gated and p_holm is not None else paired.p_value
    if p < options.alpha and paired.ci[1] < 0.0:
        if gated and -paired.difference >= options.min_effect:
            return "regression"
        return "worse"
    if p < options.alpha and paired.ci[0] > 0.0:
        return "better"
    return "no significant difference"


def config_differences(config_a: RunConfig | None, config_b: RunConfig | None) -> list[ConfigDifference]:
    """Entries of config.json that change what a score means (the fields RunConfig marks comparable,
    and the dataset entries of the tasks both runs evaluated)."""
    if config_a is None or config_b is None:
        return []
    return [ConfigDifference(key, va, vb) for key, va, vb in comparability_differences(config_a, config_b)]


ABLATION_KEYS = ("ablation", "prompt_settings.ablation")


def ablation_of(config: RunConfig | None) -> Mapping[str, Any] | None:
    """The `ablation` block of a run's config.json ({"kind", "row_kind"}), None for a normal run."""
    block = config.ablation if config is not None else None
    return block if block and block.get("kind") else None


def ablation_pair(config_a: RunConfig | None, config_b: RunConfig | None) -> AblationPair | None:
    """An AblationPair when exactly one of the two runs is ablated."""
    a, b = ablation_of(config_a), ablation_of(config_b)
    if (a is None) == (b is None):
        return None
    block, side = (b, "B") if a is None else (a, "A")
    assert block is not None
    return AblationPair(str(block["kind"]), str(block.get("row_kind") or block["kind"]), side)


def _is_ablation_key(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in ABLATION_KEYS)


def compare_records(
    records_a: Iterable[SampleRecord],
    records_b: Iterable[SampleRecord],
    options: CompareOptions,
    *,
    results_a: Results | None = None,
    results_b: Results | None = None,
    config_a: RunConfig | None = None,
    config_b: RunConfig | None = None,
    run_a: str = "A",
    run_b: str = "B",
) -> Comparison:
    """The full paired comparison of two record sets (pure)."""
    by_id_a = _index(records_a, run_a)
    by_id_b = _index(records_b, run_b)
    members_a, members_b = _members(by_id_a), _members(by_id_b)
    warnings = _data_warnings(by_id_a, by_id_b)

    shared_names = [n for n in _ordered_names(members_a) if n in members_b]
    if not shared_names:
        raise CompareError(
            f"{run_a} and {run_b} share no evaluation: nothing to compare "
            f"({run_a}: {', '.join(sorted(k for k in members_a if '/' not in k)) or 'no records'}; "
            f"{run_b}: {', '.join(sorted(k for k in members_b if '/' not in k)) or 'no records'})"
        )
    slices = _slice_comparisons(
        shared_names, (by_id_a, members_a, results_a), (by_id_b, members_b, results_b), options, warnings
    )

    only_a = tuple(sorted(set(by_id_a) - set(by_id_b)))
    only_b = tuple(sorted(set(by_id_b) - set(by_id_a)))
    if only_a or only_b:
        warnings.append(
            f"records only in {run_a}: {len(only_a)}, only in {run_b}: {len(only_b)} "
            f"(paired statistics use the {sum(1 for r in by_id_a if r in by_id_b)} shared records)"
        )
    unshared = sorted({n for n in list(members_a) + list(members_b) if "/" not in n} - set(shared_names))
    if unshared:
        warnings.append(f"evaluations in only one run (not compared): {', '.join(unshared)}")
    diffs, pair = _config_warnings(config_a, config_b, results_a, results_b, warnings)
    for label, by_id in ((run_a, by_id_a), (run_b, by_id_b)):
        errors = sum(1 for r in by_id.values() if r.error is not None)
        invalid = sum(1 for r in by_id.values() if r.invalid is not None)
        if errors or invalid:
            warnings.append(
                f"{label} has {errors} failed model call(s) and {invalid} invalid sample(s), counted as "
                f"wrong in every statistic (rerun the same command to retry failed calls)"
            )
    for label, status in ((run_a, _status(results_a)), (run_b, _status(results_b))):
        if status not in ("unknown", "complete"):
            warnings.append(f"{label} is not complete (status: {status})")

    return Comparison(
        run_a=run_a,
        run_b=run_b,
        model_a=_model_id(results_a, config_a),
        model_b=_model_id(results_b, config_b),
        status_a=_status(results_a),
        status_b=_status(results_b),
        options=options,
        slices=tuple(slices),
        only_in_a=only_a,
        only_in_b=only_b,
        config_differences=tuple(diffs),
        warnings=tuple(warnings),
        ablation=pair,
    )


def _members(by_id: Mapping[str, SampleRecord]) -> dict[str, list[str]]:
    """Slice name -> the record ids in it, in record order."""
    members: dict[str, list[str]] = {}
    for rid, rec in by_id.items():
        for name in slice_names(rec):
            members.setdefault(name, []).append(rid)
    return members


def _data_warnings(by_id_a: Mapping[str, SampleRecord], by_id_b: Mapping[str, SampleRecord]) -> list[str]:
    mismatched = [
        rid
        for rid in by_id_a
        if rid in by_id_b and (by_id_a[rid].slices != by_id_b[rid].slices or by_id_a[rid].answer != by_id_b[rid].answer)
    ]
    if not mismatched:
        return []
    return [
        f"{len(mismatched)} shared records differ between the runs in their answer key or slice "
        f"labels (e.g. {mismatched[0]}): the runs were not made from the same data"
    ]


_RunSide = tuple[Mapping[str, SampleRecord], Mapping[str, list[str]], "Results | None"]


def _slice_comparisons(
    shared_names: Sequence[str], side_a: _RunSide, side_b: _RunSide, options: CompareOptions, warnings: list[str]
) -> list[SliceComparison]:
    """Paired statistics and verdicts per shared slice; Holm's adjustment over the gated ones."""
    (by_id_a, members_a, results_a), (by_id_b, members_b, results_b) = side_a, side_b
    gated_names = select_slices(shared_names, options.slices)
    paired_by_name: dict[str, PairedResult] = {}
    for name in shared_names:
        ids_b = set(members_b[name])
        pairs = [(by_id_a[rid], by_id_b[rid]) for rid in members_a[name] if rid in ids_b]
        paired_by_name[name] = paired_statistics(pairs, options, name)

    testable = [n for n in gated_names if paired_by_name[n].p_value is not None]
    holm = dict(zip(testable, holm_adjust([paired_by_name[n].p_value or 1.0 for n in testable])))
    for name in gated_names:
        if name not in holm:
            warnings.append(f"gated slice {name} has no records shared by both runs: it cannot be tested")

    slices = []
    for name in shared_names:
        gated, p_holm, paired = name in gated_names, holm.get(name), paired_by_name[name]
        slices.append(
            SliceComparison(
                name=name,
                evaluation=name.partition("/")[0],
                a=summarize_run([by_id_a[r] for r in members_a[name]], results_a, name),
                b=summarize_run([by_id_b[r] for r in members_b[name]], results_b, name),
                paired=paired,
                gated=gated,
                p_holm=p_holm,
                verdict=_verdict(paired, gated, p_holm, options),
            )
        )
    return slices


def _config_warnings(
    config_a: RunConfig | None,
    config_b: RunConfig | None,
    results_a: Results | None,
    results_b: Results | None,
    warnings: list[str],
) -> tuple[list[ConfigDifference], AblationPair | None]:
    """The configuration differences that change what a score means (the loud warning goes first),
    and the ablation pair when the comparison is a model against its own ablated run."""
    diffs = config_differences(config_a, config_b)
    pair = ablation_pair(config_a, config_b)
    if pair is not None:  # the ablation is what this comparison measures; every other difference still warns
        diffs = [d for d in diffs if not _is_ablation_key(d.key)]
        if _model_id(results_a, config_a) != _model_id(results_b, config_b):
            warnings.append(
                f"ablation pair of two different models ({_model_id(results_a, config_a)}, "
                f"{_model_id(results_b, config_b)}): the gap is not one model's"
            )
    if diffs:
        keys = ", ".join(d.key for d in diffs[:8]) + (" ..." if len(diffs) > 8 else "")
        warnings.insert(
            0,
            f"THE RUNS WERE MADE WITH DIFFERENT CONFIGURATIONS ({keys}): differences may come from "
            f"the data or protocol, not the model",
        )
    return diffs, pair


def _index(records: Iterable[SampleRecord], label: str) -> dict[str, SampleRecord]:
    out: dict[str, SampleRecord] = {}
    for rec in records:
        if rec.record_id in out:
            raise CompareError(
                f"{label}: record_id {rec.record_id!r} appears twice in samples.jsonl "
                f"(a run must hold each record once; was it merged twice?)"
            )
        out[rec.record_id] = rec
    return out


def _ordered_names(members: Mapping[str, list[str]]) -> list[str]:
    """Evaluations in sorted order, each followed by its slices sorted by dimension then label."""

    def key(name: str) -> tuple[str, int, str, str]:
        evaluation, _, part = name.partition("/")
        dim, _, label = part.partition("=")
        return (evaluation, 1 if part else 0, dim, _natural(label))

    return sorted(members, key=key)


def _natural(label: str) -> str:
    # Q2 before Q10, 2-4 before 13-37: zero-pad every digit run
    out, digits = [], ""
    for ch in label + "\0":
        if ch.isdigit():
            digits += ch
            continue
        if digits:
            out.append(digits.zfill(8))
            digits = ""
        out.append(ch)
    return "".join(out[:-1])


def _model_id(results: Results | None, config: RunConfig | None) -> str:
    if results is not None:
        return results.model.id
    return config.model.id if config is not None else "unknown"


def _status(results: Results | None) -> str:
    return results.status if results is not None else "unknown"


def compare_runs(run_a: str | Path, run_b: str | Path, options: CompareOptions) -> Comparison:
    """Load two run directories and compare them (the I/O edge)."""
    data_a: RunData = load_run(run_a)
    data_b: RunData = load_run(run_b)
    return compare_records(
        data_a.records(),
        data_b.records(),
        options,
        results_a=data_a.results,
        results_b=data_b.results,
        config_a=data_a.config,
        config_b=data_b.config,
        run_a=str(run_a),
        run_b=str(run_b),
    )
