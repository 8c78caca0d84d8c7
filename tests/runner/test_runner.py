from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cvbench.rundir.format import iter_records, load_run
from cvbench.runner.merge import merge_runs
from cvbench.runner.options import ConfigMismatchError, RunError, RunOptions
from cvbench.runner.session import Runner

TIMINGS = ("latency_s", "cached")


def run_tiny(data: Any, out: Path, **kw: Any):
    options = RunOptions(
        tasks=(data.task,),
        data_dir=data.root,
        out=out,
        progress=False,
        **{"model": "random", "use_cache": False, "n_resamples": 300, **kw},
    )
    return Runner(options).execute()


def records_without_timings(run_dir: Path) -> list[dict[str, Any]]:
    out = []
    for line in (run_dir / "samples.jsonl").read_text().splitlines():
        data = json.loads(line)
        for key in TIMINGS:
            data.pop(key)
        out.append(data)
    return out


def cli(args: list[str], env: dict[str, str], **kw: Any) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cvbench.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )


def test_random_run_invalid_samples_and_chance(tiny_data: Any, tmp_path: Path) -> None:
    outcome = run_tiny(tiny_data, tmp_path / "run")
    assert outcome.status == "complete" and outcome.exit_code == 0
    records = list(iter_records(tmp_path / "run"))
    assert len(records) == tiny_data.n_total
    invalid = [r for r in records if r.parse_status == "invalid"]
    assert len(invalid) == tiny_data.n_invalid
    assert any("not valid JSON" in (r.invalid or "") or "JSON" in (r.invalid or "") for r in invalid)
    assert any(r.sample_id == "broken-image" and "prompt" in (r.invalid or "") for r in invalid)
    assert all(not r.correct for r in invalid)
    run = load_run(tmp_path / "run")
    overall = run.results.overall
    assert overall.n == tiny_data.n_total and overall.invalid == tiny_data.n_invalid
    ev = run.results.evaluations[f"{tiny_data.task}@all"]
    assert set(ev.slices or {}) == {"category=correspondence", "task_type=Q1", "task_type=Q2"}
    # random lands within its interval of chance (the interval of the answered samples)
    valid = (ev.slices or {})["category=correspondence"]
    assert valid.chance == pytest.approx(0.25)
    assert valid.ci is not None and valid.ci[0] <= 0.25 <= valid.ci[1]
    assert valid.n_clusters == tiny_data.n_scenes
    # images saved once, content-addressed
    for r in records:
        for sha in r.image_sha256:
            assert run.image_path(sha) is not None
    config = run.config
    assert config.model.id == "baseline:random"
    assert (config.datasets or {})[tiny_data.task].fingerprint.startswith("sha256:")
    assert (config.environment or {})["packages"]["numpy"]


def test_same_command_twice_gives_identical_records(tiny_data: Any, tmp_path: Path) -> None:
    for name in ("a", "b"):
        run_tiny(tiny_data, tmp_path / name, model="mask-heuristic", concurrency=4)
    a, b = records_without_timings(tmp_path / "a"), records_without_timings(tmp_path / "b")
    assert a == b
    assert next(r["mode"] for r in a if r["parse_status"] != "invalid") == "native"
    ra = json.loads((tmp_path / "a" / "results.json").read_text())
    rb = json.loads((tmp_path / "b" / "results.json").read_text())
    assert ra["overall"] == rb["overall"]
    assert ra["slices"] == rb["slices"]


def test_mask_heuristic_solves_colour_retrieval(tiny_data: Any, tmp_path: Path) -> None:
    # the tiny set is pure colour matching, so the heuristic must get every valid sample right
    run_tiny(tiny_data, tmp_path / "h", model="mask-heuristic")
    records = [r for r in iter_records(tmp_path / "h") if r.parse_status != "invalid"]
    assert len(records) == tiny_data.n_valid
    assert all(r.correct for r in records), [(r.sample_id, r.response, r.answer) for r in records if not r.correct]


