from pathlib import Path

import pytest

from cvbench.model_adapters.registry import recommended_max_tokens
from cvbench.runner.options import DEFAULT_MAX_TOKENS, RunOptions, effective_max_tokens, parse_model_option


def test_model_option_values_are_json_when_they_parse_else_text():
    assert parse_model_option("image_detail=high") == ("image_detail", "high")
    assert parse_model_option("batch_size=4") == ("batch_size", 4)
    assert parse_model_option("send_temperature=false") == ("send_temperature", False)
    assert parse_model_option(" path = /a=b") == ("path", " /a=b")
    for bad in ("novalue", "=x"):
        try:
            parse_model_option(bad)
        except ValueError as exc:
            assert "KEY=VALUE" in str(exc)
        else:
            raise AssertionError(bad)


def test_max_tokens_explicit_else_alias_recommendation_else_default():
    assert effective_max_tokens(RunOptions(model="random", max_tokens=7)) == 7
    assert effective_max_tokens(RunOptions(model="random")) == DEFAULT_MAX_TOKENS
    recommended = recommended_max_tokens("crossviewer")  # an alias whose budget differs
    assert recommended is not None and recommended != DEFAULT_MAX_TOKENS
    assert effective_max_tokens(RunOptions(model="crossviewer")) == recommended


def test_presentation_options_reach_the_prompt_settings_and_the_default_folder(tmp_path, monkeypatch):
    import json

    from click.testing import CliRunner

    from cvbench.cli import cli
    from cvbench.runner.options import default_out_dir
    from cvbench.tasks.registry import get_task
    from cvbench.tasks.synthetic import generate_mmvm

    spec = get_task("synth-mmvm")
    generate_mmvm(tmp_path / "data" / spec.data_subdir, per_cue=1, seed=0)
    monkeypatch.setenv("CVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "--model",
            "random",
            "--task",
            "synth-mmvm",
            "--limit",
            "2",
            "--data-dir",
            str(tmp_path / "data"),
            "--out",
            str(out),
            "--no-progress",
            "--alpha",
            "0.6",
            "--thickness",
            "3",
            "--image-format",
            "jpeg",
            "--jpeg-quality",
            "80",
            "--max-side",
            "512",
        ],
    )
    assert result.exit_code == 0, result.output
    settings = json.loads((out / "config.json").read_text())["prompt_settings"]
    assert settings["alpha"] == 0.6 and settings["thickness"] == 3
    image = settings["image"]
    assert (image["format"], image["jpeg_quality"], image["max_side"], image["max_pixels"]) == ("jpeg", 80, 512, None)
    records = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    images = [p for p in (out / "images").rglob("*") if p.is_file()]
    assert records and images and all(p.suffix == ".jpg" for p in images)
    from PIL import Image

    assert all(max(Image.open(p).size) <= 512 for p in images)

    default = RunOptions(model="random", tasks=("synth-mmvm",))
    varied = RunOptions(
        model="random", tasks=("synth-mmvm",), alpha=0.6, max_side=512, model_options=(("image_detail", "low"),)
    )
    assert default_out_dir(default) != default_out_dir(varied)


def test_the_default_run_folder_never_holds_a_url_password() -> None:
    from cvbench.runner.options import RunOptions, default_out_dir

    out = default_out_dir(
        RunOptions(model="lmms:qwen2_vl,base_url=http://u:PLANTEDpw@host:8000/v1", tasks=("synth-mmvm",))
    )
    assert "PLANTEDpw" not in str(out) and out.parts[0] == "runs"


def test_every_identity_field_of_the_run_config_names_the_out_dir() -> None:
    from cvbench.rundir.config import RunConfig
    from cvbench.rundir.schema import identity_keys
    from cvbench.runner.options import IDENTITY_LABELS

    labelled = [key for key, _ in IDENTITY_LABELS]
    assert sorted(labelled) == sorted(identity_keys(RunConfig)), "an identity field without its out-dir label"


def test_options_that_change_the_identity_change_the_out_dir() -> None:
    from cvbench.runner.options import RunOptions, default_out_dir
    from cvbench.runner.pricing import Price

    base = RunOptions(model="random", tasks=("synth-mmvm",))
    variants = [
        RunOptions(model="random", tasks=("synth-mmvm",), max_tokens=64),
        RunOptions(model="random", tasks=("synth-mmvm",), option_logprobs=True),
        RunOptions(model="random", tasks=("synth-mmvm",), judge="first-option"),
        RunOptions(model="random", tasks=("synth-mmvm",), price=Price(1.0, 2.0)),
        RunOptions(model="random", tasks=("synth-mmvm",), candidates=("4",)),
        RunOptions(model="random", tasks=("synth-mmvm",), ablation="images"),
    ]
    names = {default_out_dir(v) for v in variants}
    assert default_out_dir(base) not in names and len(names) == len(variants)
    # what is not identity (requests in flight, the cache, saving images) keeps the folder
    same = RunOptions(model="random", tasks=("synth-mmvm",), concurrency=7, use_cache=False, save_images=False)
    assert default_out_dir(same) == default_out_dir(base)


def test_the_python_api_refuses_candidates_on_a_crossviewbench_only_run(tmp_path: Path) -> None:
    from cvbench.runner.options import RunError, RunOptions
    from cvbench.runner.session import Runner

    options = RunOptions(model="random", tasks=("synth-crossviewbench",), candidates=("4",), out=tmp_path / "r")
    with pytest.raises(RunError, match="--candidates"):
        Runner(options).execute()
    assert not (tmp_path / "r").exists()
