"""Trust for the compile cache: inductor unpickles what is in it, so nothing unsigned ever stays there.

The model: the cache is as trusted as the user's own account. Its folders (and $ZOO_HOME, cache/
above it) must belong to the user and be writable by nobody else, or --compile refuses. Each file in
it is listed with its SHA-256 in `signed.json`, whose HMAC-SHA256 is made with a per-user key kept in
$ZOO_HOME/keys/compile.key (mode 0600). Before inductor looks, every file that is not listed, or whose
digest differs, is deleted; when the process ends, the files now there (those this process compiled)
are signed. A cache copied from elsewhere, or a file planted by something that cannot read the key,
is therefore never loaded. What this does not stop: code already running as the user (it can read the
key and sign), and root.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import stat
from pathlib import Path

from zoo.errors import UserError
from zoo.io import file_digest, write_text_atomic

MANIFEST = "signed.json"
UNSIGNED = ("seen.txt", MANIFEST)  # notes, never loaded as code
_SIGN_AT_EXIT: set[Path] = set()


def check_private(path: Path) -> None:
    """Refuse a folder or key another user could change: not ours, or group/world-writable."""
    st = path.stat()
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise UserError(f"--compile: {path} belongs to another user; zoo loads compiled code from it, so it "
                        "refuses (remove it, or set ZOO_HOME to a folder of your own)")
    if st.st_mode & stat.S_IWOTH or st.st_mode & stat.S_IWGRP and not _own_group(st.st_gid):
        raise UserError(f"--compile: {path} is writable by others (mode {stat.S_IMODE(st.st_mode):o}); zoo loads "
                        f"compiled code from it, so it refuses (chmod go-w {path})")


def _own_group(gid: int) -> bool:
    """A group that is only the user's own (Debian's user private groups, under umask 002)."""
    try:
        import grp

        return gid == os.getgid() and not grp.getgrgid(gid).gr_mem
    except (ImportError, KeyError, AttributeError):
        return False


def user_key(home: Path) -> bytes:
    """The per-user signing key, made on first use (32 random bytes, mode 0600)."""
    keys = home / "keys"
    keys.mkdir(mode=0o700, exist_ok=True)
    check_private(keys)
    path = keys / "compile.key"
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    check_private(path)
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise UserError(f"--compile: {path} is readable by others; chmod 600 {path}")
    key = path.read_bytes()
    if len(key) < 32:
        raise UserError(f"--compile: {path} is not a zoo key (remove it: a new one is made)")
    return key


def _files(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink() and p.relative_to(folder).as_posix() not in UNSIGNED:
            out[p.relative_to(folder).as_posix()] = file_digest(p)
    return out


def _mac(key: bytes, files: dict[str, str]) -> str:
    return hmac.new(key, json.dumps(files, sort_keys=True).encode(), hashlib.sha256).hexdigest()


def signed(folder: Path, key: bytes) -> dict[str, str]:
    """The files the manifest vouches for (none if it is missing or its signature is wrong)."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files, mac = dict(data["files"]), str(data["mac"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return files if hmac.compare_digest(mac, _mac(key, files)) else {}


def purge(folder: Path, key: bytes) -> int:
    """Delete every file (and link) the signed manifest does not vouch for; how many went."""
    good, gone = signed(folder, key), 0
    for p in sorted(folder.rglob("*"), reverse=True):
        rel = p.relative_to(folder).as_posix()
        if rel in UNSIGNED or p.is_dir() and not p.is_symlink():
            continue
        if p.is_symlink() or good.get(rel) != file_digest(p):
            p.unlink()
            gone += 1
    return gone


def sign(folder: Path, key: bytes) -> None:
    files = _files(folder)
    write_text_atomic(folder / MANIFEST, json.dumps({"files": files, "mac": _mac(key, files)}))


def open_trusted(folder: Path) -> None:
    """Check the folders, drop what is not signed, and sign what this process adds when it ends."""
    from zoo.registry import zoo_home

    home = zoo_home()
    for p in (home, home / "cache", folder.parent, folder):
        check_private(p)
    key = user_key(home)
    purge(folder, key)
    if folder not in _SIGN_AT_EXIT:
        _SIGN_AT_EXIT.add(folder)
        atexit.register(_sign_quietly, folder, key)


def _sign_quietly(folder: Path, key: bytes) -> None:
    with contextlib.suppress(OSError):  # a full disk at exit: the next run recompiles what is unsigned
        sign(folder, key)
