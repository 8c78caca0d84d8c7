"""`cvbench data`: download, verify and generate benchmark data (cvbench.tasks)."""

from __future__ import annotations

import pathlib
import sys

import click

from cvbench.cli.app import CvbenchError, cli


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
