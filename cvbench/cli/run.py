"""`cvbench run` (cvbench.runner.session) and what it prints around the run."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cvbench.cli.app import CvbenchError, cli
from cvbench.cli.options import (
    SHARD_HELP,
    candidates_option,
    check_applies_to_tasks,
    data_dir_option,
    declared_option,
    image_options,
    prompt_options,
    setting_names,
    tasks_option,
)
from cvbench.core import options as declared
from cvbench.core.candidates import CandidateSetting


@cli.command("run")
@click.option(
    "--model",
    "model",
    default="mask-heuristic",
    show_default=True,
    help="Model string (provider:model, an alias, a baseline: random, first-option, mask-heuristic, text-only, "
    "or a plugin's module.path:Factory).",
)
@tasks_option("synth-crossviewbench,synth-mmvm")
@data_dir_option
@declared_option(declared.LIMIT)
@candidates_option()
@prompt_options
@image_options
@declared_option(declared.CONCURRENCY)
@click.option("--shard", default=None, metavar="I/N", help=SHARD_HELP)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Run directory (default: runs/<model>/<tasks...>; the same command resumes it).",
)
@click.option(
    "--cache",
    "cache_path",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Response cache file (default: $CVBENCH_RESPONSE_CACHE or the user cache).",
)
@click.option("--no-cache", is_flag=True, help="Neither read nor write the response cache.")
@click.option("--judge", default=None, help="Model that reads answers the strict parser could not (never guesses).")
@click.option("--base-url", "base_urls", multiple=True, help="OpenAI-compatible endpoint (repeatable).")
@declared_option(declared.MAX_TOKENS)
@click.option(
    "--model-option",
    "model_option_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="Adapter option (repeatable), e.g. image_detail=high, checkpoint=/path, device=cuda (docs/models.md).",
)
@click.option("--option-logprobs", is_flag=True, help="Score options by log-probability when the model can.")
@click.option("--save-images", type=click.Choice(["all", "none"]), default="all", show_default=True)
@click.option(
    "--ci",
    "ci_method",
    type=click.Choice(["wilson_design_effect", "cluster_bootstrap", "cluster_robust", "wilson"]),
    default="wilson_design_effect",
    show_default=True,
    help="Interval method in results.json (coverage of each: docs/running.md).",
)
@click.option(
    "--price",
    default=None,
    metavar="IN/OUT",
    help="US dollars per million input/output tokens, e.g. 2.5/10: each record's cost and the run's "
    "total in results.json (a cost the provider reports wins). No built-in price table.",
)
@declared_option(declared.MAX_ERROR_RATE)
@declared_option(declared.FAIL_FAST)
@click.option("--progress/--no-progress", default=None, help="Live progress bar (default: when on a terminal).")
@click.option(
    "--ablate",
    "ablation",
    type=click.Choice(["images", "marks", "text"]),
    default=None,
    help="Ablation run: images = blank images of the same size (blind), marks = no overlays, "
    "text = options without the question stem (CrossViewBench overlay mode only). docs/ablations.md",
)
def run_command(
    model: str,
    tasks: tuple[str, ...],
    data_dir: Path | None,
    limit: int | None,
    candidates: tuple[CandidateSetting, ...] | None,
    style: str | None,
    mode: str,
    alpha: float,
    thickness: int,
    seed: int,
    image_format: str | None,
    jpeg_quality: int,
    max_side: int | None,
    max_pixels: int | None,
    concurrency: int,
    shard: str | None,
    out: str | None,
    cache_path: str | None,
    no_cache: bool,
    judge: str | None,
    base_urls: tuple[str, ...],
    max_tokens: int | None,
    model_option_items: tuple[str, ...],
    option_logprobs: bool,
    save_images: str,
    ci_method: str,
    price: str | None,
    max_error_rate: float,
    fail_fast: int,
    progress: bool | None,
    ablation: str | None,
) -> None:
    """Evaluate a model on tasks; writes (or resumes) a run directory."""
    from cvbench.cli.datagen import prepare_synthetic_data
    from cvbench.rundir.format import RunDirError
    from cvbench.runner.options import RunError, RunOptions, parse_model_option, parse_shard
    from cvbench.runner.pricing import parse_price
    from cvbench.runner.progress import print_next_steps, print_summary
    from cvbench.runner.session import run

    if no_cache and cache_path:
        raise CvbenchError("--cache and --no-cache exclude each other")
    check_applies_to_tasks(tasks, candidates, mode, style)
    try:
        shard_value = parse_shard(shard) if shard else None
        model_options = tuple(parse_model_option(item) for item in model_option_items)
        price_value = parse_price(price) if price is not None else None
        options = RunOptions(
            model=model,
            tasks=tasks,
            data_dir=data_dir,
            limit=limit,
            candidates=setting_names(candidates),
            style=style,
            mode=mode,
            seed=seed,
            concurrency=concurrency,
            shard=shard_value,
            out=Path(out) if out else None,
            cache=Path(cache_path) if cache_path else None,
            use_cache=not no_cache,
            judge=judge,
            base_urls=base_urls,
            max_tokens=max_tokens,
            option_logprobs=option_logprobs,
            save_images=save_images == "all",
            argv=tuple(sys.argv),
            ci_method=ci_method,
            progress=progress,
            model_options=model_options,
            alpha=alpha,
            thickness=thickness,
            image_format=image_format,
            jpeg_quality=jpeg_quality,
            max_side=max_side,
            max_pixels=max_pixels,
            price=price_value,
            max_error_rate=max_error_rate,
            fail_fast=fail_fast,
            ablation=ablation,
        )
    except ValueError as exc:
        raise CvbenchError(str(exc)) from None
    try:
        prepare_synthetic_data(tasks, data_dir, progress)
        outcome = run(options)
    except (RunError, RunDirError, ValueError, OSError) as exc:
        raise CvbenchError(str(exc)) from None
    print_summary(outcome.results, outcome.run_dir)
    if outcome.failure is not None:
        click.echo(
            f"failed: {outcome.failure}; finished records are kept, rerun the same command to resume {outcome.run_dir}",
            err=True,
        )
    elif outcome.exit_code:
        click.echo(f"cancelled: rerun the same command to resume {outcome.run_dir}", err=True)
    else:
        print_next_steps(outcome.run_dir)
    if outcome.exit_code:
        sys.exit(outcome.exit_code)