def test_config_mismatch_is_refused(tiny_data: Any, tmp_path: Path) -> None:
    run_tiny(tiny_data, tmp_path / "run", limit=5)
    with pytest.raises(ConfigMismatchError, match="limit"):
        run_tiny(tiny_data, tmp_path / "run", limit=6)
    with pytest.raises(ConfigMismatchError, match="model"):
        run_tiny(tiny_data, tmp_path / "run", limit=5, model="first-option")


def test_rerun_of_finished_run_sends_nothing(tiny_data: Any, tmp_path: Path, fake_openai: Any) -> None:
    kw = {"model": "openai-compatible:tiny", "base_urls": (fake_openai.base_url,), "use_cache": False}
    first = run_tiny(tiny_data, tmp_path / "run", **kw)
    sent = fake_openai.total
    assert first.status == "complete" and sent == tiny_data.n_valid
    again = run_tiny(tiny_data, tmp_path / "run", **kw)
    assert fake_openai.total == sent
    assert again.resumed_records == tiny_data.n_total and again.new_records == 0
    assert again.results["overall"] == first.results["overall"]


def test_cache_answers_a_new_run_dir(tiny_data: Any, tmp_path: Path, fake_openai: Any) -> None:
    kw = {
        "model": "openai-compatible:tiny",
        "base_urls": (fake_openai.base_url,),
        "use_cache": True,
        "cache": tmp_path / "cache.sqlite",
    }
    run_tiny(tiny_data, tmp_path / "a", **kw)
    sent = fake_openai.total
    run_tiny(tiny_data, tmp_path / "b", **kw)
    assert fake_openai.total == sent
    b = [r for r in iter_records(tmp_path / "b") if r.parse_status != "invalid"]
    assert all(r.cached for r in b)
    assert records_without_timings(tmp_path / "a") == records_without_timings(tmp_path / "b")


def test_errors_are_recorded_not_cached_and_retried(tiny_data: Any, tmp_path: Path, fake_openai: Any) -> None:
    kw = {
        "model": "openai-compatible:tiny",
        "base_urls": (fake_openai.base_url,),
        "use_cache": True,
        "cache": tmp_path / "cache.sqlite",
    }
    reference = run_tiny(tiny_data, tmp_path / "ref", **{**kw, "use_cache": False})
    keys = [fake_openai.key_of(r.image_sha256) for r in iter_records(tmp_path / "ref") if r.parse_status != "invalid"]
    fake_openai.fail_keys = set(keys[:3])
    fake_openai.counts.clear()
    first = run_tiny(tiny_data, tmp_path / "run", **kw)
    assert first.status == "partial"
    errors = [r for r in iter_records(tmp_path / "run") if r.parse_status == "error"]
    assert len(errors) == 3 and all(not r.correct and r.error and r.error["status"] == 400 for r in errors)
    assert first.results["overall"]["errors"] == 3
    fake_openai.fail_keys = set()
    fake_openai.counts.clear()
    second = run_tiny(tiny_data, tmp_path / "run", **kw)
    assert second.status == "complete"
    assert sorted(fake_openai.counts) == sorted(keys[:3])  # only the failed ones were sent again
    assert records_without_timings(tmp_path / "run") == records_without_timings(tmp_path / "ref")
    assert second.results["overall"] == reference.results["overall"]


def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def cli_run_args(tiny_data: Any, server: Any, concurrency: int, *extra: str) -> list[str]:
    """`cvbench run` against the loopback OpenAI-compatible server, no cache, no progress bar."""
    return [
        "run",
        "--model",
        "openai-compatible:tiny",
        "--base-url",
        server.base_url,
        "--task",
        tiny_data.task,
        "--data-dir",
        str(tiny_data.root),
        "--no-cache",
        "--concurrency",
        str(concurrency),
        "--no-progress",
        *extra,
    ]


