"""The `cvbench` command line: the click group and thin commands that call into the packages.

Each command imports its package lazily inside the function, so `cvbench --help` stays fast
and the core install never imports an optional backend.
"""

from __future__ import annotations

import sys

import click

from cvbench.core.version import __version__


class CvbenchError(click.ClickException):
    """A user-facing error: printed as `Error: ...` with exit status 1, no traceback."""


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="cvbench")
def cli() -> None:
    """cvbench: cross-view correspondence evaluation for multimodal LLMs (CrossViewBench, MMVM)."""


# ==== data (cvbench.tasks) =================================================================


import pathlib  # noqa: E402 - kept inside this section (shared file)


@cli.group("data")
def data_group() -> None:
    """Benchmark data: download, verify (and generate the synthetic sets)."""


@data_group.command("verify")
@click.argument("path", type=click.Path(path_type=pathlib.Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--headers-only", is_flag=True, help="Read image headers instead of decoding every image (faster).")
def data_verify(path: pathlib.Path, as_json: bool, headers_only: bool) -> None:
    """Load and deep-check every sample of PATH (a .jsonl, a .tsv, or a folder holding
    crossviewbench.jsonl / mllm_match_eval_full.tsv). Exits 1 listing every bad item."""
    from rich.console import Console

    from cvbench.tasks.verify import VerifyError, print_report, report_json, verify_path

    err = Console(stderr=True)
    try:
        if as_json or not err.is_terminal:
            report = verify_path(path, decode_images=not headers_only)
        else:
            with err.status("verifying ...") as status:
                report = verify_path(
                    path, decode_images=not headers_only, progress=lambda n: status.update(f"verifying ... {n} samples")
                )
    except VerifyError as exc:
        raise CvbenchError(str(exc)) from None
    if as_json:
        click.echo(report_json(report))
    else:
        print_report(report, Console(soft_wrap=True))
    if not report.passed:
        sys.exit(1)


@data_group.command("download")
@click.argument("dataset", type=click.Choice(["mmvm", "crossviewbench"]))
@click.option(
    "--dir",
    "data_dir",
    type=click.Path(path_type=pathlib.Path),
    default=None,
    help="Data root (default: $CVBENCH_DATA, else the user cache). The data goes in <root>/<dataset>.",
)
@click.option(
    "--repo",
    "repo_id",
    default=None,
    help="Hugging Face Hub repo id (MMVM default: zhouyik/MMVMBench; CrossViewBench: required unless --from-dir).",
)
@click.option("--repo-type", default="dataset", show_default=True, type=click.Choice(["dataset", "model"]))
@click.option("--revision", default=None, help="Branch, tag or commit of the Hub repo.")
@click.option(
    "--from-dir",
    type=click.Path(path_type=pathlib.Path, exists=True, file_okay=False),
    default=None,
    help="Take the files from a local folder instead of the Hub (archives are unpacked).",
)
@click.option("--link", is_flag=True, help="CrossViewBench --from-dir: symlink the folder instead of copying it.")
@click.option("--file", "file_name", default=None, help="CrossViewBench: the JSONL's name in the source.")
@click.option("--force", is_flag=True, help="Replace data already in place.")
def data_download(
    dataset: str,
    data_dir: pathlib.Path | None,
    repo_id: str | None,
    repo_type: str,
    revision: str | None,
    from_dir: pathlib.Path | None,
    link: bool,
    file_name: str | None,
    force: bool,
) -> None:
    """Fetch DATASET and place it where `cvbench run` looks for it."""
    from cvbench.core.locations import data_root
    from cvbench.tasks.hub import (
        MMVM_REPO,
        DownloadError,
        download_crossviewbench,
        download_mmvm,
    )

    root = data_root(data_dir)
    log = lambda msg: click.echo(msg, err=True)
    try:
        if dataset == "mmvm":
            if link or file_name:
                raise CvbenchError("--link and --file apply to crossviewbench only")
            target = download_mmvm(
                root,
                repo_id or MMVM_REPO,
                revision=revision,
                repo_type=repo_type,
                from_dir=from_dir,
                force=force,
                log=log,
            )
        else:
            target = download_crossviewbench(
                root,
                repo_id,
                from_dir=from_dir,
                link=link,
                file_name=file_name,
                revision=revision,
                repo_type=repo_type,
                force=force,
                log=log,
            )
    except DownloadError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    click.echo(str(target))


@data_group.command("synth")
@click.option(
    "--benchmark", required=True, type=click.Choice(["crossviewbench", "mmvm"]), help="Which format to generate."
)
@click.option(
    "--per-type",
    "per_type",
    type=click.IntRange(min=1),
    default=None,
    help="Questions per task type (crossviewbench) or cases per cue (mmvm). Default: the built-in set's size (6 / 8).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed; the same seed gives byte-identical files.")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=pathlib.Path, file_okay=False),
    help="Output folder (created if missing).",
)
def data_synth(benchmark: str, per_type: int | None, seed: int, out_dir: pathlib.Path) -> None:
    """Generate a procedural synthetic benchmark (rendered 3D scenes, exact geometric answers)
    in the upstream CrossViewBench or MMVM layout. Prints the data file's path."""
    from cvbench.tasks import synthetic

    if out_dir.exists() and any(out_dir.iterdir()):
        raise CvbenchError(f"{out_dir} is not empty; choose a new or empty folder")
    if benchmark == "crossviewbench":
        path = synthetic.generate_crossviewbench(out_dir, per_type or synthetic.BUILTIN_CVB_PER_TYPE, seed)
    else:
        path = synthetic.generate_mmvm(out_dir, per_type or synthetic.BUILTIN_MMVM_PER_CUE, seed)
    click.echo(str(path))


