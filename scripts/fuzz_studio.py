"""Hostile requests against a real `zoo studio` server on 127.0.0.1, in a temporary $ZOO_HOME.

Bad JSON, huge fields, path-traversal names, wrong types, bad Host and Origin headers, out-of-range
numbers and bogus uploads, drawn at random (seeded) from every route, bounded by a count and a time.
It fails (exit 1) on any HTTP 500, any traceback in the server's log, a connection the server drops,
or a file written outside the temporary folders (a sentinel folder beside $ZOO_HOME that every
traversal aims at must stay empty; no new file may appear in the repository). The worker is not started: jobs
queue, and only the web server is under test (the jobs' own inputs are checked by the CLI's tests).

    python scripts/fuzz_studio.py --requests 2000 --seconds 300
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAMES = ["../../outside/x", "/etc/passwd", "..", ".", "", "a" * 300, "uploads/../../outside/x", "%2e%2e/x",
         "outputs/../../../outside/y", "efficientnet_lite0", "bvlc_googlenet", "nul\x00byte", "\u202eevil.png",
         "runs/x", "C:\\windows\\x", "con", "x/../../outside", "~/x", "a b", "..\\..\\outside\\x"]
NUMBERS = [0, -1, 1, 2**31, 2**63, -(2**63) - 1, 10**30, 1e308, -1e308, 0.5, True, None, "nan", "inf", "1e999", [],
           {}, "12"]


def value(rng: random.Random, field: str = ""):
    """A hostile value of a random kind."""
    pick = rng.random()
    if pick < 0.3:
        return rng.choice(NAMES) if rng.random() < 0.3 else rng.choice(NUMBERS)
    if pick < 0.45:
        return "x" * rng.choice([1, 1000, 200_000])
    if pick < 0.6:
        return [rng.choice(NAMES + NUMBERS) for _ in range(rng.choice([0, 1, 3, 500]))]
    if pick < 0.7:
        return {"a": value(rng)} if rng.random() < 0.9 else json.loads("[" * 50 + "]" * 50)
    if pick < 0.8:
        return rng.choice(["noise:nan", "gradient:1e999", "color:#zzzzzz", "image", "noise", "20000x20000", "0x0",
                           "-5", "64", "prob:1", "fc:99999", "conv1@-1,-1", "prob:no-such-label"])
    return rng.choice(NUMBERS)


def _fields() -> dict[str, list[str]]:
    """Every POST body's fields, read from the studio's request models (the options' one declaration)."""
    from zoo.studio import models

    bodies = {"/api/dream": models.DreamRequest, "/api/atlas": models.AtlasRequest,
              "/api/brains/import": models.ImportRequest, "/api/train": models.TrainRequest,
              "/api/spectrogram": models.SpectrogramRequest, "/api/channels": models.ChannelsRequest}
    return {path: list(model.model_fields) for path, model in bodies.items()}


FIELDS = _fields()
GETS = ["/api/files/{n}", "/api/brains/{n}", "/api/brains/{n}/labels", "/api/brains/{n}/graph?size={v}",
        "/api/atlases/{n}", "/api/jobs/{n}", "/api/jobs/{n}/preview", "/api/files/uploads/{n}?thumb={v}",
        "/api/files/outputs/{n}?format={v}", "/api/health", "/api/brains", "/api/gallery", "/api/runs",
        "/api/jobs", "/api/presets", "/api/datasets", "/api/atlases", "/{n}", "/static/{n}", "/api/media",
        "/api/brains/{n}/channels/{n}?size={v}", "/api/brains/efficientnet_lite0/channels/{n}",
        "/api/channel-pictures/{n}", "/api/jobs/{n}/events"]
OTHERS = [("DELETE", "/api/gallery/{n}"), ("DELETE", "/api/brains/{n}"), ("POST", "/api/brains/{n}/fetch"),
          ("POST", "/api/jobs/{n}/stop"), ("POST", "/api/jobs/{n}/resume"), ("POST", "/api/runs/{n}/export")]
UPLOAD_KINDS = ["image", "prototxt", "weights", "mean", "labels", "sound", "svg", "png", "exe", ""]


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(str(text), safe="/") if text is not None else ""


def one_request(rng: random.Random, uploads: list[bytes]) -> tuple[str, str, dict, bytes | None]:
    """(method, path, headers, body) of one hostile request."""
    headers: dict[str, str] = {}
    r = rng.random()
    if r < 0.35:
        path = rng.choice(list(FIELDS))
        body = {f: value(rng, f) for f in FIELDS[path] if rng.random() < 0.5}
        raw = json.dumps(body, allow_nan=True).encode()
        if rng.random() < 0.15:
            raw = rng.choice([raw[: len(raw) // 2], b"not json", b"[1,2]", b"null", b"\xff\xfe", b"{" * 5000])
        headers["content-type"] = rng.choice(["application/json"] * 4 + ["text/plain", "multipart/form-data"])
        method, body_bytes = "POST", raw
    elif r < 0.55:
        kind = rng.choice(UPLOAD_KINDS)
        name = rng.choice(NAMES + ["photo.png", "net.prototxt", "w.caffemodel", "voice.wav", "a.svg", "x.svgz"])
        path = f"/api/uploads?kind={_quote(kind)}&filename={_quote(name)}"
        method, body_bytes = "POST", rng.choice(uploads)
        if rng.random() < 0.1:
            headers["content-length"] = rng.choice(["-1", "99999999999999", "abc"])
    elif r < 0.8:
        path = rng.choice(GETS).format(n=_quote(rng.choice(NAMES)), v=_quote(str(value(rng))))
        method, body_bytes = "GET", None
    elif r < 0.9:
        m, p = rng.choice(OTHERS)
        path = p.format(n=_quote(rng.choice(NAMES)))
        body = {"name": value(rng)} if "export" in p else None
        method, body_bytes = m, (json.dumps(body).encode() if body is not None else None)
        if body is not None:
            headers["content-type"] = "application/json"
    else:
        name = rng.choice(NAMES + ["d.png", "s.wav", "s.svg", "j.mp4", "j.webp", "x.flac", ""])
        method, path, body_bytes = "POST", f"/api/recipe?filename={_quote(name)}", rng.choice(uploads)
    if rng.random() < 0.1:
        headers["host"] = rng.choice(["evil.example", "127.0.0.1:1", "", "localhost:99999", "[::1", "a" * 5000])
    if rng.random() < 0.1:
        headers["origin"] = rng.choice(["http://evil.example", "null", "file://", "http://127.0.0.1:1"])
    return method, path, headers, body_bytes


def bodies(rng: random.Random) -> list[bytes]:
    """Upload bodies: random bytes, truncated and lying PNGs, a prototxt with hostile fields, a tiny real PNG."""
    import io
    import struct
    import zlib

    from PIL import Image

    def png_header(w: int, h: int) -> bytes:
        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))

    buf = io.BytesIO()
    Image.new("RGB", (24, 16), (200, 10, 10)).save(buf, format="PNG")
    good = buf.getvalue()
    proto = (b'name: "x"\ninput: "data"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'
             b'layer { name: "../../outside/l" type: "ReLU" bottom: "data" top: "r" unknown_field: 1 }\n')
    from zoo.convert.proto import caffe_pb2

    mean = caffe_pb2.BlobProto()
    mean.shape.dim.extend([-1, -2, 2])
    mean.data.extend([0.0] * 4)
    # a WAV header declaring ~1 TB of samples, an SVG with an external reference, entity and script
    wav = b"RIFF" + struct.pack("<I", 2**32 - 1) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 2, 44100, 176400, 4,
                                                                           16) + b"data" + struct.pack("<I", 2**32 - 9)
    svg = (b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY e SYSTEM "file:///etc/passwd">]><svg xmlns="http://www.w3.org/2000/svg"'
           b' width="99999999" height="10"><image href="file:///etc/passwd"/><script>alert(1)</script>&e;</svg>')
    return [mean.SerializeToString(), b"", b"\x00" * 100, rng.randbytes(5000), good, good[: len(good) // 2],
            png_header(30000, 30000), png_header(0, 5), proto, proto * 200, b"layer {" * 1000,
            b"GIF89a" + b"\xff" * 50, "é\u202e".encode() * 100, wav, wav[:30], svg, b"\x1f\x8b" + svg]


class LogCatcher(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.bad: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info or "Traceback" in text or record.levelno >= logging.ERROR:
            self.bad.append(f"{record.name}: {text[:300]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _send(port: int, method: str, path: str, headers: dict, body: bytes | None, timeout: float) -> int:
    """One request over a fresh socket (http.client would fix up the hostile headers); the status."""
    head = [f"{method} {path} HTTP/1.1"]
    given = {k.lower() for k in headers}
    if "host" not in given:
        head.append(f"Host: 127.0.0.1:{port}")
    head += [f"{k}: {v}" for k, v in headers.items()]
    if body is not None and "content-length" not in given:
        head.append(f"Content-Length: {len(body)}")
    head.append("Connection: close")
    data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1", "replace") + (body or b"")
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        first = b""
        while b"\r\n" not in first:
            got = s.recv(4096)
            if not got:
                return -1  # the server dropped the connection without an answer
            first += got
    parts = first.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1


def run(requests: int, seconds: float, seed: int, quiet: bool = False) -> list[str]:
    """Fuzz a fresh studio; the list of problems found (empty: it held)."""
    import uvicorn

    tmp = Path(tempfile.mkdtemp(prefix="zoo-fuzz-studio-"))
    home, folder, outside = tmp / "home", tmp / "folder", tmp / "outside"
    for d in (home, folder, outside):
        d.mkdir()
    os.environ["ZOO_HOME"] = str(home)
    from zoo.studio.app import Settings, create_app

    catcher = LogCatcher()
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access", "fastapi", "starlette"):
        logging.getLogger(name).addHandler(catcher)
    port = _free_port()
    app = create_app(Settings(port=port, folders=[folder], start_worker=False, warm=False))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                           log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    before = _git_status()
    rng = random.Random(seed)
    uploads = bodies(rng)
    problems: list[str] = []
    statuses: dict[int, int] = {}
    deadline = time.time() + seconds
    done = 0
    try:
        while done < requests and time.time() < deadline:
            method, path, headers, body = one_request(rng, uploads)
            try:
                status = _send(port, method, path, headers, body, timeout=60)
            except OSError as e:
                status = -1
                problems.append(f"{method} {path[:120]}: connection failed ({e})")
            statuses[status] = statuses.get(status, 0) + 1
            if status >= 500 or status < 0:
                problems.append(f"{method} {path[:120]} {json.dumps(headers)[:120]}: HTTP {status}")
            done += 1
    finally:
        server.should_exit = True
        thread.join(timeout=20)
    problems += [f"server log: {line}" for line in catcher.bad]
    escaped = [str(p) for p in outside.rglob("*")]
    problems += [f"written outside $ZOO_HOME: {p}" for p in escaped]
    new = sorted(set(_git_status()) - set(before))
    problems += [f"new file in the repository: {p}" for p in new]
    if not quiet:
        print(f"{done} requests in {tmp}; statuses {dict(sorted(statuses.items()))}; {len(problems)} problems")
    return problems


def _git_status() -> list[str]:
    """Untracked files of the repository (what a write escaping the temporary folders would add; edits
    to tracked files are left out, so a developer saving a file meanwhile is not blamed on the server)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                             capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line[3:] for line in out.splitlines() if line.startswith("??")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    problems = run(a.requests, a.seconds, a.seed)
    for p in problems[:50]:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
