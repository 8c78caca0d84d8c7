"""Paired comparison of two runs and the CI regression gate.

Two runs A (baseline) and B (candidate) are matched record by record on `record_id`. For
every evaluation (`<task>@<setting>`) and every slice of it (`<task>@<setting>/<dim>=<label>`)
this module reports both accuracies, the paired difference B - A on the shared records, an
exact McNemar test on the discordant pairs and a paired cluster-bootstrap interval for the
difference. The gate fails only when B is significantly worse than A on a named slice:

    Holm-adjusted McNemar p < alpha  AND  bootstrap upper bound < 0  AND  drop >= min_effect

Everything here is a pure function over records and configs except `compare_runs` (loading
run directories) and `render_comparison` (printing). Formulas are documented in docs/ci.md.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from cvbench.core.seeding import derive_seed
from cvbench.rundir.format import RunData, SampleRecord, load_run
from cvbench.scoring import stats

COMPARE_SCHEMA = "cvbench.compare/1"

# Top-level entries of config.json (see cvbench.runner.session.Runner.build_config) that must
# agree for a paired comparison to mean what it says. The model, its settings and the
# generation config are what a comparison is for, so they are not listed; `datasets` is
# compared per task, for the tasks both runs evaluated.
COMPARABILITY_KEYS: tuple[str, ...] = (
    "protocol",
    "prompt_settings",
    "mode",
    "style",
    "seed",
    "limit",
    "shard",
    "judge",
)


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
# Exact statistics (pure)
# --------------------------------------------------------------------------------------


def binomial_half_cdf(k: int, m: int) -> float:
    """P(X <= k) for X ~ Binomial(m, 1/2), computed exactly with integers then rounded once."""
    if m < 0:
        raise ValueError(f"m must be >= 0, got {m}")
    if k < 0:
        return 0.0
    if k >= m:
        return 1.0
    term = 1  # C(m, 0)
    total = 1
    for i in range(1, k + 1):
        term = term * (m - i + 1) // i  # exact: C(m, i) = C(m, i-1) * (m-i+1) / i
        total += term
    return total / (1 << m)  # int / int true division is correctly rounded for big ints


def exact_mcnemar_p(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value: a binomial(a_only + b_only, 1/2) test on the discordant pairs.

    `a_only`: pairs A got right and B wrong; `b_only`: pairs B got right and A wrong.
    p = min(1, 2 * P(X <= min(a_only, b_only))).
    """
    if a_only < 0 or b_only < 0:
        raise ValueError("discordant counts must be non-negative")
    m = a_only + b_only
    if m == 0:
        return 1.0
    return min(1.0, 2.0 * binomial_half_cdf(min(a_only, b_only), m))


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (same order as given); reject where adjusted p < alpha."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def min_discordant_for_significance(alpha: float) -> int:
    """Smallest number of discordant pairs, all in one direction, that the exact test finds significant."""
    m = 1
    while exact_mcnemar_p(m, 0) >= alpha:
        m += 1
    return m


@dataclass(frozen=True)
class MinimumDetectableEffect:
    drop: float | None  # smallest detectable drop in accuracy (fraction), None when n is too small
    discordance: float  # observed discordant-pair rate used
    exact_floor: float  # min_discordant_for_significance(alpha) / n: no smaller drop can ever be significant
    note: str = ""