# ==== render (cvbench.prompting.build) ===================================================


@cli.command("render")
@click.option("--task", "task", required=True, help="Task name (see `cvbench tasks`), e.g. synth-mmvm.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Data root (default: $CVBENCH_DATA, else the user cache).",
)
@click.option("--sample", "sample_id", required=True, help="The sample id to render.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write into.")
@click.option("--mode", type=click.Choice(["overlay", "native", "prerendered"]), default="overlay", show_default=True)
@click.option(
    "--style",
    type=click.Choice(["upstream", "contour", "mask", "box", "marks"]),
    default=None,
    help="Overlay style (default: MMVM upstream, the authors' drawing rule; CrossViewBench mask).",
)
@click.option(
    "--candidates", "setting", default="all", show_default=True, help="MMVM candidate setting: 4, 8, 12 or all."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Run seed (candidate subsets, ids, colours).")
@click.option("--alpha", type=float, default=0.4, show_default=True, help="Fill opacity (styles mask, marks).")
@click.option(
    "--thickness", type=int, default=2, show_default=True, help="Line width at <= 1024 px (scaled up beyond)."
)
@click.option(
    "--format",
    "image_format",
    type=click.Choice(["png", "jpeg"]),
    default=None,
    help="Image encoding (default: the --model provider's, else png).",
)
@click.option(
    "--model",
    "model",
    default=None,
    help="Write what this model receives: its provider's image contract (size, format, limits) applied.",
)
@click.option("--max-side", type=int, default=None, help="Resize so the longest side is at most this.")
@click.option("--max-pixels", type=int, default=None, help="Resize so width*height is at most this.")
@click.option("--single-image", is_flag=True, help="Present as to a single-image model (views stacked vertically).")
def render_command(
    task: str,
    data_dir: str | None,
    sample_id: str,
    out_dir: str,
    mode: str,
    style: str | None,
    setting: str,
    seed: int,
    alpha: float,
    thickness: int,
    image_format: str | None,
    model: str | None,
    max_side: int | None,
    max_pixels: int | None,
    single_image: bool,
) -> None:
    """Write the exact images and text a model would receive for one sample."""
    from cvbench.core.types import Capabilities
    from cvbench.model_adapters.image_policy import (
        build_fitted_prompt,
        contract_for_model,
        run_image_policy,
    )
    from cvbench.prompting.build import (
        PromptError,
        PromptSettings,
        find_sample,
        write_prompt_files,
    )
    from cvbench.prompting.encoding import EncodingError

    try:
        contract = contract_for_model(model) if model else None
        settings = PromptSettings(
            mode=mode,
            style=style,
            alpha=alpha,
            thickness=thickness,
            seed=seed,
            image=run_image_policy(contract, image_format, None, max_side, max_pixels),
        )
        capabilities = Capabilities(
            max_images=1 if single_image else None,
            native_regions=mode == "native",
            image_formats=contract.formats if contract else ("image/png", "image/jpeg"),
        )
        sample = find_sample(task, sample_id, data_dir)
        prompt = build_fitted_prompt(sample, settings, capabilities, setting, contract)
        written = write_prompt_files(prompt, out_dir)
    except (PromptError, EncodingError, ValueError, LookupError, FileNotFoundError) as exc:
        raise CvbenchError(str(exc)) from None
    for path in written:
        click.echo(str(path))
    click.echo(f"answer: {prompt.answer}  mode: {prompt.mode}  setting: {prompt.setting}", err=True)


# ==== run / tasks / merge / cache (cvbench.runner.session) =================================


def _csv(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    return items or None


@cli.command("run")
@click.option(
    "--model",
    "model",
    default="mask-heuristic",
    show_default=True,
    help="Model string (provider:model, an alias, or a baseline: random, first-option, mask-heuristic).",
)
@click.option(
    "--task",
    "tasks",
    default="synth-crossviewbench,synth-mmvm",
    show_default=True,
    help="Comma-separated task names (`cvbench tasks`).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Data root (default: $CVBENCH_DATA or the user cache).",
)
@click.option("--limit", type=click.IntRange(min=0), default=None, help="First N samples of each task.")
@click.option("--candidates", default=None, help="MMVM candidate settings, e.g. 4,8,12,all (default: all).")
@click.option(
    "--style",
    default=None,
    help="Overlay style: upstream (MMVM only), contour, mask, box, marks (default: MMVM upstream, CrossViewBench mask).",
)
@click.option(
    "--mode", type=click.Choice(["auto", "overlay", "native", "prerendered"]), default="auto", show_default=True
)
@click.option(
    "--alpha",
    type=click.FloatRange(0.0, 1.0),
    default=0.4,
    show_default=True,
    help="Overlay fill opacity (styles mask, marks).",
)
@click.option(
    "--thickness",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Overlay line width at <= 1024 px (scaled up beyond).",
)
@click.option(
    "--image-format",
    type=click.Choice(["png", "jpeg"]),
    default=None,
    help="Encoding of the images sent to the model (default: the provider's, JPEG 4:4:4 q90 for API "
    "providers, else png; png keeps them lossless).",
)
@click.option("--jpeg-quality", type=click.IntRange(1, 100), default=90, show_default=True)
@click.option(
    "--max-side", type=click.IntRange(min=16), default=None, help="Resize so the longest side is at most this."
)
@click.option("--max-pixels", type=click.IntRange(min=256), default=None, help="Resize to at most this many pixels.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--concurrency", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--shard", default=None, help="I/N: evaluate only shard I of N (join with `cvbench merge`).")
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
@click.option(
    "--max-tokens",
    type=click.IntRange(min=1),
    default=None,
    help="Generation limit (default: the alias's recommendation, else 1024).",
)
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
@click.option(
    "--max-error-rate",
    type=click.FloatRange(0, 1),
    default=0.2,
    show_default=True,
    help="A finished run with a larger share of model errors fails (exit status 3).",
)
@click.option(
    "--fail-fast",
    type=click.IntRange(min=0),
    default=8,
    show_default=True,
    metavar="N",
    help="Stop when the first N requests all fail with auth/not-found/bad-request/connection errors (0: never).",
)
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
    tasks: str,
    data_dir: str | None,
    limit: int | None,
    candidates: str | None,
    style: str | None,
    mode: str,
    alpha: float,
    thickness: int,
    image_format: str | None,
    jpeg_quality: int,
    max_side: int | None,
    max_pixels: int | None,
    seed: int,
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
    from pathlib import Path

    from cvbench.rundir.format import RunDirError
    from cvbench.runner.options import RunError, RunOptions, parse_model_option, parse_shard
    from cvbench.runner.pricing import parse_price
    from cvbench.runner.progress import print_summary
    from cvbench.runner.session import run

    if no_cache and cache_path:
        raise CvbenchError("--cache and --no-cache exclude each other")
    try:
        shard_value = parse_shard(shard) if shard else None
        model_options = tuple(parse_model_option(item) for item in model_option_items)
        price_value = parse_price(price) if price is not None else None
    except ValueError as exc:
        raise CvbenchError(str(exc)) from None
    options = RunOptions(
        model=model,
        tasks=_csv(tasks) or (),
        data_dir=Path(data_dir) if data_dir else None,
        limit=limit,
        candidates=_csv(candidates),
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
    try:
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
    if outcome.exit_code:
        sys.exit(outcome.exit_code)


@cli.command("tasks")
def tasks_command() -> None:
    """List the tasks with their slices and candidate settings."""
    from cvbench.tasks.registry import TaskSpecError, load_task_specs
    from cvbench.tasks.slices import slice_labels

    try:
        specs = load_task_specs()
    except TaskSpecError as exc:
        raise CvbenchError(str(exc)) from None
    for spec in specs.values():
        kind = "synthetic, generated on first use" if spec.synthetic else "official data"
        click.echo(f"{spec.name}  [{spec.benchmark}; {kind}; settings {','.join(spec.candidate_settings)}]")
        click.echo(f"    {spec.description}")
        for dim, labels in slice_labels(spec).items():
            click.echo(f"    slices {dim}: {', '.join(labels)}")


@cli.command("merge")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True, path_type=str))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=str), help="Merged run directory.")
def merge_command(run_dirs: tuple[str, ...], out: str) -> None:
    """Join shards of one run (same configuration apart from --shard) into one run directory."""
    from pathlib import Path

    from cvbench.rundir.format import RunDirError
    from cvbench.runner.merge import merge_runs
    from cvbench.runner.options import RunError
    from cvbench.runner.progress import print_summary

    try:
        results = merge_runs([Path(d) for d in run_dirs], Path(out))
    except (RunError, RunDirError) as exc:
        raise CvbenchError(str(exc)) from None
    print_summary(results, Path(out))


