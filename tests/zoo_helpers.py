"""Shared helpers for the zoo tests: a real HTTP file server on 127.0.0.1 that can misbehave."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.conftest import MODELS as SHARED_MODELS
from tests.conftest import SHARED, shared_or_skip

__all__ = ["SHARED", "SHARED_MODELS", "FileServer", "shared_or_skip"]


class FileServer:
    """Serves `files` (path -> bytes) with Range support.

    `modes[path]` picks a misbehaviour: "drop_once" (the first full request sends half the body,
    then closes), "drop_always", "wrong" (other bytes of the same length), "slow" (small chunks
    with pauses, so concurrent clients overlap). Unknown paths answer 404. Every request is logged
    as (path, Range header or None).
    """

    def __init__(self, files: dict[str, bytes], modes: dict[str, str] | None = None) -> None:
        self.files = dict(files)
        self.modes = dict(modes or {})
        self.log: list[tuple[str, str | None]] = []
        self._dropped: set[str] = set()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                server._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def full_requests(self, path: str) -> int:
        return sum(1 for p, r in self.log if p == path and r is None)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.lstrip("/")
        rng = h.headers.get("Range")
        with self._lock:
            self.log.append((path, rng))
        if path not in self.files:
            body = b"not found"
            h.send_response(404)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        data = self.files[path]
        mode = self.modes.get(path, "ok")
        if mode == "wrong":
            data = bytes((b + 1) % 256 for b in data)
        start = 0
        if rng and rng.startswith("bytes=") and mode != "no_range":
            start = int(rng[len("bytes="):].split("-")[0])
            if start >= len(data):
                h.send_response(416)
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            h.send_response(200)
        body = data[start:]
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        drop = mode == "drop_always" or (mode == "drop_once" and path not in self._dropped)
        if drop and len(body) > 1:
            self._dropped.add(path)
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(2)
            return
        if mode == "slow":
            step = max(1, len(body) // 10)
            for i in range(0, len(body), step):
                h.wfile.write(body[i : i + step])
                h.wfile.flush()
                time.sleep(0.05)
            return
        h.wfile.write(body)
