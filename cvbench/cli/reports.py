"""`cvbench report`, `export` and `leaderboard build` (cvbench.reports, cvbench.leaderboard)."""

from __future__ import annotations

import click

from cvbench.cli.app import CvbenchError, cli


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
@click.option(
    "--full-images",
    is_flag=True,
    help="Also copy the exact gallery images into report_files/ (report.html embeds previews either way).",
)
def report_command(
    run_dir: str, out_dir: str | None, gallery_per_slice: int, gallery_max: int, full_images: bool
) -> None:
    """Write report.md and a self-contained report.html for one run."""
    from cvbench.reports.report import build_report
    from cvbench.rundir.format import RunDirError

    try:
        files = build_report(
            run_dir, out_dir, gallery_per_slice=gallery_per_slice, gallery_max=gallery_max, full_images=full_images
        )
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
    from cvbench.rundir.format import RunDirError, find_run_dirs, load_run

    try:
        tables = tables_for_runs([load_run(d) for d in find_run_dirs([Path(d) for d in run_dirs])])
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
    default="preview",
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
    from cvbench.leaderboard.site import build_site
    from cvbench.leaderboard.site_samples import SiteError
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
    for warning in site.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"built {site.out}/index.html: {site.pages} pages, {site.tables} tables, {site.runs} runs, "
        f"{site.reported_values} reported values, {site.samples} samples, {site.images} images, "
        f"{site.bytes / 1e6:.1f} MB"
    )