@cli.group("cache")
def cache_group() -> None:
    """The response cache: stats, clearing, checking and repair."""


def cache_error_text(exc: Exception) -> str:
    choices = getattr(exc, "choices", None)  # CacheUnusableError: what the user can do
    return f"{exc}; {choices}" if choices else str(exc)


@cache_group.command("stats")
@click.option("--cache", "cache_path", type=click.Path(dir_okay=False, path_type=str), default=None)
def cache_stats_command(cache_path: str | None) -> None:
    """Entries, size and per-model counts of the response cache."""
    from pathlib import Path

    from cvbench.core.locations import default_response_cache
    from cvbench.runner.cache import CacheError, ResponseCache

    path = Path(cache_path) if cache_path else default_response_cache()
    if not path.exists():
        click.echo(f"{path}: no cache yet (0 entries)")
        return
    try:
        with ResponseCache(path) as cache:
            stats = cache.stats()
    except CacheError as exc:
        raise CvbenchError(cache_error_text(exc)) from None
    click.echo(f"{stats.path}: {stats.entries} entries, {stats.file_bytes / 1e6:.2f} MB on disk")
    for m in stats.per_model:
        click.echo(f"  {m.model_id}: {m.entries} entries, {m.bytes / 1e6:.2f} MB")


@cache_group.command("clear")
@click.option("--cache", "cache_path", type=click.Path(dir_okay=False, path_type=str), default=None)
@click.option("--model", "model_id", default=None, help="Only this model id (as in `cache stats`).")
def cache_clear_command(cache_path: str | None, model_id: str | None) -> None:
    """Delete cached responses (all, or one model's)."""
    from pathlib import Path

    from cvbench.core.locations import default_response_cache
    from cvbench.runner.cache import CacheError, ResponseCache

    path = Path(cache_path) if cache_path else default_response_cache()
    if not path.exists():
        click.echo(f"{path}: no cache (nothing to clear)")
        return
    try:
        with ResponseCache(path) as cache:
            n = cache.clear(model_id)
    except CacheError as exc:
        raise CvbenchError(cache_error_text(exc)) from None
    click.echo(f"{path}: removed {n} entries" + (f" of {model_id}" if model_id else ""))


