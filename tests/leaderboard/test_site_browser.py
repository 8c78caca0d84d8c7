"""The built site in headless Chromium, served over loopback HTTP and opened from file://."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from cvbench.leaderboard.previews import PreviewSettings
from cvbench.leaderboard.site import build_site
from tests.reports.run_factory import XSS_NAME

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

from playwright.sync_api import Browser, Page, expect, sync_playwright


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site(factory_runs: list[Path], xss_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    build_site([*factory_runs, xss_run], out, samples_per_evaluation=30)
    return out


@pytest.fixture(scope="module")
def http_base(site: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(params=["http", "file"])
def base(request: pytest.FixtureRequest, site: Path, http_base: str) -> str:
    return http_base if request.param == "http" else site.as_uri() + "/"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1300, "height": 900})
    pg = context.new_page()
    problems: list[str] = []
    pg.on(
        "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None
    )
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.problems = problems  # type: ignore[attr-defined]
    yield pg
    context.close()
    assert problems == [], problems


def _column_values(page: Page, table: str, col: str) -> list[float | None]:
    return page.eval_on_selector_all(
        f"#table-{table} tbody tr:not(.hidden) td[data-col='{col}']",
        "cells => cells.map(c => c.dataset.sort === '' ? null : parseFloat(c.dataset.sort))",
    )


def test_sort_filter_and_intervals(page: Page, base: str) -> None:
    page.goto(base + "crossviewbench.html")
    header = page.locator("#table-crossviewbench-main thead tr:last-child th").nth(7).locator("button")
    assert header.inner_text().strip() == "Geometric"
    header.click()
    values = [v for v in _column_values(page, "crossviewbench-main", "all/category=geometric") if v is not None]
    assert len(values) > 5 and values == sorted(values, reverse=True)
    th = page.locator("#table-crossviewbench-main thead tr:last-child th").nth(7)
    assert th.get_attribute("aria-sort") == "descending"
    header.focus()
    page.keyboard.press("Enter")  # keyboard: the header is a button
    values = [v for v in _column_values(page, "crossviewbench-main", "all/category=geometric") if v is not None]
    assert values == sorted(values) and th.get_attribute("aria-sort") == "ascending"
    # missing values stay last in both directions
    all_values = _column_values(page, "crossviewbench-main", "all/category=geometric")
    assert None not in all_values[: len(values)]

    rows = page.locator("#table-crossviewbench-main tbody tr")
    visible_before = rows.evaluate_all("rs => rs.filter(r => r.offsetParent !== null).length")
    reported = page.locator("#table-crossviewbench-main tbody tr[data-origin='reported']")
    assert reported.first.is_visible()
    page.locator("input.filter-origin").uncheck()
    assert reported.evaluate_all("rs => rs.every(r => r.offsetParent === null)")
    assert page.locator("#table-crossviewbench-main tr[data-origin='reproduced']").first.is_visible()
    assert page.locator("#table-crossviewbench-main tr[data-origin='chance']").is_visible()
    page.locator("input.filter-access[value='api']").uncheck()
    assert not page.locator("#table-crossviewbench-main tr[data-access='api']").first.is_visible()
    page.locator("select.filter-size").select_option("4-13")
    visible = rows.evaluate_all(
        "rs => rs.filter(r => r.offsetParent !== null).map(r => r.dataset.size + '/' + r.dataset.origin)"
    )
    assert 0 < len(visible) < visible_before
    assert all(v.startswith("4-13/") or v.endswith("/chance") for v in visible)

    ci = page.locator(
        "#table-crossviewbench-main tbody tr[data-origin='reproduced']:not(.hidden) td[data-col='all/overall'] .ci"
    ).first
    assert not ci.is_visible()
    cell = page.locator(
        "#table-crossviewbench-main tbody tr[data-origin='reproduced']:not(.hidden) td[data-col='all/overall']"
    ).first
    assert "95% CI" in (cell.get_attribute("title") or "")
    page.locator("input.toggle-ci").check()
    assert ci.is_visible() and ci.inner_text().strip().startswith("[")


def test_reported_rows_look_different_and_link_their_source(page: Page, base: str) -> None:
    page.goto(base + "mmvm.html")
    row = page.locator("#table-mmvm-paper tr[data-row='reported-colva-internvl2-4b']")
    assert "reported in paper" in row.inner_text()
    assert row.locator("a.source").get_attribute("href") == "https://arxiv.org/abs/2501.04670"
    reproduced = page.locator("#table-mmvm-paper tr[data-origin='reproduced']").first
    bg = lambda loc: loc.locator("td").nth(1).evaluate("td => getComputedStyle(td).backgroundColor")
    assert bg(row) != bg(reproduced)
    assert "reproduced" in reproduced.inner_text()


def test_model_page_sample_deep_link_and_xss(page: Page, base: str) -> None:
    page.goto(base + "index.html")
    page.locator("#table-overview a", has_text="script").first.click()  # the XSS model's link text
    page.wait_for_load_state()
    assert "/models/" in page.url
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert XSS_NAME in page.locator("h1").inner_text()  # shown as text

    first = page.locator("#sample-list button").first
    record_id = first.get_attribute("data-id")
    assert record_id
    page.goto(page.url.split("#")[0] + "#sample=" + quote(record_id, safe=""))
    page.reload()
    detail = page.locator("#sample-detail")
    assert detail.locator("h3").inner_text() == record_id
    assert "window.__pwned" in detail.locator("pre.response").inner_text() or detail.locator(
        "dd"
    ).first.inner_text() in ("invalid", "error")
    assert page.evaluate("typeof window.__pwned") == "undefined"

    # filter to wrong answers and open one: the payload in the response is shown, never run
    page.locator("#sample-status").select_option("unparsed")
    buttons = page.locator("#sample-list button")
    assert buttons.count() > 0
    assert all(s == "unparsed" for s in page.locator("#sample-list .st").all_inner_texts())
    buttons.first.click()
    assert "sample=" in page.url
    response = page.locator("#sample-detail pre.response").inner_text()
    assert "<script>window.__pwned=1</script>" in response and "onerror" in response
    img_count = page.locator("#sample-detail img").count()
    assert img_count == 2
    assert page.locator("#sample-detail img").first.evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.evaluate("typeof window.__pwned") == "undefined"

    page.goto(page.url.split("#")[0] + "#sample=" + quote("nope@all/0", safe=""))
    expect(page.locator("#sample-detail")).to_contain_text("not included")


def test_slice_filter_in_sample_browser(page: Page, base: str, site: Path) -> None:
    model = next(p.name for p in (site / "models").glob("gpt-4o-*.html"))
    page.goto(base + "models/" + model)
    page.locator("#sample-slice").select_option("mmvm@4|cue=CL")
    ids = page.locator("#sample-list button").evaluate_all("bs => bs.map(b => b.dataset.id)")
    assert ids and all(i.startswith("mmvm@4/") for i in ids)
    first = page.locator("#sample-list button").first
    first.click()
    expect(page.locator("#sample-detail")).to_contain_text("cue=CL")  # waits for the detail to render


def test_download_table(page: Page, base: str) -> None:
    page.goto(base + "crossviewbench.html")
    link = page.locator("a[href='downloads/crossviewbench-main.csv']")
    with page.expect_download() as info:
        link.click()
    text = Path(info.value.path()).read_text(encoding="utf-8")
    assert text.startswith("table,task,benchmark,model,")
    assert "crossviewbench-main,crossviewbench,crossviewbench,CrossViewer,reported,native" in text
    assert ",62.7," in text


def test_preview_site_shows_previews_and_says_so(factory_runs: list[Path], browser: Browser, tmp_path: Path) -> None:
    out = tmp_path / "site"
    build_site(
        factory_runs[:1],
        out,
        reported="none",
        samples_per_evaluation=10,
        images="preview",
        preview=PreviewSettings(max_side=24),
    )
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    try:
        page = context.new_page()
        page.goto((out / "models").as_uri() + "/" + next((out / "models").glob("*.html")).name)
        page.locator("#sample-status").select_option("correct")
        page.locator("#sample-list button").first.click()
        detail = page.locator("#sample-detail")
        expect(detail).to_contain_text("Downscaled JPEG previews")  # waits for the detail to render
        img = detail.locator("img").first
        img.wait_for()
        assert img.evaluate("img => img.complete && img.naturalWidth === 24")
        assert "(preview), sha256 " in (img.get_attribute("title") or "")
    finally:
        context.close()
