"""The viewer's HTTP server: one page and a JSON API, on 127.0.0.1 only.

GET /                          the page (static/viewer.html: its script and style are inline)
GET /api/runs                  every run: progress, slice table with intervals, errors
GET /api/runs/<i>/samples      ?offset=&limit=&q=&status= : a page of sample records
GET /api/runs/<i>/images/<sha> an image the model received (by SHA-256 only)
"""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cvbench.viewer.state import RunWatch

PAGE = Path(__file__).with_name("static") / "viewer.html"
HOST = "127.0.0.1"
MAX_PAGE = 200
_SAMPLES = re.compile(r"^/api/runs/(\d+)/samples$")
_IMAGE = re.compile(r"^/api/runs/(\d+)/images/([0-9a-f]{64})$")


class ViewerServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, runs: Sequence[Path], port: int = 0, poll_ms: int = 1000) -> None:
        self.watches = [RunWatch(Path(p)) for p in runs]
        self.poll_ms = poll_ms
        super().__init__((HOST, port), _Handler)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="cvbench-view", daemon=True)
        thread.start()
        return thread


def page_html(poll_ms: int) -> bytes:
    return PAGE.read_text(encoding="utf-8").replace("__POLL_MS__", str(int(poll_ms))).encode("utf-8")


class _Handler(http.server.BaseHTTPRequestHandler):
    server: ViewerServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the terminal shows the URL only
        pass

    def _send(self, status: int, body: bytes, mime: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", mime)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header(
            "Content-Security-Policy",
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self'; "
            "connect-src 'self'",
        )
        self.end_headers()
        self.wfile.write(body)

    def _json(self, data: Any, status: int = 200) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

    def _watch(self, index: str) -> RunWatch | None:
        i = int(index)
        return self.server.watches[i] if i < len(self.server.watches) else None

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path in ("/", "/index.html"):
            self._send(200, page_html(self.server.poll_ms), "text/html; charset=utf-8")
            return
        if url.path == "/api/runs":
            self._json({"runs": [w.snapshot() for w in self.server.watches]})
            return
        match = _SAMPLES.match(url.path)
        if match and (watch := self._watch(match.group(1))) is not None:
            query = parse_qs(url.query)

            def arg(name: str, default: str = "") -> str:
                return query.get(name, [default])[0]

            try:
                offset, limit = max(0, int(arg("offset", "0"))), min(MAX_PAGE, max(1, int(arg("limit", "50"))))
            except ValueError:
                self._json({"error": "offset and limit must be whole numbers"}, 400)
                return
            self._json(watch.samples(offset, limit, arg("q"), arg("status")))
            return
        match = _IMAGE.match(url.path)
        if match and (watch := self._watch(match.group(1))) is not None:
            found = watch.image(match.group(2))
            if found is not None:
                path, mime = found
                self._send(200, path.read_bytes(), mime)
                return
        self._json({"error": f"not found: {url.path}"}, 404)