@cache_group.command("renders")
@click.option("--cache", "cache_path", type=click.Path(dir_okay=False, path_type=str), default=None)
@click.option("--clear", is_flag=True, help="Delete every rendered prompt.")
def cache_renders_command(cache_path: str | None, clear: bool) -> None:
    """The render store (rendered prompts shared by every run and model): size, or --clear."""
    from pathlib import Path

    from cvbench.core.locations import default_response_cache
    from cvbench.runner.render_store import RenderStoreError, store_report

    try:
        click.echo(store_report(Path(cache_path) if cache_path else default_response_cache(), clear))
    except RenderStoreError as exc:
        raise CvbenchError(str(exc)) from None


@cache_group.command("check")
@click.option("--cache", "cache_path", type=click.Path(dir_okay=False, path_type=str), default=None)
def cache_check_command(cache_path: str | None) -> None:
    """Check the response cache file (SQLite integrity_check, schema version); exit 1 if it is
    damaged, foreign or from a newer cvbench."""
    from pathlib import Path

    from cvbench.core.locations import default_response_cache
    from cvbench.runner.cache_check import inspect_cache

    path = Path(cache_path) if cache_path else default_response_cache()
    health = inspect_cache(path, full=True)
    if health.usable:
        click.echo(health.summary())
        return
    click.echo(f"{path}: {health.kind}", err=True)
    for problem in health.problems:
        click.echo(f"  {problem}", err=True)
    if health.kind == "damaged":
        raise CvbenchError(
            f"{path} is not usable: `cvbench cache repair --cache {path}` salvages its readable "
            f"entries (the damaged file is kept), or pass another --cache"
        )
    raise CvbenchError(f"{path} is not usable: move it away or pass another --cache")


