"""An in-process model is loaded once per sweep worker, not once per unit: a tiny randomly
initialised LLaVA (built here, CPU only) evaluated in 2 runs x 2 shards, by the local executor and
by one Ray actor, is loaded once; the local sweep's run folders equal those of `cvbench run`."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cvbench.model_adapters.registry import ModelOptions
from cvbench.sweep.held_models import HeldModels
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

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.model_adapters.test_transformers_local import build_tiny_llava

N = 3
STYLES = ("mask", "contour")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-llava")
    build_tiny_llava(folder)
    return folder


def sweep_of(path: Path, out: Path, data_root: Path, model: Path, shards: int) -> Path:
    styles = ", ".join(f'"{s}"' for s in STYLES)
    return write_sweep(
        path,
        f'out = "{out}"\ndata_dir = "{data_root}"\nshards = {shards}\nconcurrency = 2\nno_cache = true\n'
        f'[[models]]\nspec = "hf:{model}"\nworkers = 1\ncpus = 1\ngpus = 0\n'
        f'options = {{ device = "cpu", batch_size = 2 }}\n'
        f'[matrix]\ntasks = ["crossviewbench"]\nstyles = [{styles}]\n',
    )


def loads_in(status_file: Path) -> dict[str, dict[str, int]]:
    return dict(json.loads(status_file.read_text())["model_loads"])


def assert_equal_to_direct_run(tmp: Path, out: Path, data_root: Path, model: Path) -> None:
    env = sweep_env(tmp)
    args = ["run", "--model", f"hf:{model}", "--task", "crossviewbench", "--data-dir", str(data_root)]
    args += ["--style", "contour", "--no-cache", "--concurrency", "2", "--no-progress"]
    args += ["--model-option", "device=cpu", "--model-option", "batch_size=2"]
    done = cvbench_cli(args, env, tmp, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    [direct] = [p.parent for p in (tmp / "runs").glob("*/*/results.json")]
    swept = out / direct.relative_to(tmp / "runs")
    assert comparable_records(swept) == comparable_records(direct)
    assert metrics_of(swept) == metrics_of(direct)


@pytest.mark.slow
def test_the_local_executor_loads_the_model_once(sweep_base: SynthBase, tiny_model: Path, tmp_path: Path) -> None:
    data = make_data(sweep_base, tmp_path / "data", N)
    out = tmp_path / "swept"
    sweep = sweep_of(tmp_path / "held.toml", out, data.root, tiny_model, shards=2)
    done = cvbench_cli(["sweep", str(sweep)], sweep_env(tmp_path), tmp_path, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert loads_in(out / ".sweep" / "held.status.json") == {"local": {f"hf:{tiny_model}": 1}}
    assert_equal_to_direct_run(tmp_path, out, data.root, tiny_model)


@pytest.mark.slow
def test_one_ray_actor_loads_the_model_once_for_all_its_units(
    sweep_base: SynthBase, tiny_model: Path, ray_cluster: RayCluster, tmp_path: Path
) -> None:
    data = make_data(sweep_base, tmp_path / "data", N)
    out = tmp_path / "swept"
    sweep = sweep_of(tmp_path / "held.toml", out, data.root, tiny_model, shards=2)
    args = ["sweep", str(sweep), "--executor", "ray", "--ray-address", ray_cluster.address]
    done = cvbench_cli(args, sweep_env(tmp_path), tmp_path, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    loads = loads_in(out / ".sweep" / "held.status.json")
    assert len(loads) == 1, loads  # one actor ran all 4 units (2 runs x 2 shards)
    assert list(loads.values()) == [{f"hf:{tiny_model}": 1}]
    # the same records as the local executor's are checked there; here: every run complete
    assert len(list(out.glob("*/*/results.json"))) == len(STYLES) * 3  # each run and its 2 shards


def test_threads_of_one_worker_share_one_load(tiny_model: Path) -> None:
    """A Ray actor runs `units_per_worker` units in threads: units asking for the same in-process
    model at once get the one loaded copy (the second waits for the first's load)."""
    models = HeldModels()
    options = ModelOptions(extra={"device": "cpu"})
    with ThreadPoolExecutor(4) as pool:
        adapters = list(pool.map(lambda _: models.resolve(f"hf:{tiny_model}", options), range(4)))
    assert models.counts() == {f"hf:{tiny_model}": 1}
    assert len({id(a._inner) for a in adapters}) == 1
