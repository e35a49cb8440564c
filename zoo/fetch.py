"""Checksummed downloads into the cache: resume, retries, mirrors, a lock per file.

The rule: nothing reaches its final name in the cache until its full checksum has been verified.
Downloads go to `<file>.part` beside the target (resumed with an HTTP Range request), then are
verified, then renamed with os.replace. A per-file lock (fcntl) makes two processes that fetch the
same file take turns; the second one finds the verified file and does nothing.

Mirrors: `$ZOO_MIRROR` is a directory or a base URL laid out as `<mirror>/<model name>/<file name>`
(the file name the cache uses, see `zoo info NAME`). It is tried before the upstream URL.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from zoo.errors import UserError
from zoo.registry import Checksum

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, the atomic rename still protects the cache
    fcntl = None  # type: ignore[assignment]

CHUNK = 1 << 16
USER_AGENT = "zoo-model-fetch/0.1 (+https://pypi.org/project/zoo)"


class FetchError(UserError):
    """A download that could not be completed (HTTP error, dropped connection, missing mirror file)."""


class ChecksumMismatch(FetchError):
    """The bytes received are not the published file."""


@dataclass(frozen=True)
class FetchOptions:
    """Network knobs; the environment can override them (studios with slow links, tests)."""

    timeout: float = 30.0
    retries: int = 4
    backoff: float = 1.0
    progress: bool = True

    @classmethod
    def from_env(cls, **overrides: object) -> FetchOptions:
        env = os.environ
        values: dict[str, object] = {
            "timeout": float(env.get("ZOO_FETCH_TIMEOUT", cls.timeout)),
            "retries": int(env.get("ZOO_FETCH_RETRIES", cls.retries)),
            "backoff": float(env.get("ZOO_FETCH_BACKOFF", cls.backoff)),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


# --- checksums -----------------------------------------------------------------------------------


def file_digest(path: Path, kind: str) -> str:
    """Hex digest of a file; git_blob is `git hash-object` (sha1 over "blob <size>\\0" + content)."""
    if kind == "git_blob":
        h = hashlib.sha1()
        h.update(b"blob %d\0" % path.stat().st_size)
    else:
        h = hashlib.new(kind)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def matches(path: Path, checksum: Checksum) -> bool:
    return file_digest(path, checksum.kind) == checksum.hexdigest.lower()


# --- sources -------------------------------------------------------------------------------------


def mirror_sources(model: str, filename: str, mirror: str | None = None) -> list[str]:
    """Where $ZOO_MIRROR (a directory or base URL) would hold this file; [] when none is set."""
    mirror = mirror if mirror is not None else os.environ.get("ZOO_MIRROR", "")
    if not mirror:
        return []
    if "://" in mirror:
        return [f"{mirror.rstrip('/')}/{model}/{filename}"]
    return [str(Path(mirror).expanduser() / model / filename)]


def is_url(source: str) -> bool:
    return "://" in source and not source.startswith("file://")


# --- locking -------------------------------------------------------------------------------------


@contextlib.contextmanager
def file_lock(target: Path) -> Iterator[None]:
    """Exclusive lock on `<target>.lock`, held while the target is checked or written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.with_name(target.name + ".lock")
    with open(lock_path, "a+b") as fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# --- one download --------------------------------------------------------------------------------


class _Retryable(Exception):
    """A failure worth another try (dropped connection, timeout, 5xx)."""


def _progress(enabled: bool) -> Progress:
    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
        disable=not enabled or not console.is_terminal,
    )


def _http_once(url: str, part: Path, opts: FetchOptions, progress: Progress, task: int) -> None:
    """One request: append to `part` from where it stops (Range), or start over if refused."""
    start = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(request, timeout=opts.timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:  # nothing left to send: the part is complete (or wrong: verify says)
            return
        if e.code >= 500 or e.code in (408, 429):
            raise _Retryable(f"HTTP {e.code} {e.reason}") from None
        raise FetchError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", e)
        raise _Retryable(f"cannot connect ({reason})") from None
    with resp:
        resumed = start > 0 and resp.status == 206
        if not resumed:
            start = 0
        length = resp.headers.get("Content-Length")
        expected = start + int(length) if length is not None else None
        progress.update(task, total=expected, completed=start)
        received = start
        with open(part, "ab" if resumed else "wb") as out:
            try:
                while True:
                    chunk = resp.read(CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    received += len(chunk)
                    progress.update(task, completed=received)
            except (OSError, http.client.HTTPException) as e:
                raise _Retryable(f"connection dropped after {received} bytes ({type(e).__name__})") from None
        if expected is not None and received < expected:
            raise _Retryable(f"connection dropped after {received} of {expected} bytes")


def _download(url: str, part: Path, opts: FetchOptions, label: str) -> None:
    """Download with retries and exponential backoff, resuming the part file each time."""
    last = ""
    with _progress(opts.progress) as progress:
        task = progress.add_task(label, total=None)
        for attempt in range(opts.retries + 1):
            try:
                _http_once(url, part, opts, progress, task)
                return
            except _Retryable as e:
                last = str(e)
                if attempt < opts.retries:
                    time.sleep(opts.backoff * (2**attempt))
    raise FetchError(f"{url}: {last}; gave up after {opts.retries + 1} tries")


def _copy_local(source: str, part: Path) -> None:
    path = Path(source[len("file://"):] if source.startswith("file://") else source)
    if not path.is_file():
        raise FetchError(f"{path}: not found")
    shutil.copyfile(path, part)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def fetch_file(
    sources: list[str],
    dest: Path,
    checksum: Checksum | None,
    *,
    label: str | None = None,
    options: FetchOptions | None = None,
) -> Path:
    """Put a verified copy of the file at `dest`, trying each source in turn.

    A file already at `dest` that still matches its checksum is kept; one that does not (a corrupt
    cache entry) is deleted and fetched again. With no checksum (an unverified file), an existing
    file is kept and the caller pins its digest.
    """
    opts = options or FetchOptions.from_env()
    label = label or dest.name
    with file_lock(dest):
        if dest.exists():
            if checksum is None or matches(dest, checksum):
                return dest
            _remove(dest)
        part = dest.with_name(dest.name + ".part")
        errors: list[FetchError] = []
        for source in sources:
            try:
                if is_url(source):
                    _download(source, part, opts, label)
                else:
                    _copy_local(source, part)
                if checksum is not None:
                    got = file_digest(part, checksum.kind)
                    if got != checksum.hexdigest.lower():
                        raise ChecksumMismatch(
                            f"{label}: checksum mismatch from {source}: expected {checksum.kind} "
                            f"{checksum.hexdigest}, got {got}; the download was deleted"
                        )
                os.replace(part, dest)
                return dest
            except FetchError as e:
                _remove(part)
                errors.append(e)
        if not errors:
            raise FetchError(f"{label}: no source to fetch it from")
        mismatch = [e for e in errors if isinstance(e, ChecksumMismatch)]
        raise (mismatch[0] if mismatch else errors[-1])
