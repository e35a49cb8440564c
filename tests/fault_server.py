"""THE test HTTP server: a fault-injecting file server on 127.0.0.1, for the fetch, dataset and CLI tests.

`FaultServer(files, faults, root=FOLDER)` serves `files` (path -> bytes) and, for other paths, the
files under `root` as they are at the time of the request (a static site the test writes into),
with Range support. `faults[path]` is one fault or a list used one per request (the last one
repeats), each of:

    "ok"          normal answer (206 for a Range request)
    "404", "403", "500", "503"   that status with a short body
    "hang"        accept, send nothing until the client gives up (or the server stops)
    "drop:N"      headers for the full body, then N bytes, then the connection is cut
    "drop_once"   the first request is cut half-way; later ones are "ok"
    "no_range"    ignore Range: always 200 with the whole body
    "wrong"       other bytes of the same length
    "trickle"     the body in small pieces with pauses (0.05 s each: slow, but always moving)

Every request is logged as (path, Range header or None).
"""

from __future__ import annotations

import contextlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


class FaultServer:
    def __init__(self, files: dict[str, bytes] | None = None, faults: dict[str, str | list[str]] | None = None,
                 trickle_pause: float = 0.05, *, root: Path | None = None) -> None:
        self.files = dict(files or {})
        self.root = Path(root).resolve() if root is not None else None
        self.faults = {k: ([v] if isinstance(v, str) else list(v)) for k, v in (faults or {}).items()}
        self.trickle_pause = trickle_pause
        self.log: list[tuple[str, str | None]] = []
        self._count: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
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

    def __enter__(self) -> FaultServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def full_requests(self, path: str) -> int:
        return sum(1 for p, r in self.log if p == path and r is None)

    def requests(self, path: str) -> int:
        return sum(1 for p, _ in self.log if p == path)

    def ranges(self) -> list[str]:
        return [r for _, r in self.log if r is not None]

    def _data(self, path: str) -> bytes | None:
        if path in self.files:
            return self.files[path]
        if self.root is None:
            return None
        file = (self.root / path).resolve()
        return file.read_bytes() if self.root in file.parents and file.is_file() else None

    def _fault(self, path: str) -> str:
        with self._lock:
            n = self._count.get(path, 0)
            self._count[path] = n + 1
        faults = self.faults.get(path, ["ok"])
        fault = faults[min(n, len(faults) - 1)]
        if fault == "drop_once":
            return f"drop:{len(self._data(path) or b'') // 2}" if n == 0 else "ok"
        return fault

    @staticmethod
    def _status(h: BaseHTTPRequestHandler, code: int, body: bytes = b"") -> None:
        h.send_response(code)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path = unquote(urlsplit(h.path).path).lstrip("/")
        rng = h.headers.get("Range")
        with self._lock:
            self.log.append((path, rng))
        fault = self._fault(path)
        if fault.isdigit():
            return self._status(h, int(fault), f"fault {fault}".encode())
        if fault == "hang":
            self._stop.wait(30)
            return None
        data = self._data(path)
        if data is None:
            return self._status(h, 404, b"not found")
        if fault == "wrong":
            data = bytes((b + 1) % 256 for b in data)
        start = 0
        if rng and rng.startswith("bytes=") and fault != "no_range":
            start = int(rng[len("bytes="):].split("-")[0])
            if start >= len(data):
                return self._status(h, 416)
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            h.send_response(200)
        body = data[start:]
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if fault.startswith("drop:"):
            h.wfile.write(body[: int(fault[5:])])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(2)
            return None
        if fault == "trickle":
            step = max(1, len(body) // 50)
            for i in range(0, len(body), step):
                if self._stop.is_set():
                    return None
                h.wfile.write(body[i : i + step])
                h.wfile.flush()
                time.sleep(self.trickle_pause)
            return None
        h.wfile.write(body)
        return None
