"""Issue 19 item 4: `cvbench view` in headless Chromium, following a real run as it is written.

The run (the built-in random baseline) is started in a subprocess and frozen with SIGSTOP part-way, so
the page is checked against a known, unchanging middle state; SIGCONT lets it finish and the page must
move on to the final table by itself."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import cli_env

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
if CHROMIUM is None:
    pytest.skip("chromium is not installed (apt-get install -y chromium); CI installs it", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
RUN_ARGS = ["--model", "random", "--task", "synth-crossviewbench,synth-mmvm", "--candidates", "4,8,12,all"]


def cvbench(args: list[str], tmp_path: Path, data: Path, **kw: object) -> subprocess.Popen[str]:
    env = cli_env(tmp_path, 100, None, data) | {"CVBENCH_MAX_RETRIES": "0", "CVBENCH_TIMEOUT_S": "20"}
    return subprocess.Popen(
        [sys.executable, "-m", "cvbench.cli", *args],
        cwd=tmp_path,
        env=env,
        text=True,
        **kw,  # type: ignore[call-overload]
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cvbench.tasks.loading import ensure_task_data
    from cvbench.tasks.registry import get_task

    root = tmp_path_factory.mktemp("view-data")
    for name in ("synth-crossviewbench", "synth-mmvm"):
        ensure_task_data(get_task(name), root)
    return root


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def start_viewer(tmp_path: Path, data: Path, runs: list[Path]) -> tuple[subprocess.Popen[str], str]:
    viewer = cvbench(["view", *map(str, runs), "--port", "0", "--poll", "200"], tmp_path, data, stdout=subprocess.PIPE)
    assert viewer.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = viewer.stdout.readline()
        match = re.search(r"viewer: (http://127\.0\.0\.1:\d+/)", line)
        if match:
            return viewer, match.group(1)
        if not line and viewer.poll() is not None:
            break
    viewer.kill()
    raise AssertionError("the viewer printed no URL")


def lines_in(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_the_viewer_follows_a_live_run_then_shows_its_final_table(page: Page, tmp_path: Path, data: Path) -> None:
    # a long path without break opportunities must wrap too (a phone-width page never scrolls sideways)
    live, failing = tmp_path / "runs" / "live", tmp_path / "runs" / ("failing_" + "x" * 60)
    # a run whose model cannot be reached: its errors are shown (fail-fast stops it after 8)
    bad = cvbench(
        ["run", "--model", "openai-compatible:m", "--base-url", "http://127.0.0.1:9/v1", "--task", "synth-mmvm",
         "--limit", "10", "--no-cache", "--out", str(failing), "--no-progress"],
        tmp_path, data, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert bad.wait(120) == 3
    viewer, url = start_viewer(tmp_path, data, [live, failing])
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    run = None
    try:
        page.goto(url)
        assert page.locator("script[src]").count() == 0
        expect(page.locator("#progress-text")).to_have_text("waiting for the run directory to appear")

        run = cvbench(
            ["run", *RUN_ARGS, "--limit", "4", "--concurrency", "1", "--no-cache", "--out", str(live), "--no-progress"],
            tmp_path, data, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        samples = live / "samples.jsonl"
        deadline = time.monotonic() + 120
        while lines_in(samples) < 3 and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.05)
        os.kill(run.pid, signal.SIGSTOP)  # a fixed middle state
        done = lines_in(samples)
        assert 3 <= done < 20, done  # 4 CrossViewBench + 4 x 4 MMVM records in all
        expect(page.locator("#status")).to_have_text("running", timeout=15_000)
        expect(page.locator("#progress-text")).to_contain_text(f"{done} samples done (running)")
        expect(page.locator("#slices tbody tr").first).to_contain_text("synth-crossviewbench@all")
        expect(page.locator("#page-text")).to_have_text(f"1-{done} of {done}")

        os.kill(run.pid, signal.SIGCONT)
        assert run.wait(180) == 0, run.stderr.read() if run.stderr else ""
        expect(page.locator("#status")).to_have_text("complete", timeout=15_000)
        expect(page.locator("#progress-text")).to_contain_text("20 of 20 samples (100.0%)")
        results = json.loads((live / "results.json").read_text())
        rows = page.locator("#slices tbody tr.level0 td:first-child").all_inner_texts()
        assert rows == ["synth-crossviewbench@all", "synth-mmvm@4", "synth-mmvm@8", "synth-mmvm@12", "synth-mmvm@all"]
        overall = results["evaluations"]["synth-mmvm@8"]["overall"]
        row = page.locator("#slices tbody tr.level0", has_text="synth-mmvm@8")
        lo, hi = overall["ci"]
        expect(row).to_contain_text(f"{100 * overall['accuracy']:.1f}")
        expect(row).to_contain_text(f"[{100 * lo:.1f}, {100 * hi:.1f}]")

        # the sample browser: filter, open one, see the images the model received
        page.fill("#q", "synth-mmvm@4")
        expect(page.locator("#page-text")).to_have_text("1-4 of 4")
        page.locator("#sample-list tr").first.click()
        detail = page.locator("#detail")
        expect(detail.locator("h3")).to_have_text(re.compile(r"^synth-mmvm@4/"))
        expect(detail.locator("img")).to_have_count(2)
        page.wait_for_function("[...document.querySelectorAll('#detail img')].every(i => i.naturalWidth > 0)")
        shown = detail.locator("h3").inner_text()
        record = next(json.loads(x) for x in samples.read_text().splitlines() if json.loads(x)["record_id"] == shown)
        expect(detail.locator("pre").first).to_have_text(record["prompt_text"])

        # the second run: its errors
        page.locator("#runs button", has_text="failing").click()
        expect(page.locator("#status")).to_have_text(re.compile("complete|partial|cancelled"))
        errors = [json.loads(x) for x in (failing / "samples.jsonl").read_text().splitlines()]
        errors = [r for r in errors if r["parse_status"] == "error"]
        assert errors
        expect(page.locator("#errors li")).to_have_count(len(errors))
        first = errors[0]
        expect(page.locator("#errors li").first).to_have_text(
            f"{first['record_id']}: {first['error']['kind']} - {first['error']['message']}"
        )
        assert all(u.startswith(url) for u in requests), [u for u in requests if not u.startswith(url)]
        for width in (1400, 390):  # no horizontal scroll on a wide screen or a phone
            page.set_viewport_size({"width": width, "height": 900})
            assert page.evaluate("document.documentElement.scrollWidth") <= width
    finally:
        if run is not None and run.poll() is None:
            os.kill(run.pid, signal.SIGCONT)
            run.kill()
        viewer.terminate()
        viewer.wait(10)
