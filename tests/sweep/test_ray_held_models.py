"""An in-process model on the Ray executor loads once per actor, not once per unit.

A tiny randomly initialised LLaVA (built here from a config, saved to a temporary folder and
loaded back through `hf:<folder>`, CPU only) is swept as 2 runs (two overlay styles) x 2 shards
= 4 units on one actor. The actor's worker process writes a line to `.sweep/loads.jsonl` each
time it loads a model: one line for the four units. The run folders hold the records of the
same two runs done with `cvbench run`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.model_adapters.test_transformers_local import build_tiny_llava
from tests.reliability.conftest import SynthBase
from tests.sweep.conftest import (
    RayCluster,
    comparable_records,
    cvbench_cli,
    make_data,
    metrics_of,
    sweep_env,
    write_sweep,
)

pytestmark = pytest.mark.slow

STYLES = ("mask", "contour")
MODEL_OPTIONS = {"device": "cpu"}


def test_a_held_model_loads_once_per_actor_and_gives_the_records_of_cvbench_run(
    sweep_base: SynthBase, ray_cluster: RayCluster, tmp_path: Path
) -> None:
    model_dir = tmp_path / "tiny-llava"
    build_tiny_llava(model_dir)
    data = make_data(sweep_base, tmp_path / "data", 6)
    spec = f"hf:{model_dir}"
    env = sweep_env(tmp_path)

    direct = tmp_path / "direct"
    direct.mkdir()
    for style in STYLES:
        args = ["run", "--model", spec, "--task", "crossviewbench", "--data-dir", str(data.root), "--style", style]
        args += ["--no-cache", "--no-progress"]
        for key, value in MODEL_OPTIONS.items():
            args += ["--model-option", f"{key}={value}"]
        done = cvbench_cli(args, env, direct)
        assert done.returncode == 0, done.stderr[-3000:]

    out = tmp_path / "swept"
    options = ", ".join(f'{k} = "{v}"' for k, v in MODEL_OPTIONS.items())
    styles = ", ".join(f'"{s}"' for s in STYLES)
    sweep = write_sweep(
        tmp_path / "held.toml",
        f'out = "{out}"\ndata_dir = "{data.root}"\nshards = 2\nno_cache = true\n'
        f'[[models]]\nspec = "{spec}"\noptions = {{ {options} }}\nworkers = 1\ncpus = 1\ngpus = 0\n'
        f'[matrix]\ntasks = ["crossviewbench"]\nstyles = [{styles}]\n',
    )
    done = cvbench_cli(["sweep", str(sweep), "--executor", "ray", "--ray-address", ray_cluster.address], env, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]

    # four units (2 runs x 2 shards) ran, on one worker process that loaded the model once
    assert len(list(out.glob("*/*_shard[01]of2/samples.jsonl"))) == 4
    loads = [json.loads(line) for line in (out / ".sweep" / "loads.jsonl").read_text().splitlines()]
    assert [entry["model"] for entry in loads] == [spec]

    direct_runs = sorted(p.parent.relative_to(direct / "runs") for p in (direct / "runs").glob("*/*/results.json"))
    assert len(direct_runs) == 2
    for rel in direct_runs:
        assert comparable_records(out / rel) == comparable_records(direct / "runs" / rel), rel
        assert metrics_of(out / rel) == metrics_of(direct / "runs" / rel), rel