def test_kill_9_mid_run_then_resume(tiny_data: Any, tmp_path: Path, make_fake_openai: Any) -> None:
    server = make_fake_openai(delay_s=0.15)
    env = cli_env()
    args = cli_run_args(tiny_data, server, 2)
    run_tiny(
        tiny_data,
        tmp_path / "ref",
        model="openai-compatible:tiny",
        base_urls=(server.base_url,),
        concurrency=2,
        n_resamples=2000,
    )  # the uninterrupted reference, in-process
    server.counts.clear()

    out = tmp_path / "run"
    proc = cli([*args, "--out", str(out)], env)
    deadline = time.monotonic() + 60
    while server.total < 8 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.kill()  # SIGKILL: no cleanup at all
    proc.wait(timeout=30)
    assert server.total < tiny_data.n_valid, "the run finished before it could be killed"
    finished = {server.key_of(r.image_sha256) for r in iter_records(out) if r.parse_status == "parsed"}
    assert finished, "nothing was written before the kill"
    assert not (out / "results.json").exists()

    resumed = cli([*args, "--out", str(out)], env)
    assert resumed.wait(timeout=120) == 0, resumed.stdout.read() if resumed.stdout else ""
    for key in finished:
        assert server.counts[key] == 1, "a finished sample was sent again"
    assert records_without_timings(out) == records_without_timings(tmp_path / "ref")
    final = json.loads((out / "results.json").read_text())
    reference = json.loads((tmp_path / "ref" / "results.json").read_text())
    assert final["status"] == "complete"
    assert final["overall"] == reference["overall"] and final["evaluations"].keys() == reference["evaluations"].keys()
    for key, ev in reference["evaluations"].items():
        assert final["evaluations"][key]["overall"] == ev["overall"]
        assert final["evaluations"][key]["slices"] == ev["slices"]


def reference_run_then_hold_the_first_sample(tiny_data: Any, ref: Path, server: Any) -> tuple[str, threading.Event]:
    """An uninterrupted reference run into `ref`; then the server holds the first valid sample's
    request until the returned event is set. Returns that request's key and the event."""
    run_tiny(
        tiny_data, ref, model="openai-compatible:tiny", base_urls=(server.base_url,), concurrency=4, n_resamples=2000
    )
    first = next(r for r in iter_records(ref) if r.parse_status != "invalid")
    key, release = server.key_of(first.image_sha256), threading.Event()
    server.hold_keys[key] = release
    return key, release


def test_records_behind_a_hung_request_survive_kill_9(tiny_data: Any, tmp_path: Path, make_fake_openai: Any) -> None:
    """A finished record is on disk at once, even while an earlier sample's request hangs; the
    finished file is still in input order."""
    server = make_fake_openai()
    hung, release = reference_run_then_hold_the_first_sample(tiny_data, tmp_path / "ref", server)
    server.counts.clear()

    env = cli_env()
    out = tmp_path / "run"
    args = cli_run_args(tiny_data, server, 4, "--out", str(out))
    proc = cli(args, env)
    try:
        deadline = time.monotonic() + 60
        written: set[str] = set()
        while len(written) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
            written = {server.key_of(r.image_sha256) for r in iter_records(out) if r.parse_status == "parsed"}
        assert len(written) >= 10 and hung not in written, "records behind the hung request were not written"
        proc.kill()
        proc.wait(timeout=30)
    finally:
        release.set()
    # the resume sends only what was not written (no cache: a lost record would be sent again)
    server.hold_keys.clear()
    server.counts.clear()
    resumed = cli(args, env)
    assert resumed.wait(timeout=120) == 0, resumed.stdout.read() if resumed.stdout else ""
    assert not set(server.counts) & written
    assert records_without_timings(out) == records_without_timings(tmp_path / "ref")


def test_out_of_order_completions_are_written_in_input_order(
    tiny_data: Any, tmp_path: Path, make_fake_openai: Any
) -> None:
    server = make_fake_openai()
    _, release = reference_run_then_hold_the_first_sample(tiny_data, tmp_path / "ref", server)
    threading.Timer(1.0, release.set).start()  # answered last, well after the others
    outcome = run_tiny(
        tiny_data,
        tmp_path / "run",
        model="openai-compatible:tiny",
        base_urls=(server.base_url,),
        concurrency=4,
        n_resamples=2000,
    )
    assert outcome.status == "complete"
    assert records_without_timings(tmp_path / "run") == records_without_timings(tmp_path / "ref")
    reference = json.loads((tmp_path / "ref" / "results.json").read_text())
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["overall"] == reference["overall"]
    for key, ev in reference["evaluations"].items():  # all but the latencies in `usage`
        assert {k: v for k, v in results["evaluations"][key].items() if k != "usage"} == {
            k: v for k, v in ev.items() if k != "usage"
        }
    assert not list((tmp_path / "run").glob("*.tmp"))


