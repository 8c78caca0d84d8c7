"""A loopback HTTP server speaking as much of the Hugging Face Hub API as snapshot_download
uses: repo info by revision, the recursive tree listing, and HEAD/GET on resolve URLs."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _handler(repo_id: str, files: Mapping[str, bytes], log: list[str]) -> type[BaseHTTPRequestHandler]:
    api_prefix = f"/api/datasets/{repo_id}/"
    resolve_prefix = f"/datasets/{repo_id}/resolve/"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def _send(self, status: int, body: bytes, headers: Mapping[str, str] | None = None, head: bool = False) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _json(self, data: object) -> None:
            self._send(200, json.dumps(data).encode(), {"Content-Type": "application/json"})

        def _route(self, head: bool) -> None:
            path = unquote(urlparse(self.path).path)
            log.append(f"{self.command} {path}")
            if path.startswith(api_prefix + "revision/"):
                siblings = [{"rfilename": name} for name in sorted(files)]
                return self._json({"id": repo_id, "sha": COMMIT, "siblings": siblings, "private": False})
            if path.startswith(api_prefix + "tree/"):
                return self._json(
                    [
                        {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                        for name, data in sorted(files.items())
                    ]
                )
            if path.startswith(resolve_prefix):
                _, _, name = path[len(resolve_prefix) :].partition("/")
                if name not in files:
                    return self._send(404, b"not found", {"X-Error-Code": "EntryNotFound"})
                data = files[name]
                return self._send(
                    200,
                    data,
                    {
                        "X-Repo-Commit": COMMIT,
                        "ETag": f'"{hashlib.sha1(data).hexdigest()}"',
                        "Content-Type": "application/octet-stream",
                    },
                    head=head,
                )
            self._send(404, b"not found", {"X-Error-Code": "RepoNotFound"})

        def do_GET(self) -> None:
            self._route(head=False)

        def do_HEAD(self) -> None:
            self._route(head=True)

    return Handler


@contextmanager
def hub_server(repo_id: str, files: Mapping[str, bytes]) -> Iterator[tuple[str, list[str]]]:
    """Serve `files` as the dataset repo `repo_id`; yields (endpoint URL, request log)."""
    log: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(repo_id, files, log))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", log
    finally:
        server.shutdown()
        server.server_close()