@cache_group.command("repair")
@click.option("--cache", "cache_path", type=click.Path(dir_okay=False, path_type=str), default=None)
def cache_repair_command(cache_path: str | None) -> None:
    """Salvage the readable entries of a damaged response cache into a new file at the same path;
    the damaged file is kept beside it as <name>.damaged-<time>. Run it while no run uses the cache."""
    from pathlib import Path

    from cvbench.core.locations import default_response_cache
    from cvbench.runner.cache_repair import CacheRepairError, repair_cache

    path = Path(cache_path) if cache_path else default_response_cache()
    try:
        report = repair_cache(path)
    except CacheRepairError as exc:
        raise CvbenchError(str(exc)) from None
    click.echo(
        f"{report.path}: salvaged {report.salvaged} entries, {report.unreadable} unreadable stepped over; "
        f"the damaged file is kept at {report.kept_as}"
    )


# ==== models (cvbench.model_adapters) ======================================================


@cli.command("models")
@click.option(
    "--base-url",
    "base_urls",
    multiple=True,
    metavar="URL",
    help="OpenAI-compatible endpoint(s) to consider for open models (else $CVBENCH_VLLM_URL).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document instead of tables.")
def models_command(base_urls: tuple[str, ...], as_json: bool) -> None:
    """List providers and model aliases, and whether each can run here (and if not, how to fix it)."""
    from cvbench.model_adapters.availability import models_json, render_models_tables
    from cvbench.model_adapters.registry import ModelOptions

    options = ModelOptions(base_urls=base_urls)
    if as_json:
        click.echo(models_json(options))
    else:
        render_models_tables(options)


# ==== report / export / leaderboard (cvbench.reports, cvbench.leaderboard) =================