def minimum_detectable_drop(n: int, discordance: float, alpha: float, power: float = 0.8) -> MinimumDetectableEffect:
    """Smallest drop a paired McNemar test on `n` pairs detects at `alpha` with `power`.

    Connor's (1987) sample-size relation for paired proportions with discordance rate psi,
        sqrt(n) * delta = z_{1-alpha/2} * sqrt(psi) + z_{power} * sqrt(psi - delta^2),
    solved for delta by bisection on (0, sqrt(psi)]; the result is never reported below the
    exact test's floor (the fewest one-directional discordant pairs that can be significant,
    divided by n). With no discordant pairs observed only that floor is known.
    """
    if n <= 0:
        return MinimumDetectableEffect(None, 0.0, 1.0, "no shared records")
    m_min = min_discordant_for_significance(alpha)
    if n < m_min:
        return MinimumDetectableEffect(
            None,
            discordance,
            1.0,
            f"{n} pairs: the exact test needs at least {m_min} discordant pairs to reach alpha {alpha:g}",
        )
    floor = m_min / n
    if discordance <= 0.0:
        return MinimumDetectableEffect(floor, 0.0, floor, "no discordant pairs observed: exact-test floor only")
    z_a = NormalDist().inv_cdf(1.0 - alpha / 2.0)
    z_b = NormalDist().inv_cdf(power)
    root_n = math.sqrt(n)

    def excess(delta: float) -> float:
        return z_a * math.sqrt(discordance) + z_b * math.sqrt(max(0.0, discordance - delta * delta)) - root_n * delta

    hi = math.sqrt(discordance)
    if excess(hi) > 0.0:
        return MinimumDetectableEffect(None, discordance, floor, "too few records to reach the requested power")
    lo = 0.0
    for _ in range(100):
        mid = (lo + hi) / 2.0
        if excess(mid) > 0.0:
            lo = mid
        else:
            hi = mid
    return MinimumDetectableEffect(min(1.0, max(hi, floor)), discordance, floor)


def paired_cluster_bootstrap(
    a_correct: np.ndarray,
    b_correct: np.ndarray,
    clusters: Sequence[str],
    *,
    n_boot: int,
    level: float,
    seed: int,
    label: str,
) -> tuple[float, float]:
    """Percentile interval for mean(b) - mean(a), resampling whole clusters so pairs stay together.

    The per-record differences b - a (in {-1, 0, 1}) go through `stats.cluster_bootstrap`
    (each replicate: as many clusters as there are, drawn with replacement, ratio of summed
    differences to summed record counts). The seed is derive_seed(seed, "compare-bootstrap", label).
    """
    a = np.asarray(a_correct, dtype=np.int64)
    b = np.asarray(b_correct, dtype=np.int64)
    if a.shape != b.shape or a.ndim != 1 or len(clusters) != a.shape[0]:
        raise ValueError("a_correct, b_correct and clusters must be 1-d and of equal length")
    if a.size == 0:
        raise ValueError("no pairs to bootstrap")
    return stats.cluster_bootstrap(
        (b - a).astype(float), list(clusters), derive_seed(seed, "compare-bootstrap", label), n_boot, level
    )


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


