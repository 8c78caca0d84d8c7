"""How a comparison is shown: gate messages, the JSON and Markdown outputs and the terminal table
(pure functions over a `Comparison`, except `render_comparison`, which prints)."""

from __future__ import annotations

from typing import Any

from cvbench.analysis.compare import (
    COMPARE_SCHEMA,
    AblationPair,
    CompareOptions,
    Comparison,
    RunSummary,
    SliceComparison,
)


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
        f"(results.json; {interval_methods(c)}); B-A and its interval are paired on the shared records "
        f"(cluster bootstrap); "
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
