"""`cvbench compare` and `cvbench regress` (cvbench.analysis, cvbench.devtools)."""

from __future__ import annotations

import sys

import click

from cvbench.cli.app import CvbenchError, cli


@cli.command("compare")
@click.argument("run_a", type=click.Path(file_okay=False, path_type=str))
@click.argument("run_b", type=click.Path(file_okay=False, path_type=str))
@click.option(
    "--slices",
    "slice_patterns",
    multiple=True,
    metavar="PATTERN",
    help="Gated slices: names or globs such as 'synth-mmvm@4', 'synth-crossviewbench@all/task_type=*' "
    "(repeatable or comma separated). Default: each evaluation's overall.",
)
@click.option(
    "--alpha",
    type=float,
    default=0.05,
    show_default=True,
    help="Family-wise significance level (Holm over the gated slices).",
)
@click.option(
    "--min-effect",
    type=float,
    default=0.0,
    show_default=True,
    help="Smallest drop in accuracy (fraction, 0.02 = 2 points) that counts as a regression.",
)
@click.option("--fail-on-regression", is_flag=True, help="Exit 1 when B is significantly worse on a gated slice.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON instead of tables.")
@click.option(
    "--bootstrap", "n_boot", type=int, default=2000, show_default=True, help="Paired cluster-bootstrap replicates."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Also write the JSON comparison to this file.",
)
@click.option(
    "--markdown",
    "markdown_path",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Also write a Markdown summary (e.g. to $GITHUB_STEP_SUMMARY).",
)
def compare_command(
    run_a: str,
    run_b: str,
    slice_patterns: tuple[str, ...],
    alpha: float,
    min_effect: float,
    fail_on_regression: bool,
    as_json: bool,
    n_boot: int,
    seed: int,
    report_path: str | None,
    markdown_path: str | None,
) -> None:
    """Paired comparison of run B against baseline run A (exact McNemar + paired cluster bootstrap)."""
    import json as json_module

    from rich.console import Console

    from cvbench.analysis.compare import CompareError, CompareOptions, compare_runs
    from cvbench.analysis.compare_output import comparison_to_json, comparison_to_markdown, render_comparison
    from cvbench.rundir.format import RunDirError

    patterns = tuple(p.strip() for item in slice_patterns for p in item.split(",") if p.strip())
    try:
        options = CompareOptions(slices=patterns, alpha=alpha, min_effect=min_effect, n_boot=n_boot, seed=seed)
        comparison = compare_runs(run_a, run_b, options)
    except (CompareError, RunDirError) as exc:
        raise CvbenchError(str(exc)) from None
    payload = comparison_to_json(comparison)
    if report_path:
        with open(report_path, "w", encoding="utf-8") as fh:
            json_module.dump(payload, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
    if markdown_path:
        with open(markdown_path, "a", encoding="utf-8") as fh:  # append: $GITHUB_STEP_SUMMARY is shared
            fh.write(comparison_to_markdown(comparison))
    if as_json:
        click.echo(json_module.dumps(payload, indent=2, ensure_ascii=False))
    else:
        render_comparison(comparison, Console(width=None if sys.stdout.isatty() else 180))
    if fail_on_regression and not comparison.passed:
        if as_json:  # the tables already say it; keep stdout pure JSON and name the failure on stderr
            for s in payload["regressions"]:
                click.echo(s["message"], err=True)
        sys.exit(1)


@cli.command("regress")
@click.option(
    "--suite",
    type=click.Choice(["ci", "prompts", "all"]),
    default="ci",
    show_default=True,
    help="ci: golden metrics and answers of the built-in models; prompts: prompt snapshots; all: both.",
)
@click.option("--update", is_flag=True, help="Rewrite the committed golden files on purpose (review the git diff).")
@click.option(
    "--golden",
    "golden_dir",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Golden directory (default: tests/golden/ of this source checkout).",
)
@click.option(
    "--keep",
    "keep_dir",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Keep the suite's data and run directories here instead of a temporary directory.",
)
@click.option("--max-diff", type=int, default=200, show_default=True, help="Diff lines to print at most.")
def regress_command(suite: str, update: bool, golden_dir: str | None, keep_dir: str | None, max_diff: int) -> None:
    """Check (or --update) the golden suite and the prompt snapshots; exit 1 with a diff on any change."""
    from cvbench.devtools.regress import RegressError, regress

    try:
        results = regress(suite, update=update, golden=golden_dir, work_dir=keep_dir)
    except RegressError as exc:
        raise CvbenchError(str(exc)) from None
    failed = False
    for result in results:
        where = result.golden_dir
        if update:
            changed = len(result.updated)
            click.echo(f"{result.suite}: {len(result.cases)} golden file(s) in {where}; {changed} rewritten")
            for line in result.updated:
                click.echo(f"  wrote {line}")
            continue
        if result.passed:
            click.echo(f"{result.suite}: {len(result.cases)} golden file(s) in {where} match")
            continue
        failed = True
        click.echo(f"{result.suite}: {len(result.diff)} difference(s) from the golden files in {where}:", err=True)
        for line in result.diff[:max_diff]:
            click.echo(f"  {line}", err=True)
        if len(result.diff) > max_diff:
            click.echo(f"  ... and {len(result.diff) - max_diff} more", err=True)
        if result.environment_diff:
            click.echo(
                "The golden files were written with other library versions; cvbench draws the same pixels "
                "under every supported version, so a difference here is a real change unless one of these "
                "is outside the supported range:",
                err=True,
            )
            for line in result.environment_diff:
                click.echo(f"  {line}", err=True)
        click.echo(
            f"If the change is intended: cvbench regress --suite {result.suite} --update, then review and "
            f"commit the diff.",
            err=True,
        )
    if failed:
        sys.exit(1)