def _result_metric(results: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    evaluation, _, slice_part = name.partition("/")
    entry = (results.get("evaluations") or {}).get(evaluation)
    if not isinstance(entry, Mapping):
        return None
    metric = entry.get("overall") if not slice_part else (entry.get("slices") or {}).get(slice_part)
    return metric if isinstance(metric, Mapping) else None


def summarize_run(
    records: Sequence[SampleRecord], results: Mapping[str, Any], name: str, level: float = stats.DEFAULT_LEVEL
) -> RunSummary:
    n = len(records)
    correct = sum(1 for r in records if r.correct)
    ci: tuple[float, float] | None = None
    method: str | None = None
    metric = _result_metric(results, name)
    # The run's own interval, when results.json describes exactly these records and it has width
    # (runs written before the default interval could hold a collapsed one at 0% or 100%).
    if metric is not None and metric.get("n") == n and metric.get("correct") == correct and metric.get("ci"):
        lo, hi = metric["ci"]
        if float(hi) > float(lo):
            ci, method = (float(lo), float(hi)), str(metric.get("ci_method") or "")
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


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in value:
            out.update(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        out = {}
        for i, item in enumerate(value):
            # list entries that name themselves (tasks, evaluations) are matched by name, not position
            tag = str(item.get("name") or item.get("task") or item.get("id") or i)
            out.update(_flatten(item, f"{prefix}[{tag}]"))
        return out
    return {prefix: value}


def config_differences(config_a: Mapping[str, Any], config_b: Mapping[str, Any]) -> list[ConfigDifference]:
    """Entries of config.json that change what a score means: dataset fingerprints and candidate
    settings (per shared task), protocol version, prompt settings, mode, style, seed, limit, shard, judge."""
    flat_a: dict[str, Any] = {}
    flat_b: dict[str, Any] = {}
    for key in COMPARABILITY_KEYS:
        if key in config_a or key in config_b:
            flat_a.update(_flatten(config_a.get(key), key))
            flat_b.update(_flatten(config_b.get(key), key))
    datasets_a = config_a.get("datasets") or {}
    datasets_b = config_b.get("datasets") or {}
    if isinstance(datasets_a, Mapping) and isinstance(datasets_b, Mapping):
        for task in sorted(set(datasets_a) & set(datasets_b)):
            flat_a.update(_flatten(datasets_a[task], f"datasets.{task}"))
            flat_b.update(_flatten(datasets_b[task], f"datasets.{task}"))
    diffs = []
    for key in sorted(set(flat_a) | set(flat_b)):
        va, vb = flat_a.get(key, "<absent>"), flat_b.get(key, "<absent>")
        if va != vb:
            diffs.append(ConfigDifference(key, va, vb))
    return diffs


ABLATION_KEYS = ("ablation", "prompt_settings.ablation")


def ablation_of(config: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The `ablation` block of a run's config.json ({"kind", "row_kind"}), None for a normal run."""
    block = config.get("ablation")
    return block if isinstance(block, Mapping) and block.get("kind") else None


def ablation_pair(config_a: Mapping[str, Any], config_b: Mapping[str, Any]) -> AblationPair | None:
    """An AblationPair when exactly one of the two runs is ablated."""
    a, b = ablation_of(config_a), ablation_of(config_b)
    if (a is None) == (b is None):
        return None
    block, side = (b, "B") if a is None else (a, "A")
    assert block is not None
    return AblationPair(str(block["kind"]), str(block.get("row_kind") or block["kind"]), side)


def _is_ablation_key(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in ABLATION_KEYS)


def ablation_gap_line(pair: AblationPair, s: SliceComparison, options: CompareOptions) -> str:
    """'synth-mmvm@all: images ablated (blind): gap -50.0 pts [-75.0, -25.0] (...)'."""
    gap, ci = pair.gap(s.paired)
    level = round(100 * (1 - options.alpha))
    if gap is None:
        return f"{s.name}: {pair.kind} ablated ({pair.row_kind}): no shared records"
    return (
        f"{s.name}: {pair.kind} ablated ({pair.row_kind}): gap {100 * gap:+.1f} pts "
        f"{_interval(ci, signed=True)} ({level}% {s.paired.ci_method.replace('_', ' ')}, ablated minus full, "
        f"{s.paired.n} shared records)"
    )


def compare_records(
    records_a: Iterable[SampleRecord],
    records_b: Iterable[SampleRecord],
    options: CompareOptions,
    *,
    results_a: Mapping[str, Any] | None = None,
    results_b: Mapping[str, Any] | None = None,
    config_a: Mapping[str, Any] | None = None,
    config_b: Mapping[str, Any] | None = None,
    run_a: str = "A",
    run_b: str = "B",
) -> Comparison:
    """The full paired comparison of two record sets (pure)."""
    by_id_a = _index(records_a, run_a)
    by_id_b = _index(records_b, run_b)
    results_a, results_b = results_a or {}, results_b or {}
    config_a, config_b = config_a or {}, config_b or {}

    members_a: dict[str, list[str]] = {}
    members_b: dict[str, list[str]] = {}
    for rid, rec in by_id_a.items():
        for name in slice_names(rec):
            members_a.setdefault(name, []).append(rid)
    for rid, rec in by_id_b.items():
        for name in slice_names(rec):
            members_b.setdefault(name, []).append(rid)

    warnings: list[str] = []
    mismatched = [
        rid
        for rid in by_id_a
        if rid in by_id_b and (by_id_a[rid].slices != by_id_b[rid].slices or by_id_a[rid].answer != by_id_b[rid].answer)
    ]
    if mismatched:
        warnings.append(
            f"{len(mismatched)} shared records differ between the runs in their answer key or slice "
            f"labels (e.g. {mismatched[0]}): the runs were not made from the same data"
        )

    shared_names = [n for n in _ordered_names(members_a) if n in members_b]
    if not shared_names:
        raise CompareError(
            f"{run_a} and {run_b} share no evaluation: nothing to compare "
            f"({run_a}: {', '.join(sorted(k for k in members_a if '/' not in k)) or 'no records'}; "
            f"{run_b}: {', '.join(sorted(k for k in members_b if '/' not in k)) or 'no records'})"
        )
    gated_names = select_slices(shared_names, options.slices)

    paired_by_name: dict[str, PairedResult] = {}
    summaries: dict[str, tuple[RunSummary, RunSummary]] = {}
    for name in shared_names:
        ids_a, ids_b = members_a[name], set(members_b[name])
        pairs = [(by_id_a[rid], by_id_b[rid]) for rid in ids_a if rid in ids_b]
        paired_by_name[name] = paired_statistics(pairs, options, name)
        summaries[name] = (
            summarize_run([by_id_a[r] for r in ids_a], results_a, name),
            summarize_run([by_id_b[r] for r in members_b[name]], results_b, name),
        )

    testable = [n for n in gated_names if paired_by_name[n].p_value is not None]
    holm = dict(zip(testable, holm_adjust([paired_by_name[n].p_value or 1.0 for n in testable])))
    for name in gated_names:
        if name not in holm:
            warnings.append(f"gated slice {name} has no records shared by both runs: it cannot be tested")

    slices = []
    for name in shared_names:
        gated = name in gated_names
        p_holm = holm.get(name)
        paired = paired_by_name[name]
        slices.append(
            SliceComparison(
                name=name,
                evaluation=name.partition("/")[0],
                a=summaries[name][0],
                b=summaries[name][1],
                paired=paired,
                gated=gated,
                p_holm=p_holm,
                verdict=_verdict(paired, gated, p_holm, options),
            )
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
    for label, by_id in ((run_a, by_id_a), (run_b, by_id_b)):
        errors = sum(1 for r in by_id.values() if r.error is not None)
        invalid = sum(1 for r in by_id.values() if r.invalid is not None)
        if errors or invalid:
            warnings.append(
                f"{label} has {errors} failed model call(s) and {invalid} invalid sample(s), counted as "
                f"wrong in every statistic (rerun the same command to retry failed calls)"
            )
    for label, status in ((run_a, results_a.get("status")), (run_b, results_b.get("status"))):
        if status not in (None, "complete"):
            warnings.append(f"{label} is not complete (status: {status})")

    return Comparison(
        run_a=run_a,
        run_b=run_b,
        model_a=_model_id(results_a, config_a),
        model_b=_model_id(results_b, config_b),
        status_a=str(results_a.get("status", "unknown")),
        status_b=str(results_b.get("status", "unknown")),
        options=options,
        slices=tuple(slices),
        only_in_a=only_a,
        only_in_b=only_b,
        config_differences=tuple(diffs),
        warnings=tuple(warnings),
        ablation=pair,
    )


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


def _model_id(results: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    model = results.get("model") or config.get("model") or {}
    if isinstance(model, Mapping):
        return str(model.get("id") or model.get("model_id") or "unknown")
    return str(model)


# --------------------------------------------------------------------------------------
# Gate messages, JSON and Markdown (pure)
# --------------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100.0 * x:.1f}"


def _interval(ci: tuple[float, float] | None, signed: bool = False) -> str:
    if ci is None:
        return ""
    fmt = "{:+.1f}" if signed else "{:.1f}"
    return "[" + fmt.format(100.0 * ci[0]) + ", " + fmt.format(100.0 * ci[1]) + "]"


def _p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def regression_message(s: SliceComparison, options: CompareOptions) -> str:
    pr = s.paired
    assert pr.difference is not None and pr.ci is not None
    level = round(100 * (1 - options.alpha))
    return (
        f"REGRESSION on {s.name}: accuracy {_pct(pr.a_accuracy)}% -> {_pct(pr.b_accuracy)}% "
        f"(drop {100 * -pr.difference:.1f} points >= min effect {100 * options.min_effect:.1f}) on "
        f"{pr.n} shared records; exact McNemar p = {_p(pr.p_value)} (Holm-adjusted {_p(s.p_holm)} < alpha "
        f"{options.alpha:g}; A-only correct {pr.a_only}, B-only correct {pr.b_only}); {level}% paired cluster "
        f"bootstrap interval for B-A {_interval(pr.ci, signed=True)} points (upper bound < 0)"
        + (
            f"; B has {s.b.errors} failed model call(s) and {s.b.invalid} invalid sample(s) in this slice, "
            f"counted as wrong"
            if s.b.errors or s.b.invalid
            else ""
        )
    )


def mde_line(s: SliceComparison, options: CompareOptions) -> str:
    m = s.paired.mde
    head = f"{s.name} ({s.paired.n} pairs, discordance {100 * m.discordance:.1f}%)"
    if m.drop is None:
        return f"{head}: minimum detectable drop unavailable ({m.note})"
    if m.discordance <= 0.0:
        return (
            f"{head}: no drop below {100 * m.drop:.1f} points can be significant at alpha {options.alpha:g} "
            f"(exact-test floor: no discordant pairs observed, power not estimable)"
        )
    return (
        f"{head}: smallest drop detectable at alpha {options.alpha:g} with {round(100 * options.power)}% "
        f"power is {100 * m.drop:.1f} points"
    )


def _summary_json(r: RunSummary) -> dict[str, Any]:
    return {
        "accuracy": r.accuracy,
        "correct": r.correct,
        "n": r.n,
        "ci": list(r.ci) if r.ci else None,
        "ci_method": r.ci_method,
        "errors": r.errors,
        "invalid": r.invalid,
    }


def comparison_to_json(c: Comparison) -> dict[str, Any]:
    o = c.options
    return {
        "schema": COMPARE_SCHEMA,
        "passed": c.passed,
        "run_a": {"path": c.run_a, "model": c.model_a, "status": c.status_a},
        "run_b": {"path": c.run_b, "model": c.model_b, "status": c.status_b},
        "options": {
            "slices": list(o.slices),
            "alpha": o.alpha,
            "min_effect": o.min_effect,
            "bootstrap": o.n_boot,
            "seed": o.seed,
            "power": o.power,
            "ci_level": 1.0 - o.alpha,
            "correction": "holm",
            "test": "exact McNemar (two-sided binomial on discordant pairs)",
            "interval": "paired cluster bootstrap, percentile",
        },
        "warnings": list(c.warnings),
        "config_differences": [{"key": d.key, "a": d.a, "b": d.b} for d in c.config_differences],
        "ablation": _ablation_json(c),
        "only_in_a": {"count": len(c.only_in_a), "ids": list(c.only_in_a)},
        "only_in_b": {"count": len(c.only_in_b), "ids": list(c.only_in_b)},
        "gated": [s.name for s in c.slices if s.gated],
        "regressions": [{"slice": s.name, "message": regression_message(s, o)} for s in c.regressions],
        "slices": [
            {
                "name": s.name,
                "evaluation": s.evaluation,
                "slice": s.slice_label,
                "gated": s.gated,
                "verdict": s.verdict,
                "a": _summary_json(s.a),
                "b": _summary_json(s.b),
                "paired": {
                    "n": s.paired.n,
                    "a_correct": s.paired.a_correct,
                    "b_correct": s.paired.b_correct,
                    "a_accuracy": s.paired.a_accuracy,
                    "b_accuracy": s.paired.b_accuracy,
                    "difference": s.paired.difference,
                    "a_only_correct": s.paired.a_only,
                    "b_only_correct": s.paired.b_only,
                    "p_value": s.paired.p_value,
                    "p_holm": s.p_holm,
                    "ci": list(s.paired.ci) if s.paired.ci else None,
                    "ci_method": s.paired.ci_method,
                    "n_clusters": s.paired.n_clusters,
                    "mde": {
                        "drop": s.paired.mde.drop,
                        "discordance": s.paired.mde.discordance,
                        "exact_floor": s.paired.mde.exact_floor,
                        "note": s.paired.mde.note,
                    },
                },
            }
            for s in c.slices
        ],
    }


def _ablation_json(c: Comparison) -> dict[str, Any] | None:
    if c.ablation is None:
        return None
    gaps = []
    for s in c.slices:
        gap, ci = c.ablation.gap(s.paired)
        gaps.append({"slice": s.name, "gap": gap, "ci": list(ci) if ci else None, "n": s.paired.n})
    return {
        "kind": c.ablation.kind,
        "row_kind": c.ablation.row_kind,
        "ablated": c.ablation.ablated,
        "gap": "accuracy(ablated) - accuracy(full) on the shared records",
        "gaps": gaps,
    }


def ablation_lines(c: Comparison) -> list[str]:
    """One gap line per evaluation (its overall slice) of an ablation pair; [] otherwise."""
    if c.ablation is None:
        return []
    return [ablation_gap_line(c.ablation, s, c.options) for s in c.slices if "/" not in s.name]


def comparison_to_markdown(c: Comparison) -> str:
    """A Markdown report (for a CI job summary or a PR comment)."""
    o = c.options
    lines = [
        f"## cvbench compare: {'REGRESSION' if not c.passed else 'no regression'}",
        "",
        f"- A (baseline): `{c.run_a}` ({c.model_a}, {c.status_a})",
        f"- B (candidate): `{c.run_b}` ({c.model_b}, {c.status_b})",
        (
            f"- alpha {o.alpha:g}, Holm over {sum(1 for s in c.slices if s.gated)} gated slice(s), "
            f"min effect {100 * o.min_effect:.1f} points, {o.n_boot} cluster-bootstrap replicates (seed {o.seed})"
        ),
        f"- A/B accuracy intervals: each run's own ({interval_methods(c)}); B-A: paired cluster bootstrap "
        "(Newcombe's paired score interval where every pair agrees and the bootstrap collapses)",
        "",
    ]
    for w in c.warnings:
        lines.append(f"> **Warning:** {w}")
    if c.warnings:
        lines.append("")
    lines += [f"- **{line}**" for line in ablation_lines(c)] + ([""] if c.ablation else [])
    for s in c.regressions:
        lines.append(f"- **{regression_message(s, o)}**")
    if c.regressions:
        lines.append("")
    lines += [
        "| slice | gated | A acc | B acc | B-A (paired) | interval | A-only / B-only | p | p Holm | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in c.slices:
        pr = s.paired
        diff = "n/a" if pr.difference is None else f"{100 * pr.difference:+.1f}"
        lines.append(
            f"| {s.name} | {'yes' if s.gated else ''} | {_pct(s.a.accuracy)} (n={s.a.n}) | "
            f"{_pct(s.b.accuracy)} (n={s.b.n}) | {diff} | {_interval(pr.ci, signed=True)} | "
            f"{pr.a_only} / {pr.b_only} | {_p(pr.p_value)} | {_p(s.p_holm) if s.gated else ''} | "
            f"{s.verdict} |"
        )
    lines.append("")
    for s in c.slices:
        if s.gated:
            lines.append(f"- {mde_line(s, o)}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# Rich rendering and the I/O edge
# --------------------------------------------------------------------------------------


def interval_methods(c: Comparison) -> str:
    """The interval methods behind the A/B columns, named once: 'method: wilson_design_effect'."""
    names = sorted({m for s in c.slices for m in (s.a.ci_method, s.b.ci_method) if m})
    return ("method: " + ", ".join(names)) if names else "no intervals"


SHORT_VERDICTS = {"no significant difference": "n.s.", "no shared records": "no pairs"}


def render_comparison(c: Comparison, console: Any) -> None:
    """Print the comparison as rich tables: warnings first, then one table per evaluation, then the gate."""
    from rich.panel import Panel
    from rich.table import Table

    o = c.options
    if c.warnings:
        console.print(Panel("\n".join(f"! {w}" for w in c.warnings), title="WARNING", border_style="bold red"))
    console.print(f"A (baseline):  {c.run_a}  [dim]{c.model_a} ({c.status_a})[/dim]")
    console.print(f"B (candidate): {c.run_b}  [dim]{c.model_b} ({c.status_b})[/dim]")
    for line in ablation_lines(c):
        console.print(f"[bold]{line}[/bold]", highlight=False)
    level = round(100 * (1 - o.alpha))
    for evaluation in dict.fromkeys(s.evaluation for s in c.slices):
        table = Table(title=evaluation, title_justify="left")
        for header, justify in (
            ("slice", "left"),
            ("n A/B/paired", "right"),
            ("A acc", "right"),
            ("B acc", "right"),
            ("B-A", "right"),
            (f"{level}% interval", "right"),
            ("A-only/B-only", "right"),
            ("p", "right"),
            ("p Holm", "right"),
            ("MDE", "right"),
            ("verdict", "left"),
        ):
            table.add_column(header, justify=justify, no_wrap=header != "slice")  # type: ignore[arg-type]
        for s in (s for s in c.slices if s.evaluation == evaluation):
            pr = s.paired
            style = {"regression": "bold red", "worse": "red", "better": "green"}.get(s.verdict, "")
            table.add_row(
                ("* " if s.gated else "  ") + s.slice_label,
                f"{s.a.n}/{s.b.n}/{pr.n}",
                f"{_pct(s.a.accuracy)} {_interval(s.a.ci)}",
                f"{_pct(s.b.accuracy)} {_interval(s.b.ci)}",
                "n/a" if pr.difference is None else f"{100 * pr.difference:+.1f}",
                _interval(pr.ci, signed=True),
                f"{pr.a_only}/{pr.b_only}",
                _p(pr.p_value),
                _p(s.p_holm) if s.gated else "",
                "" if pr.mde.drop is None else f"{100 * pr.mde.drop:.1f}",
                SHORT_VERDICTS.get(s.verdict, s.verdict),
                style=style,
            )
        console.print(table)
    console.print(
        f"[dim]* gated slice. Accuracies in %, differences in points; A/B intervals are each run's own "
        f"(results.json; {interval_methods(c)}); B-A and its interval are paired on the shared records (cluster bootstrap); "
        f"p: exact McNemar; p Holm: adjusted over the gated slices; MDE: minimum detectable drop; "
        f"n.s.: no significant difference[/dim]"
    )
    for s in c.slices:
        if s.gated:
            console.print(f"MDE {mde_line(s, o)}", highlight=False)
    for s in c.regressions:
        console.print(f"[bold red]{regression_message(s, o)}[/bold red]", highlight=False)
    if c.passed:
        console.print(
            f"[green]no significant regression on {sum(1 for s in c.slices if s.gated)} gated slice(s)[/green]"
        )


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