def test_sigint_writes_cancelled_results_and_resumes(tiny_data: Any, tmp_path: Path, make_fake_openai: Any) -> None:
    server = make_fake_openai(delay_s=0.15)
    env = cli_env()
    args = cli_run_args(tiny_data, server, 2, "--out", str(tmp_path / "run"))
    proc = cli(args, env)
    deadline = time.monotonic() + 60
    while server.total < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["status"] == "cancelled"
    done = list(iter_records(tmp_path / "run"))
    assert 0 < len(done) < tiny_data.n_total
    sent_before = server.total
    assert sent_before == sum(1 for r in done if r.parse_status != "invalid")  # in-flight ones were finished
    again = cli(args, env)
    assert again.wait(timeout=120) == 0
    assert json.loads((tmp_path / "run" / "results.json").read_text())["status"] == "complete"
    assert server.total == tiny_data.n_valid


def test_shards_merge_to_the_whole_run(tiny_data: Any, tmp_path: Path) -> None:
    whole = run_tiny(tiny_data, tmp_path / "whole")
    for i in range(3):
        run_tiny(tiny_data, tmp_path / f"s{i}", shard=(i, 3))
    sizes = [len(list(iter_records(tmp_path / f"s{i}"))) for i in range(3)]
    assert sum(sizes) == tiny_data.n_total and all(sizes)
    merged = merge_runs([tmp_path / f"s{i}" for i in (2, 0, 1)], tmp_path / "merged")
    assert merged["status"] == "complete"
    assert merged["overall"]["correct"] == whole.results["overall"]["correct"]
    assert merged["overall"]["n"] == whole.results["overall"]["n"]
    assert merged["overall"]["accuracy"] == whole.results["overall"]["accuracy"]
    assert sorted(json.dumps(r, sort_keys=True) for r in records_without_timings(tmp_path / "merged")) == sorted(
        json.dumps(r, sort_keys=True) for r in records_without_timings(tmp_path / "whole")
    )
    with pytest.raises(RunError, match="twice"):
        merge_runs([tmp_path / "s0", tmp_path / "s0"], tmp_path / "dup")
    run_tiny(tiny_data, tmp_path / "other", shard=(1, 3), seed=5)
    with pytest.raises(RunError, match="seed"):
        merge_runs([tmp_path / "s0", tmp_path / "other"], tmp_path / "bad")


def test_torn_last_line_is_dropped_on_resume(tiny_data: Any, tmp_path: Path) -> None:
    run_tiny(tiny_data, tmp_path / "run")
    path = tmp_path / "run" / "samples.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-3]) + lines[-3][: len(lines[-3]) // 2])  # crash mid-write
    before = [{k: v for k, v in json.loads(x).items() if k not in TIMINGS} for x in lines[:-3]]
    outcome = run_tiny(tiny_data, tmp_path / "run")
    assert outcome.new_records == 3 and outcome.status == "complete"
    after = records_without_timings(tmp_path / "run")
    assert len(after) == tiny_data.n_total
    assert after[: len(before)] == before
    assert after == [{k: v for k, v in json.loads(x).items() if k not in TIMINGS} for x in lines]


