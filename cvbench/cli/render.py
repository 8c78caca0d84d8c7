"""`cvbench render`: the exact images and text a model would receive for one sample (cvbench.prompting)."""

from __future__ import annotations

from pathlib import Path

import click

from cvbench.cli.app import CvbenchError, cli
from cvbench.cli.options import (
    candidates_option,
    check_applies_to_tasks,
    data_dir_option,
    declared_option,
    prompt_options,
    tasks_option,
)
from cvbench.core import options as declared
from cvbench.core.candidates import ALL, CandidateSetting


@cli.command("render")
@tasks_option(None, single=True)
@data_dir_option
@click.option("--sample", "sample_id", required=True, help="The sample id to render (`cvbench samples TASK`).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write into.")
@prompt_options
@candidates_option(single=True)
@declared_option(declared.IMAGE_FORMAT, "--format")
@declared_option(declared.JPEG_QUALITY)
@declared_option(declared.MAX_SIDE)
@declared_option(declared.MAX_PIXELS)
@click.option(
    "--model",
    "model",
    default=None,
    help="Write what this model receives: its provider's image contract (size, format, limits) applied.",
)
@click.option("--single-image", is_flag=True, help="Present as to a single-image model (views stacked vertically).")
def render_command(
    tasks: tuple[str, ...],
    data_dir: Path | None,
    sample_id: str,
    out_dir: str,
    mode: str,
    style: str | None,
    alpha: float,
    thickness: int,
    seed: int,
    candidates: tuple[CandidateSetting, ...] | None,
    image_format: str | None,
    jpeg_quality: int,
    max_side: int | None,
    max_pixels: int | None,
    model: str | None,
    single_image: bool,
) -> None:
    """Write the exact images and text a model would receive for one sample."""
    from cvbench.cli.datagen import prepare_synthetic_data
    from cvbench.core.types import Capabilities
    from cvbench.model_adapters.image_policy import build_fitted_prompt, contract_for_model, run_image_policy
    from cvbench.prompting.build import PromptError, PromptSettings, find_sample, write_prompt_files
    from cvbench.prompting.encoding import EncodingError

    if len(tasks) != 1:
        raise CvbenchError("render takes one --task")
    if candidates is not None and len(candidates) != 1:
        raise CvbenchError("render takes one --candidates setting (4, 8, 12 or all)")
    check_applies_to_tasks(tasks, candidates, mode, style)
    setting = str(candidates[0]) if candidates else ALL
    try:
        contract = contract_for_model(model) if model else None
        settings = PromptSettings(
            mode=mode,
            style=style,
            alpha=alpha,
            thickness=thickness,
            seed=seed,
            image=run_image_policy(contract, image_format, jpeg_quality, max_side, max_pixels),
        )
        capabilities = Capabilities(
            max_images=1 if single_image else None,
            native_regions=mode == "native",
            image_formats=contract.formats if contract else ("image/png", "image/jpeg"),
        )
        prepare_synthetic_data(tasks, data_dir, None)
        sample = find_sample(tasks[0], sample_id, data_dir)
        prompt = build_fitted_prompt(sample, settings, capabilities, setting, contract)
        written = write_prompt_files(prompt, out_dir)
    except (PromptError, EncodingError, ValueError, LookupError, FileNotFoundError) as exc:
        raise CvbenchError(str(exc)) from None
    for path in written:
        click.echo(str(path))
    click.echo(f"answer: {prompt.answer}  mode: {prompt.mode}  setting: {prompt.setting}", err=True)
