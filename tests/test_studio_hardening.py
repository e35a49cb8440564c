"""The studio's web server under a real uvicorn on 127.0.0.1: the Host header is checked in token mode
too (a DNS-rebinding page has the token only if the user gave it away, but a Host that names no address
of this machine is refused anyway), an unexpected error is a one-line HTTP 500 that leaves the keep-alive
connection usable, and a quick run of scripts/fuzz_studio.py finds no 500, no traceback and no file
written outside its temporary folders."""

from __future__ import annotations

import http.client
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from studio_helpers import free_port, serve  # noqa: E402

from zoo.studio.app import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))


def get(port: int, path: str, headers: dict, conn: http.client.HTTPConnection | None = None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.putrequest("GET", path, skip_host=True)
    for k, v in headers.items():
        c.putheader(k, v)
    c.endheaders()
    r = c.getresponse()
    return r.status, r.read()


def test_token_mode_checks_the_host_header():
    port = free_port()
    with serve(Settings(port=port, token="t0k", start_worker=False, warm=False)):
        auth = {"Authorization": "Bearer t0k"}
        assert get(port, "/api/health", {"Host": f"127.0.0.1:{port}", **auth})[0] == 200
        assert get(port, "/api/health", {"Host": f"192.168.1.20:{port}", **auth})[0] == 200  # the LAN address
        assert get(port, "/api/health", {"Host": f"[fe80::1]:{port}", **auth})[0] == 200
        for bad in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}", "", "[::1"):
            status, body = get(port, "/api/health", {"Host": bad, **auth})
            assert status == 403 and "host" in json.loads(body)["error"], (bad, status, body)


def test_an_unexpected_error_is_one_line_and_the_connection_lives_on():
    port = free_port()
    with serve(Settings(port=port, start_worker=False, warm=False)) as (_, app):
        def boom():
            raise RuntimeError("a bug")

        app.add_api_route("/api/boom", boom)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        host = {"Host": f"127.0.0.1:{port}"}
        status, body = get(port, "/api/boom", host, c)
        err = json.loads(body)["error"]
        assert status == 500 and "\n" not in err and "RuntimeError" not in err and "internal error" in err, err
        assert get(port, "/api/health", host, c)[0] == 200  # the same keep-alive connection


def test_quick_fuzz_of_the_studio_finds_nothing():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import fuzz_studio
    finally:
        sys.path.pop(0)
    problems = fuzz_studio.run(requests=150, seconds=60, seed=7, quiet=True)
    assert problems == []