def test_judge_reads_only_unparsed_answers(tiny_data: Any, tmp_path: Path, fake_openai: Any) -> None:
    fake_openai.reply_text = "It is the one on the far left, I believe."
    fake_openai.judge_reply = "C"
    kw = {
        "model": "openai-compatible:m",
        "base_urls": (fake_openai.base_url,),
        "judge": "openai-compatible:judge",
        "use_cache": True,
        "cache": tmp_path / "cache.sqlite",
    }
    outcome = run_tiny(tiny_data, tmp_path / "run", **kw)
    records = [r for r in iter_records(tmp_path / "run") if r.parse_status != "invalid"]
    assert all(r.parse_status == "judged" and r.parsed == "C" and r.judge for r in records)
    assert outcome.results["overall"]["judged"] == tiny_data.n_valid
    judge_prompts = [p for p in fake_openai.prompts if "Model answer:" in p]
    # identical judge texts share one cache entry (the tiny set repeats its question), so at most n requests
    assert 1 <= len(judge_prompts) <= tiny_data.n_valid and "far left" in judge_prompts[0]
    # judge requests are cached like any other: a second run directory sends nothing
    sent = fake_openai.total
    run_tiny(tiny_data, tmp_path / "again", **kw)
    assert fake_openai.total == sent
    # a judge that declines keeps the answer unparsed (never a guess)
    fake_openai.judge_reply = "NONE"
    run_tiny(tiny_data, tmp_path / "none", **{**kw, "use_cache": False})
    assert all(
        r.parse_status == "unparsed" and r.parsed is None
        for r in iter_records(tmp_path / "none")
        if r.parse_status != "invalid"
    )
    # an answer the strict parser reads never goes to the judge
    fake_openai.reply_text = "B"
    fake_openai.prompts.clear()
    run_tiny(tiny_data, tmp_path / "parsed", **{**kw, "use_cache": False})
    records = [r for r in iter_records(tmp_path / "parsed") if r.parse_status != "invalid"]
    assert all(r.parse_status == "parsed" and r.judge is None for r in records)
    assert not any("Model answer:" in p for p in fake_openai.prompts)


MMVM_SPEC = """
name = "tiny-mmvm"
benchmark = "mmvm"
description = "tiny synthetic MMVM set for the runner tests"
source = "mmvm-tsv"
data_file = "mllm_match_eval_full.tsv"
data_subdir = "tiny-mmvm"
synthetic = false
slice_dims = ["cue", "bucket"]
candidate_settings = ["4", "8", "all"]
"""


def test_mmvm_candidate_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cvbench.tasks.synthetic import generate_mmvm

    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "tiny-mmvm.toml").write_text(MMVM_SPEC)
    monkeypatch.setenv("CVBENCH_TASK_DIRS", str(specs))
    generate_mmvm(tmp_path / "data" / "tiny-mmvm", per_cue=1, seed=0)
    options = RunOptions(
        model="random",
        tasks=("tiny-mmvm",),
        data_dir=tmp_path / "data",
        out=tmp_path / "run",
        candidates=("4", "all"),
        use_cache=False,
        progress=False,
        n_resamples=100,
    )
    outcome = Runner(options).execute()
    records = list(iter_records(tmp_path / "run"))
    by_setting: dict[str, list[Any]] = {}
    for r in records:
        by_setting.setdefault(r.setting, []).append(r)
    assert set(by_setting) == {"4", "all"} and len(by_setting["4"]) == len(by_setting["all"])
    assert [r.record_id.split("@")[0] for r in records] == ["tiny-mmvm"] * len(records)
    assert all(r.record_id == f"tiny-mmvm@{r.setting}/{r.sample_id}" for r in records)
    # input order: each sample once per setting, settings next to each other
    assert [r.setting for r in records[:4]] == ["4", "all", "4", "all"]
    valid4 = [r for r in by_setting["4"] if r.parse_status != "invalid"]
    assert valid4 and all(r.n_options <= 5 for r in valid4)  # 4 candidates + "None of the above"
    assert set(outcome.results["evaluations"]) == {"tiny-mmvm@4", "tiny-mmvm@all"}
    with pytest.raises(RunError, match="12"):
        Runner(
            RunOptions(
                model="random",
                tasks=("tiny-mmvm",),
                data_dir=tmp_path / "data",
                out=tmp_path / "r12",
                candidates=("12",),
                use_cache=False,
                progress=False,
            )
        ).execute()