@cli.command("report")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=str))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Folder for report.md, report.html and report_files/ (default: RUN_DIR).",
)
@click.option(
    "--gallery-per-slice",
    type=click.IntRange(0, 50),
    default=3,
    show_default=True,
    help="Failures shown per slice in the gallery.",
)
@click.option(
    "--gallery-max",
    type=click.IntRange(0, 1000),
    default=60,
    show_default=True,
    help="Failures shown in the gallery in all.",
)
def report_command(run_dir: str, out_dir: str | None, gallery_per_slice: int, gallery_max: int) -> None:
    """Write report.md and a self-contained report.html for one run."""
    from cvbench.reports.report import build_report
    from cvbench.rundir.format import RunDirError

    try:
        files = build_report(run_dir, out_dir, gallery_per_slice=gallery_per_slice, gallery_max=gallery_max)
    except (RunDirError, ValueError) as exc:
        raise CvbenchError(str(exc)) from None
    click.echo(f"wrote {files.markdown}")
    click.echo(f"wrote {files.html}")
    if files.images_missing:
        click.echo(f"warning: {files.images_missing} gallery image(s) missing from {run_dir}/images", err=True)


@cli.command("export")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=str))
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "latex", "markdown"]), required=True)
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Write to this file instead of standard output.",
)
@click.option(
    "--ci",
    "ci_style",
    type=click.Choice(["brackets", "pm", "none"]),
    default="brackets",
    show_default=True,
    help="LaTeX/Markdown: intervals as [lo, hi], as ± half-width, or not at all.",
)
def export_command(run_dirs: tuple[str, ...], fmt: str, out_file: str | None, ci_style: str) -> None:
    """Export the tables of one or more runs (papers' layouts) as CSV, JSON, LaTeX or Markdown."""
    from pathlib import Path

    from cvbench.reports.exports import render
    from cvbench.reports.tables import tables_for_runs
    from cvbench.rundir.format import RunDirError, load_run

    try:
        tables = tables_for_runs([load_run(d) for d in run_dirs])
        text = render(tables, fmt, ci_style=ci_style)
    except (RunDirError, ValueError) as exc:
        raise CvbenchError(str(exc)) from None
    if not tables:
        raise CvbenchError("no CrossViewBench or MMVM evaluations in the given runs")
    if out_file:
        Path(out_file).write_text(text, encoding="utf-8")
        click.echo(f"wrote {out_file} ({len(tables)} tables)")
    else:
        click.echo(text, nl=False)


@cli.group("leaderboard")
def leaderboard_group() -> None:
    """The static leaderboard site."""


@leaderboard_group.command("build")
@click.argument("run_dirs", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=str))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=str),
    required=True,
    help="Folder to write the site into.",
)
@click.option(
    "--reported",
    default="shipped",
    show_default=True,
    metavar="shipped|none|CSV",
    help="Papers' reported rows: the shipped reference data, none, or a CSV in the same format.",
)
@click.option("--title", default="cvbench leaderboard", show_default=True, help="Site title.")
@click.option(
    "--samples-per-evaluation",
    type=click.IntRange(0),
    default=200,
    show_default=True,
    help="Records per evaluation in each sample browser (seeded subset; 0 = all).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample-browser subsets.")
@click.option(
    "--images",
    "image_mode",
    type=click.Choice(["exact", "preview", "none"]),
    default="exact",
    show_default=True,
    help="Sample-browser images: the exact files the model saw, downscaled JPEG previews "
    "(a much smaller site), or none.",
)
@click.option(
    "--preview-size",
    type=click.IntRange(16),
    default=1024,
    show_default=True,
    help="With --images preview: the longer side of a preview, in pixels (never enlarged).",
)
@click.option(
    "--preview-quality",
    type=click.IntRange(1, 95),
    default=85,
    show_default=True,
    help="With --images preview: JPEG quality.",
)
def leaderboard_build_command(
    run_dirs: tuple[str, ...],
    out_dir: str,
    reported: str,
    title: str,
    samples_per_evaluation: int,
    seed: int,
    image_mode: str,
    preview_size: int,
    preview_quality: int,
) -> None:
    """Build the static leaderboard site from run directories (works from file:// and any static host)."""
    from cvbench.leaderboard.previews import PreviewSettings
    from cvbench.leaderboard.reference import ReferenceDataError
    from cvbench.leaderboard.site import SiteError, build_site
    from cvbench.rundir.format import RunDirError

    try:
        site = build_site(
            list(run_dirs),
            out_dir,
            reported=reported,
            title=title,
            samples_per_evaluation=samples_per_evaluation,
            seed=seed,
            images=image_mode,
            preview=PreviewSettings(max_side=preview_size, quality=preview_quality),
        )
    except (RunDirError, ReferenceDataError, SiteError, ValueError) as exc:
        raise CvbenchError(str(exc)) from None
    click.echo(
        f"built {site.out}/index.html: {site.pages} pages, {site.tables} tables, {site.runs} runs, "
        f"{site.reported_values} reported values, {site.samples} samples, {site.images} images, "
        f"{site.bytes / 1e6:.1f} MB"
    )


