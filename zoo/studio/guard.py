"""The studio's safety and error shapes: same origin only, the right Host (no DNS rebinding), the token;
every error a JSON object with one line in `error` (an unexpected one's traceback goes to
$ZOO_HOME/studio/server.log)."""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import time
import traceback

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from zoo.errors import UserError
from zoo.studio.paths import studio_dir
from zoo.studio.state import Settings

COOKIE = "zoo_studio_token"
TOKEN_FREE = ("/favicon.ico",)
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; "
       "frame-ancestors 'none'")


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def refusal(s: Settings, request: Request) -> JSONResponse | None:
    """Why a request may not reach the studio (wrong host, another origin, no token), or None."""
    host = request.headers.get("host", "")
    origin = request.headers.get("origin")
    if not host_allowed(host, s.port, s.host, s.token is not None):
        return error(403, f"host {host!r} is not this studio (open http://127.0.0.1:{s.port}/)")
    if origin is not None and origin != f"http://{host}":
        return error(403, f"cross-origin request refused (origin {origin})")
    if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        return error(403, "cross-origin request refused")
    if s.token is not None and request.url.path not in TOKEN_FREE:
        given = request.query_params.get("token")
        auth = request.headers.get("authorization", "")
        candidates = [given, auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None,
                      request.cookies.get(COOKIE)]
        if not any(c and hmac.compare_digest(c, s.token) for c in candidates):
            return error(401, "this studio needs its token (printed when it started): open the URL it printed")
        if given and request.method == "GET" and request.url.path == "/":
            resp = RedirectResponse("/", status_code=303)
            resp.set_cookie(COOKIE, s.token, httponly=True, samesite="strict")
            return resp  # type: ignore[return-value]
    return None


def install(app: FastAPI, s: Settings) -> None:
    """The guard middleware and the error handlers."""

    @app.middleware("http")
    async def guard(request: Request, call_next):
        refused = refusal(s, request)
        if refused is not None:
            return refused
        try:
            response = await call_next(request)
        except Exception:  # noqa: BLE001 - one line to the client; the connection stays usable
            return error(500, internal_error(request.method, request.url.path))
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if request.url.path == "/" or request.url.path.endswith(".html"):
            response.headers.setdefault("Content-Security-Policy", CSP)
        return response

    @app.exception_handler(UserError)
    async def user_error(request: Request, e: UserError):
        return error(400, str(e))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        detail = str(e.detail)
        if detail in ("Not Found", "Method Not Allowed"):
            detail = f"{request.method} {request.url.path}: {detail.lower()}"
        return error(e.status_code, detail)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        if first.get("type") == "zoo_option":  # an option's own check: already the one line the CLI prints
            return error(422, first["msg"])
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return error(422, f"{where or 'request'}: {first.get('msg', 'invalid')}")


def host_allowed(host: str, port: int, bound: str, token: bool) -> bool:
    """Without a token only the loopback names; with one (a studio open to the network) also an IP
    address or the name it was started on, at its port: a name an attacker's DNS points here (DNS
    rebinding) is refused either way."""
    name, sep, given_port = host.rpartition(":")
    if not sep or given_port != str(port) or not name:
        return False
    if name in ("127.0.0.1", "localhost", "[::1]"):
        return True
    if not token:
        return False
    if name == bound:
        return True
    try:
        ipaddress.ip_address(name[1:-1] if name.startswith("[") and name.endswith("]") else name)
    except ValueError:
        return False
    return True


def internal_error(method: str, path: str) -> str:
    """Log the traceback being handled and return the one line the client gets."""
    log = studio_dir() / "server.log"
    with contextlib.suppress(OSError), open(log, "a", encoding="utf-8") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {method} {path}\n{traceback.format_exc()}\n")
    return f"{method} {path}: internal error (a bug in zoo studio); the traceback is in {log}"
