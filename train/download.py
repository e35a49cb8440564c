"""Polite HTTP downloads: a few connections, retries with backoff, resume of partial files,
checksums, and atomic renames (a killed download never leaves a file that looks complete).
"""

from __future__ import annotations

import hashlib
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from zoo.errors import UserError

USER_AGENT = "zoo-train/0.1 (+https://github.com/; polite dataset fetcher)"
CHUNK = 1 << 16
BACKOFF_S = 1.0  # first retry delay; doubles each time


class DownloadError(UserError):
    """A URL that could not be fetched after the retries, or whose bytes fail the checksum."""


def file_digest(path: Path, algo: str = "md5") -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _open(url: str, offset: int, timeout: float):
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _fetch_once(url: str, part: Path, timeout: float, on_bytes: Callable[[int], None] | None) -> None:
    offset = part.stat().st_size if part.exists() else 0
    try:
        resp = _open(url, offset, timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # the partial file is already complete
            return
        raise
    with resp:
        resumed = offset and resp.status == 206
        with open(part, "ab" if resumed else "wb") as f:
            for block in iter(lambda: resp.read(CHUNK), b""):
                f.write(block)
                if on_bytes:
                    on_bytes(len(block))


def fetch(
    url: str,
    dest: Path,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Path:
    """Download `url` to `dest` (kept if it exists and matches the checksum), resuming `dest.part`."""
    dest = Path(dest)
    want = [(a, v.lower()) for a, v in (("md5", md5), ("sha256", sha256)) if v]
    if dest.exists() and all(file_digest(dest, a) == v for a, v in want):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last: Exception | None = None
    for attempt in range(retries):
        try:
            _fetch_once(url, part, timeout, on_bytes)
            last = None
            break
        except urllib.error.HTTPError as e:
            last = e
            if e.code in (403, 404, 410):  # will not change on a retry
                break
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            last = e
        if attempt + 1 < retries:
            time.sleep((BACKOFF_S if backoff is None else backoff) * 2**attempt)
    if last is not None:
        reason = getattr(last, "reason", None) or last
        if isinstance(last, urllib.error.HTTPError):
            reason = f"HTTP {last.code} {last.reason}"
        raise DownloadError(f"{url}: could not download ({reason})")
    for algo, value in want:
        got = file_digest(part, algo)
        if got != value:
            part.unlink(missing_ok=True)
            raise DownloadError(f"{url}: {algo} is {got}, expected {value} (file discarded)")
    os.replace(part, dest)
    return dest
