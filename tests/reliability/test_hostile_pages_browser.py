"""Hostile text in every field that reaches a page, proven harmless in headless Chromium.

A real `cvbench run` against a loopback server, on data whose sample ids, scenes, questions and
options carry HTML/JS payloads, with a model name, a run directory name (the run's label), a site
title, model answers and an error text (a 400 body) carrying more. The run report and the
leaderboard site are built, and every HTML page is opened in Chromium over file://. Each payload,
if it ever ran, would set `window.__pwned` or open a dialog; after the page has loaded and its own
script has run, neither happened, and the hostile text is on the page as text.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.conftest import cli_env, cvbench, run_on_crossviewbench, write_two_view_crossviewbench
from tests.tasks.builders import cvb_record
from tests.wire.faults import FaultInjectingServer, deterministic_letter
from tests.wire.server import Fault, ReceivedRequest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

if CHROMIUM is None:
    pytest.skip("chromium is not installed (apt-get install -y chromium); CI installs it", allow_module_level=True)

from playwright.sync_api import Dialog, sync_playwright


def payload(n: int) -> str:
    """Markup that sets window.__pwned = n if it is ever parsed as HTML or run as script."""
    return (
        f"<img src=x{n} onerror=window.__pwned={n}><script>window.__pwned={n}</script>"
        f"<svg onload=window.__pwned={n}></svg>"
    )


FIELDS = {
    "model name": 1,
    "sample id": 2,
    "scene": 3,
    "question": 4,
    "option": 5,
    "answer": 6,
    "error text": 7,
    "run label": 8,
    "site title": 9,
}
# a sample id and a directory name cannot hold '/': the same payload with its closing tags dropped
ID_PAYLOAD = "\"'><img src=x2 onerror=window.__pwned=2><svg onload=window.__pwned=2>"
LABEL_PAYLOAD = "run<img src=x8 onerror=window.__pwned=8>"


def hostile_answer(request: ReceivedRequest) -> str:
    return f"Answer: {deterministic_letter(request.text) or 'A'} {payload(FIELDS['answer'])}"


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    tmp = tmp_path_factory.mktemp("hostile")
    write_two_view_crossviewbench(
        tmp / "data",
        lambda images: [
            cvb_record(
                f"{ID_PAYLOAD}{i}",
                images,
                scene=f"{payload(FIELDS['scene'])}{i % 2}",
                question=f"[item h{i}] Is {payload(FIELDS['question'])} the same as <region>?",
                options=[f"A. {payload(FIELDS['option'])}", "B. plain"],
            )
            for i in range(6)
        ],
    )
    env = cli_env(tmp)
    run_dir = tmp / LABEL_PAYLOAD
    with FaultInjectingServer(None, answer=hostile_answer) as server:
        server.add_faults(Fault(status=400, message=f"bad request {payload(FIELDS['error text'])}"))
        model = f"openai-compatible:{payload(FIELDS['model name'])}"
        run_on_crossviewbench(model, server.base_url(), tmp / "data", run_dir, env, tmp, "--concurrency", "1")
    for step in (
        ["report", str(run_dir), "--out", str(tmp / "report")],
        [
            "leaderboard",
            "build",
            str(run_dir),
            "--out",
            str(tmp / "site"),
            "--title",
            f"Board {payload(FIELDS['site title'])}",
            "--samples-per-evaluation",
            "6",
        ],
    ):
        result = cvbench(step, env, tmp)
        assert result.returncode == 0, (step, result.stdout[-2000:], result.stderr[-2000:])
    files = sorted([*(tmp / "report").rglob("*.html"), *(tmp / "site").rglob("*.html")])
    assert any(p.name == "report.html" for p in files) and any(p.name == "index.html" for p in files)
    return files


@pytest.fixture(scope="module")
def opened(pages: list[Path]) -> Iterator[list[tuple[Path, object, list[str], str]]]:
    """(page, window.__pwned after load, dialogs opened, the page's text) for every page."""
    seen = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for path in pages:
                context = browser.new_context()
                page = context.new_page()
                dialogs: list[str] = []

                def on_dialog(dialog: Dialog, dialogs: list[str] = dialogs) -> None:
                    dialogs.append(dialog.message)
                    dialog.dismiss()

                page.on("dialog", on_dialog)
                page.goto(path.as_uri(), wait_until="load")
                page.wait_for_timeout(300)  # let onerror/onload of any injected element fire
                pwned = page.evaluate("() => window.__pwned === undefined ? null : window.__pwned")
                text = page.evaluate("() => document.documentElement.innerText + ' ' + document.title")
                seen.append((path, pwned, dialogs, text))
                context.close()
        finally:
            browser.close()
    yield seen


def test_no_payload_runs_in_any_page(opened: list[tuple[Path, object, list[str], str]]) -> None:
    for path, pwned, dialogs, _ in opened:
        assert pwned is None, f"{path}: a payload ran (window.__pwned = {pwned}: the {pwned} field)"
        assert not dialogs, f"{path}: dialogs opened {dialogs}"


def test_hostile_text_is_shown_as_text(opened: list[tuple[Path, object, list[str], str]]) -> None:
    texts = {path.name: text for path, _, _, text in opened}
    everything = "\n".join(texts.values())
    report = texts["report.html"]
    assert payload(FIELDS["model name"]) in report  # the model name, character for character
    assert f"onerror=window.__pwned={FIELDS['site title']}" in texts["index.html"]
    for field_name, n in FIELDS.items():  # every field reached a page, as visible text
        assert f"window.__pwned={n}" in everything, f"the {field_name} is not on any page"