# ==== compare / regress (cvbench.analysis.compare) ==========================================


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

    from cvbench.analysis.compare import (
        CompareError,
        CompareOptions,
        compare_runs,
        comparison_to_json,
        comparison_to_markdown,
        render_comparison,
    )
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


# ==== lmms-eval bridge (cvbench.integrations) ==============================================


@cli.command("export-lmms")
@click.option("--task", "tasks", required=True, help="Comma-separated cvbench task names (`cvbench tasks`).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=str),
    required=True,
    help="Folder to write (empty, new, or an earlier export, which is replaced).",
)
@click.option("--candidates", default=None, help="MMVM candidate settings, e.g. 4,8,12,all (default: all).")
@click.option(
    "--style",
    default=None,
    help="Overlay style: upstream (MMVM only), contour, mask, box, marks (default: MMVM upstream, CrossViewBench mask).",
)
@click.option("--mode", type=click.Choice(["auto", "overlay", "prerendered"]), default="auto", show_default=True)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Data root (default: $CVBENCH_DATA or the user cache).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Run seed (MMVM candidate subsets, IDs).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N samples of each task.")
@click.option("--single-image", is_flag=True, help="Stack the views into one image (single-image models).")
@click.option(
    "--max-tokens",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="max_new_tokens in the task configs.",
)
@click.option("--group", default="cvbench_suite", show_default=True, help="Name of the lmms-eval group of all tasks.")
def export_lmms_command(
    tasks: str,
    out_dir: str,
    candidates: str | None,
    style: str | None,
    mode: str,
    data_dir: str | None,
    seed: int,
    limit: int | None,
    single_image: bool,
    max_tokens: int,
    group: str,
) -> None:
    """Write an lmms-eval task folder (load it with `lmms_eval --include_path OUT`)."""
    from pathlib import Path

    from cvbench.integrations.lmms_export import (
        ExportError,
        LmmsExportOptions,
        export_lmms,
    )
    from cvbench.tasks.loading import DataNotFoundError

    def split(value: str | None) -> tuple[str, ...]:
        return tuple(v.strip() for v in (value or "").split(",") if v.strip())

    options = LmmsExportOptions(
        tasks=split(tasks),
        out=Path(out_dir),
        candidates=split(candidates) or None,
        style=style,
        mode=mode,
        data_dir=Path(data_dir) if data_dir else None,
        seed=seed,
        limit=limit,
        single_image=single_image,
        max_tokens=max_tokens,
        group=group,
    )
    try:
        summary = export_lmms(options)
    except (ExportError, DataNotFoundError, OSError) as exc:
        raise CvbenchError(str(exc)) from None
    for task in summary.tasks:
        invalid = f", {task.invalid} invalid" if task.invalid else ""
        click.echo(
            f"{task.name}: {task.docs} documents{invalid}, {len(task.metrics)} metrics "
            f"({task.task}, candidates {task.setting})"
        )
    names = ",".join(t.name for t in summary.tasks)
    click.echo(f"wrote {summary.out} (group {summary.group})")
    click.echo(
        f"run: python -m lmms_eval --include_path {summary.out} --tasks {summary.group} --model ... "
        f"(or --tasks {names})"
    )


from cvbench.sweep.cli import sweep_command  # noqa: E402 - `cvbench sweep` lives in its own package

cli.add_command(sweep_command)


def main() -> None:
    cli(prog_name="cvbench")


if __name__ == "__main__":  # pragma: no cover
    main()
