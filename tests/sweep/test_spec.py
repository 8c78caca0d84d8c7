"""The sweep file: expansion into runs named as `cvbench run` names them, clear errors, the dry
run's matrix and request estimate, and the pip hint when Ray is missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cvbench.cli import cli
from cvbench.runner.options import RunOptions, default_out_dir
from cvbench.sweep.spec import SweepSpecError, load_sweep
from tests.sweep.conftest import make_data, sweep_env, write_sweep

MATRIX = """
out = "{out}"
limit = 5
shards = 2

[[models]]
spec = "baseline:first-option"

[[models]]
spec = "openai-compatible:served"
base_urls = ["http://127.0.0.1:9/v1"]
options = {{ image_detail = "high" }}
workers = 3

[matrix]
tasks = ["synth-mmvm", "synth-crossviewbench"]
candidates = [["4"], ["8", "12"]]
styles = ["mask", "contour"]
image_policies = [{{}}, {{ max_side = 512 }}]
ablations = ["none", "images"]
"""


def test_matrix_expands_to_cvbench_run_folders(tmp_path: Path) -> None:
    sweep = load_sweep(write_sweep(tmp_path / "s.toml", MATRIX.format(out=tmp_path / "runs")))
    # MMVM: 2 candidate settings x 2 styles x 2 policies; CrossViewBench has no candidate axis
    assert len(sweep.runs) == 2 * (2 * 2 * 2 + 2 * 2) * 2
    assert sweep.shards == 2
    served = [r for r in sweep.runs if r.options.model == "openai-compatible:served"]
    assert {r.model.workers for r in served} == {3}
    assert served[0].model.placement() == (1.0, 0.0)  # a server model asks for a CPU slot, not a GPU
    one = next(
        r
        for r in served
        if r.options.tasks == ("synth-mmvm",)
        and r.options.candidates == ("8", "12")
        and r.options.style == "contour"
        and r.options.max_side == 512
        and r.options.ablation is None
    )
    # the folder `cvbench run` names for the same options, under the sweep's root
    same = RunOptions(
        model="openai-compatible:served",
        tasks=("synth-mmvm",),
        limit=5,
        candidates=("8", "12"),
        style="contour",
        max_side=512,
        model_options=(("image_detail", "high"),),
    )
    assert one.run_dir == tmp_path / "runs" / default_out_dir(same).relative_to("runs")
    assert one.options.out == one.run_dir and one.options.shard is None
    blind = [r for r in sweep.runs if r.options.ablation == "images"]
    assert len(blind) == len(sweep.runs) // 2
    assert all(r.run_dir.name.endswith("ablate-images") for r in blind)


def test_in_process_models_ask_for_a_gpu(tmp_path: Path) -> None:
    body = '[[models]]\nspec = "vllm:org/model"\n[[models]]\nspec = "hf:org/model"\ngpus = 2\ncpus = 4\n'
    sweep = load_sweep(write_sweep(tmp_path / "s.toml", body + '[matrix]\ntasks = ["mmvm"]\n'))
    assert [m.placement() for m in sweep.models] == [(1.0, 1.0), (4.0, 2.0)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('limt = 3\n[[models]]\nspec = "random"\n[matrix]\ntasks = ["mmvm"]\n', "top level: unknown key 'limt'"),
        ('[[models]]\nspec = "random"\n[matrix]\ntasks = "mmvm"\n', "matrix.tasks: expected a non-empty list"),
        ('[[models]]\nname = "random"\n[matrix]\ntasks = ["mmvm"]\n', "models[0]: unknown key 'name'"),
        ('[[models]]\n[matrix]\ntasks = ["mmvm"]\n', "models[0]: missing 'spec'"),
        ('limit = true\n[[models]]\nspec = "random"\n[matrix]\ntasks = ["mmvm"]\n', "limit: expected an integer"),
        ('[[models]]\nspec = "random"\n[matrix]\ntasks = ["mmvm"]\nseeds = ["1"]\n', "matrix.seeds[0]: expected"),
        (
            '[[models]]\nspec = "random"\n[matrix]\ntasks = ["mmvm"]\nablations = ["blind"]\n',
            "matrix.ablations[0]: unknown ablation 'blind'",
        ),
        (
            '[[models]]\nspec = "random"\n[matrix]\ntasks = ["mmvm"]\nimage_policies = [{ side = 5 }]\n',
            "matrix.image_policies[0]: unknown key 'side'",
        ),
        ('[[models]\nspec = "random"\n', "not valid TOML"),
        ('shards = 0\n[[models]]\nspec = "random"\n[matrix]\ntasks = ["mmvm"]\n', "shards: must be at least 1"),
        (
            '[[models]]\nspec = "hf:org/m"\nunits_per_worker = 2\n[matrix]\ntasks = ["mmvm"]\n',
            "models[0].units_per_worker: an in-process model runs one unit per worker",
        ),
        (
            '[[models]]\nspec = "random"\nunits_per_worker = 0\n[matrix]\ntasks = ["mmvm"]\n',
            "models[0].units_per_worker: must be at least 1",
        ),
    ],
)
def test_bad_sweep_files_name_the_file_and_field(tmp_path: Path, body: str, message: str) -> None:
    path = write_sweep(tmp_path / "bad.toml", body)
    with pytest.raises(SweepSpecError) as info:
        load_sweep(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_dry_run_prints_the_matrix_and_the_request_estimate(sweep_base, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    data = make_data(sweep_base, tmp_path / "data", 7)
    body = f"""
out = "{tmp_path / "runs"}"
data_dir = "{data.root}"
[[models]]
spec = "random"
[[models]]
spec = "first-option"
[matrix]
tasks = ["crossviewbench"]
seeds = [0, 1]
"""
    monkeypatch.setenv("CVBENCH_CACHE_DIR", str(tmp_path / "user-cache"))
    result = CliRunner().invoke(cli, ["sweep", str(write_sweep(tmp_path / "s.toml", body)), "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 5
    assert "model=random" in lines[0] and "seed=0" in lines[0] and "[7 records, 0 done]" in lines[0]
    assert "model=first-option" in lines[3] and "seed=1" in lines[3]
    assert lines[-1] == "4 runs x 1 shard(s); about 28 model requests to send"
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing


def test_ray_executor_without_ray_gives_the_pip_hint(tmp_path: Path) -> None:
    path = write_sweep(tmp_path / "s.toml", '[[models]]\nspec = "random"\n[matrix]\ntasks = ["synth-mmvm"]\n')
    code = (
        "import sys; sys.modules['ray'] = None\n"  # `import ray` then fails as if it were not installed
        "from cvbench.cli import main; sys.argv = ['cvbench', 'sweep', sys.argv[1], '--executor', 'ray']; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        env=sweep_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "pip install 'cvbench[ray]'" in done.stderr
