"""Every HTML page cvbench writes (run report, leaderboard site) is safe to open:

- a Content-Security-Policy meta tag on every page, whose script-src allows no inline script;
- no inline event handlers (`on*=` attributes) and no `javascript:` URLs;
- no inline script other than JSON data blocks, each of which is valid JSON (so hostile text
  could not close the block early);
- hostile text from every source (model name, model response, sample id, question, options)
  shows up as text, never as markup.

The run is real: `cvbench run` against a loopback server whose answers carry HTML/JS payloads,
on data whose ids, questions and options carry more. (The in-browser check that nothing runs
is `tests/leaderboard/test_site_browser.py`.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.reliability.conftest import cli_env, cvbench, run_on_crossviewbench, write_two_view_crossviewbench
from tests.tasks.builders import cvb_record
from tests.wire.faults import FaultInjectingServer, deterministic_letter
from tests.wire.server import ReceivedRequest

MODEL_NAME = "<script>window.__pwned=1</script><img src=x onerror=alert(1)>"
RESPONSE_PAYLOAD = "</script><script>window.__pwned=2</script><img src=y onerror=alert(2)>"
SAMPLE_PAYLOAD = "s\"'><svg onload=alert(3)>"
QUESTION_PAYLOAD = "<b onmouseover=alert(4)>bold</b>"
OPTION_PAYLOAD = "<img src=z onerror=alert(5)>"
JSON_SCRIPT_TYPES = {"application/json", "application/ld+json", "importmap"}


@dataclass
class Page:
    path: Path
    csp: list[str] = field(default_factory=list)
    handlers: list[str] = field(default_factory=list)  # tag.attribute of every on* attribute
    js_urls: list[str] = field(default_factory=list)
    inline_scripts: list[str] = field(default_factory=list)  # bodies of non-JSON inline scripts
    json_blocks: list[str] = field(default_factory=list)
    tags: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)


class PageParser(HTMLParser):
    def __init__(self, page: Page) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self._script: tuple[str, bool] | None = None  # (type, has src) of the open <script>
        self._script_body: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): v for k, v in attrs}
        self.page.tags.append((tag, a))
        for name, value in a.items():
            if name.startswith("on"):
                self.page.handlers.append(f"{tag}.{name}")
            if (
                name in ("href", "src", "action", "formaction", "xlink:href")
                and value
                and value.strip().lower().startswith(("javascript:", "vbscript:"))
            ):
                self.page.js_urls.append(f"{tag}.{name}={value[:40]}")
        if tag == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy":
            self.page.csp.append(a.get("content") or "")
        if tag == "script":
            self._script = ((a.get("type") or "").lower(), "src" in a)
            self._script_body = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "script":
            self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script_body.append(data)
        else:
            self.page.text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag != "script" or self._script is None:
            return
        kind, has_src = self._script
        body = "".join(self._script_body)
        if kind in JSON_SCRIPT_TYPES:
            self.page.json_blocks.append(body)
        elif body.strip() or not has_src:
            self.page.inline_scripts.append(body[:120])
        self._script = None


def parse_page(path: Path) -> Page:
    page = Page(path)
    parser = PageParser(page)
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return page


def hostile_answer(request: ReceivedRequest) -> str:
    return f"Answer: {deterministic_letter(request.text) or 'A'} {RESPONSE_PAYLOAD}"


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> list[Page]:
    tmp = tmp_path_factory.mktemp("safe-html")
    write_two_view_crossviewbench(
        tmp / "data",
        lambda images: [
            cvb_record(
                f"{SAMPLE_PAYLOAD}{i}",
                images,
                scene=f"scene_{i % 3}",
                question=f"[item h{i}] Is {QUESTION_PAYLOAD} the same as <region>?",
                options=[f"A. {OPTION_PAYLOAD}", "B. </script><script>alert(6)</script>"],
            )
            for i in range(8)
        ],
    )
    env = cli_env(tmp)
    with FaultInjectingServer(None, answer=hostile_answer) as server:
        run_dir = tmp / "run"
        run_on_crossviewbench(f"openai-compatible:{MODEL_NAME}", server.base_url(), tmp / "data", run_dir, env, tmp)
    for step in (
        ["report", str(run_dir), "--out", str(tmp / "report")],
        ["leaderboard", "build", str(run_dir), "--out", str(tmp / "site"), "--samples-per-evaluation", "0"],
    ):
        result = cvbench(step, env, tmp)
        assert result.returncode == 0, (step, result.stdout[-2000:], result.stderr[-2000:])
    files = sorted([*(tmp / "report").rglob("*.html"), *(tmp / "site").rglob("*.html")])
    assert any(p.name == "report.html" for p in files) and any(p.name == "index.html" for p in files)
    return [parse_page(p) for p in files]


def test_every_page_has_a_strict_csp(pages: list[Page]) -> None:
    for page in pages:
        assert len(page.csp) == 1, f"{page.path}: {len(page.csp)} CSP meta tags"
        directives = {d.split()[0]: d.split()[1:] for d in page.csp[0].split(";") if d.strip()}
        scripts = directives.get("script-src", directives.get("default-src"))
        assert scripts is not None, f"{page.path}: CSP without script-src/default-src: {page.csp[0]}"
        assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts and "*" not in scripts, page.csp[0]
        assert "object-src" in directives or directives.get("default-src") == ["'none'"], page.csp[0]


def test_no_event_handlers_or_javascript_urls(pages: list[Page]) -> None:
    for page in pages:
        assert not page.handlers, f"{page.path}: inline event handlers {page.handlers[:5]}"
        assert not page.js_urls, f"{page.path}: javascript: URLs {page.js_urls[:5]}"


def test_only_json_data_blocks_inline(pages: list[Page]) -> None:
    for page in pages:
        assert not page.inline_scripts, f"{page.path}: inline scripts {page.inline_scripts[:3]}"
        for body in page.json_blocks:
            json.loads(body)  # a block closed early by hostile text would not parse
            assert "</" not in body, f"{page.path}: '</' inside a JSON data block"


def test_hostile_text_is_text_not_markup(pages: list[Page]) -> None:
    for page in pages:
        for tag, attrs in page.tags:
            assert not (tag == "img" and attrs.get("src") in ("x", "y", "z")), f"{page.path}: injected <img>"
            assert tag not in ("svg", "b") or not any(k.startswith("on") for k in attrs), page.path
    text = "\n".join(t for page in pages for t in page.text)
    data = "\n".join(b for page in pages for b in page.json_blocks)
    everywhere = text + data
    assert "window.__pwned=1" in everywhere  # the model name is shown (as text / data)
    assert "window.__pwned=2" in everywhere or "window.__pwned=2" in data.replace("\\u003c", "<")  # the response
    report = [p for p in pages if p.path.name == "report.html"]
    assert report and any(MODEL_NAME in t for t in report[0].text), "report does not show the model name as text"
