"""Two checks of the studio's web server that need no FastAPI: which Host headers name this studio, and
what an unexpected error says (one line; its traceback goes to $ZOO_HOME/studio/server.log)."""

from __future__ import annotations

import contextlib
import ipaddress
import time
import traceback

from zoo.studio.paths import studio_dir


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
