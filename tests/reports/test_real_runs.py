"""Report, export and site on run directories written by the real runner (`cvbench run`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cvbench.cli import cli
from cvbench.rundir.format import iter_records, load_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from cvbench.tasks.synthetic import generate_crossviewbench, generate_mmvm

    base = tmp_path_factory.mktemp("real")
    data = base / "data"
    generate_crossviewbench(data / "synth-crossviewbench", per_type=1, seed=0)
    generate_mmvm(data / "synth-mmvm", per_cue=1, seed=0)
    runs = []
    mp = pytest.MonkeyPatch()
    mp.setenv("CVBENCH_CACHE_DIR", str(base / "cache"))
    try:
        for model in ("random", "first-option"):
            out = base / "runs" / model
            result = CliRunner().invoke(
                cli,
                [
                    "run",
                    "--model",
                    model,
                    "--data-dir",
                    str(data),
                    "--limit",
                    "8",
                    "--candidates",
                    "4,all",
                    "--no-cache",
                    "--out",
                    str(out),
                ],
            )
            assert result.exit_code == 0, result.output
            runs.append(out)
    finally:
        mp.undo()
    return runs


def test_report_on_a_real_run(real_runs: list[Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(real_runs[0]), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    run = load_run(real_runs[0])
    overall = run.results.evaluations["synth-mmvm@4"].overall
    assert f"{100 * (overall.accuracy or 0.0):.1f}%" in html
    assert "<svg" in html and "Failure gallery" in html and "synth-mmvm" in html
    gallery_imgs = list((tmp_path / "report_files").glob("*.png")) + list((tmp_path / "report_files").glob("*.jpg"))
    failures = [r for r in iter_records(real_runs[0]) if not r.correct and r.invalid is None]
    assert (len(gallery_imgs) > 0) == (len(failures) > 0)


def test_export_and_site_on_real_runs(real_runs: list[Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["export", *map(str, real_runs), "--format", "json"])
    assert result.exit_code == 0, result.output
    tables = {t["table"]: t for t in json.loads(result.output)["tables"]}
    assert {"synth-crossviewbench-main", "synth-mmvm-paper"} <= set(tables)
    models = {r["model_id"] for r in tables["synth-mmvm-paper"]["rows"] if r["origin"] == "reproduced"}
    assert models == {load_run(p).results.model.id for p in real_runs}

    site = tmp_path / "site"
    result = CliRunner().invoke(cli, ["leaderboard", "build", *map(str, real_runs), "--out", str(site)])
    assert result.exit_code == 0, result.output
    pages = sorted(p.name for p in (site / "models").glob("*.html"))
    assert len(pages) == 2
    html = (site / "mmvm.html").read_text(encoding="utf-8")
    assert 'id="table-synth-mmvm-paper"' in html and 'id="table-mmvm-paper"' in html


def test_runner_output_reads_back_identically(real_runs: list[Path], tmp_path: Path) -> None:
    """config.json and results.json written by `cvbench run` go through their typed values unchanged."""
    from cvbench.rundir.config import read_config, write_config
    from cvbench.rundir.results import read_results, write_results

    for run_dir in real_runs:
        out = tmp_path / run_dir.name
        out.mkdir()
        for name, read, write in (
            ("config.json", read_config, write_config),
            ("results.json", read_results, write_results),
        ):
            assert read(run_dir).to_json() == json.loads((run_dir / name).read_text(encoding="utf-8"))
            write(out, read(run_dir))  # type: ignore[operator]
            assert (out / name).read_bytes() == (run_dir / name).read_bytes()


def test_native_mode_failures_show_their_regions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A native-region model's failures are drawn with their referenced regions, numbered in
    `<region>` order, with a legend, and labelled as display only."""
    import re

    from cvbench.tasks.synthetic import generate_crossviewbench

    data = tmp_path / "data"
    generate_crossviewbench(data / "synth-crossviewbench", per_type=1, seed=0)
    monkeypatch.setenv("CVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = ["run", "--model", "mask-heuristic", "--task", "synth-crossviewbench", "--data-dir", str(data)]
    result = CliRunner().invoke(cli, [*args, "--no-cache", "--out", str(out)])
    assert result.exit_code == 0, result.output
    failures = [r for r in iter_records(out) if not r.correct and r.invalid is None]
    assert failures and all(r.mode == "native" for r in failures)
    result = CliRunner().invoke(cli, ["report", str(out), "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    figures = re.findall(r'<figure class="regions">(.*?)</figure>', html, re.S)
    assert figures and all("display only, the model received masks" in f for f in figures)
    for figure, record in zip(figures, [r for r in failures if f'id="sample-{r.record_id}"' in html]):
        legend = re.findall(r"<code>&lt;region&gt;</code> (\d+):", figure)
        assert legend == [str(k + 1) for k in range(record.prompt_text.count("<region>"))]
        assert figure.count("data:image/jpeg;base64,") == len(record.image_sha256)


def test_site_sample_browser_shows_native_regions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cvbench.leaderboard.site import build_site
    from cvbench.tasks.synthetic import generate_crossviewbench

    data = tmp_path / "data"
    generate_crossviewbench(data / "synth-crossviewbench", per_type=1, seed=0)
    monkeypatch.setenv("CVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "runs" / "mask-heuristic" / "synth-crossviewbench"
    args = ["run", "--model", "mask-heuristic", "--task", "synth-crossviewbench", "--data-dir", str(data)]
    assert CliRunner().invoke(cli, [*args, "--no-cache", "--out", str(out)]).exit_code == 0
    build = build_site([tmp_path / "runs"], tmp_path / "site", reported="none")  # nested layout, previews
    assert build.runs == 1 and build.warnings == ()
    page = next((tmp_path / "site" / "models").glob("*.html")).read_text(encoding="utf-8")
    payload = json.loads(page.split('id="samples-data">', 1)[1].split("</script>", 1)[0])
    native = [r for r in payload["records"] if r["mode"] == "native" and r["prompt"].count("<region>")]
    assert native and all(r["regions"] is not None for r in native)
    for r in native:
        assert r["regions"]["label"] == "display only, the model received masks"
        assert [e["number"] for e in r["regions"]["legend"]] == list(range(1, r["prompt"].count("<region>") + 1))
        assert all((tmp_path / "site" / src.removeprefix("../")).is_file() for src in r["regions"]["images"])
    assert str(tmp_path) not in page  # sources relative to the data root
