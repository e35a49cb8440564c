"""THE downloader, for models and datasets alike: resume, retries, mirrors, checksums, a lock per file.

The rule: nothing reaches its final name until its full checksum has been verified. Downloads go
to `<file>.part` beside the target (resumed with an HTTP Range request), then are verified, then
renamed with os.replace. A per-file lock (fcntl) makes two processes that fetch the same file take
turns; the second finds the verified file and does nothing; the lock file is removed afterwards.

Faults are reported as they are: each source tried and what it said (the mirror's 404 is not hidden
behind upstream's "cannot connect"), a full disk as a full disk, and a stale `.part` from an earlier
run that fails the checksum is discarded and fetched again once before any source is blamed. Each
file has an overall deadline (`ZOO_FETCH_DEADLINE` seconds), so a trickling server cannot stall a
run forever.

Mirrors: `$ZOO_MIRROR` is a directory or a base URL laid out as `<mirror>/<model name>/<file name>`
(the file name the cache uses, see `zoo info NAME`). It is tried before the upstream URL.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from zoo.errors import NetworkError, UserError
from zoo.events import Event, emit
from zoo.io import file_digest, make_dirs
from zoo.names import validate_filename, validate_name
from zoo.registry import Checksum

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, the atomic rename still protects the cache
    fcntl = None  # type: ignore[assignment]

__all__ = ["ChecksumMismatch", "FetchError", "FetchOptions", "fetch_file", "file_digest", "file_lock", "matches",
           "mirror_sources"]

CHUNK = 1 << 16
USER_AGENT = "zoo-model-fetch/0.1 (+https://pypi.org/project/zoo)"
_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG)


class FetchError(NetworkError):
    """A download that could not be completed (HTTP error, dropped connection, missing mirror file)."""


class ChecksumMismatch(FetchError):
    """The bytes received are not the published file."""


class DiskError(UserError):
    """The download arrived but could not be written here (full disk, read-only folder)."""


def _env_number(name: str, default: float, kind: type, minimum: float) -> float:
    text = os.environ.get(name)
    if text is None or text.strip() == "":
        return default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value != value or value < minimum or value == float("inf"):
        noun = "a whole number" if kind is int else "a number"
        raise UserError(f"{name}={text!r}: expected {noun} >= {minimum:g}")
    return value


@dataclass(frozen=True)
class FetchOptions:
    """Network knobs; the environment can override them (studios with slow links, tests)."""

    timeout: float = 30.0  # seconds without a byte before one try is given up
    retries: int = 4  # further tries after the first, with exponential backoff
    backoff: float = 1.0
    deadline: float = 3600.0  # seconds for one file, all tries together
    progress: bool = True  # emit zoo.events download events (bytes so far) while it runs

    @classmethod
    def from_env(cls, **overrides: object) -> FetchOptions:
        """ZOO_FETCH_TIMEOUT, ZOO_FETCH_RETRIES, ZOO_FETCH_BACKOFF, ZOO_FETCH_DEADLINE; a bad value
        is a one-line error naming the variable."""
        values: dict[str, object] = {
            "timeout": _env_number("ZOO_FETCH_TIMEOUT", cls.timeout, float, 0.001),
            "retries": _env_number("ZOO_FETCH_RETRIES", cls.retries, int, 0),
            "backoff": _env_number("ZOO_FETCH_BACKOFF", cls.backoff, float, 0),
            "deadline": _env_number("ZOO_FETCH_DEADLINE", cls.deadline, float, 0.001),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def matches(path: Path, checksum: Checksum) -> bool:
    return file_digest(path, checksum.kind) == checksum.hexdigest.lower()


# --- sources -------------------------------------------------------------------------------------


def mirror_sources(model: str, filename: str, mirror: str | None = None) -> list[str]:
    """Where $ZOO_MIRROR (a directory or base URL) would hold this file; [] when none is set.
    Built from a validated model name and file name only."""
    mirror = mirror if mirror is not None else os.environ.get("ZOO_MIRROR", "")
    if not mirror:
        return []
    validate_name(model)
    validate_filename(filename)
    if "://" in mirror:
        return [f"{mirror.rstrip('/')}/{model}/{filename}"]
    return [str(Path(mirror).expanduser() / model / filename)]


def is_url(source: str) -> bool:
    return "://" in source and not source.startswith("file://")


# --- locking -------------------------------------------------------------------------------------


@contextlib.contextmanager
def file_lock(target: Path) -> Iterator[None]:
    """Exclusive lock on `<target>.lock`, held while the target is checked or written, then removed.

    The lock file is unlinked while still held; a process that opened the old file meanwhile sees
    that its file is no longer the one at the path and locks the new one instead.
    """
    make_dirs(target.parent)
    lock_path = target.with_name(target.name + ".lock")
    if fcntl is None:  # pragma: no cover
        yield
        return
    while True:
        try:
            fh = open(lock_path, "a+b")  # noqa: SIM115 - closed below
        except OSError as e:
            raise DiskError(f"{target.parent}: cannot write here ({e.strerror or e})") from None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                same = os.path.samestat(os.fstat(fh.fileno()), os.stat(lock_path))
            except FileNotFoundError:
                same = False
        except BaseException:
            fh.close()
            raise
        if same:
            break
        fh.close()
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_path)
        fh.close()  # closing releases the lock


# --- one download --------------------------------------------------------------------------------


class _Retryable(Exception):
    """A failure worth another try (dropped connection, timeout, 5xx); `unreached`: no answer at all."""

    def __init__(self, message: str, unreached: bool = False):
        super().__init__(message)
        self.unreached = unreached


class _Deadline(FetchError):
    """The overall deadline passed; the part file is kept so the next run resumes it."""


def _disk_error(e: OSError, part: Path) -> DiskError:
    what = "disk full" if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else (e.strerror or str(e))
    return DiskError(f"{part.parent}: cannot write the download ({what})")


Tick = Callable[[int, int | None], None]  # (bytes so far, total or None)


class _Oversize(FetchError):
    """The source sent more bytes than the model card declares: cut off and blamed before any checksum."""


def _too_big(limit: int) -> _Oversize:
    return _Oversize(f"sent more than the {limit} bytes the model card declares (cut off)")


def _pump(read: Callable[[int], bytes], out: BinaryIO, part: Path, received: int, limit: int | None,
          done: Callable[[int], None]) -> int:
    """Copy blocks from `read(bytes so far)` (b"" at the end) into `out`, for HTTP and folder mirrors alike.

    A write that fails is the disk's fault; a source that goes past `limit` is cut off at the block
    that would cross it, so a hostile or wrong server cannot fill the disk. Returns the bytes held.
    """
    while True:
        chunk = read(received)
        if not chunk:
            return received
        if limit is not None and received + len(chunk) > limit:
            raise _too_big(limit)
        try:
            out.write(chunk)
        except OSError as e:
            raise _disk_error(e, part) from None
        received += len(chunk)
        done(received)


def _http_once(url: str, part: Path, opts: FetchOptions, tick: Tick, deadline: float, limit: int | None) -> None:
    """One request: append to `part` from where it stops (Range), or start over if refused."""
    start = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    request = urllib.request.Request(url, headers=headers)
    timeout = max(0.001, min(opts.timeout, deadline - time.monotonic()))
    try:
        resp = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:  # nothing left to send: the part is complete (or wrong: verify says)
            return
        if e.code >= 500 or e.code in (408, 429):
            raise _Retryable(f"HTTP {e.code} {e.reason}") from None
        raise FetchError(f"HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, TimeoutError):  # connected (or a black hole): not proof of being offline
            raise _Retryable(f"no answer within {timeout:g} s (timed out)") from None
        if isinstance(reason, socket.gaierror):  # no such host (or no DNS at all): a retry will not help
            raise FetchError(f"cannot connect ({reason})", offline=True) from None
        raise _Retryable(f"cannot connect ({reason})", unreached=True) from None
    with resp:
        resumed = start > 0 and resp.status == 206
        if not resumed:
            start = 0
        length = resp.headers.get("Content-Length")
        expected = start + int(length) if length and length.isdigit() else None
        if limit is not None and expected is not None and expected > limit:
            raise _Oversize(f"announces {expected} bytes, more than the {limit} bytes the model card declares")
        tick(start, expected)

        def read(received: int) -> bytes:
            if time.monotonic() > deadline:
                raise _Deadline(f"no complete download within {opts.deadline:g} s (ZOO_FETCH_DEADLINE); "
                                 f"{received} bytes kept to resume")
            try:
                return resp.read(CHUNK)
            except (OSError, http.client.HTTPException) as e:
                raise _Retryable(f"connection dropped after {received} bytes ({type(e).__name__})") from None

        try:
            out = open(part, "ab" if resumed else "wb", buffering=0)  # noqa: SIM115 - closed below
        except OSError as e:
            raise _disk_error(e, part) from None
        with out:
            received = _pump(read, out, part, start, limit, lambda n: tick(n, expected))
        if expected is not None and received < expected:
            raise _Retryable(f"connection dropped after {received} of {expected} bytes")


def _download(url: str, part: Path, opts: FetchOptions, tick: Tick, deadline: float, limit: int | None) -> None:
    """Download with retries and exponential backoff, resuming the part file each time."""
    last, unreached = "", True
    for attempt in range(opts.retries + 1):
        try:
            _http_once(url, part, opts, tick, deadline, limit)
            return
        except _Retryable as e:
            last, unreached = str(e), unreached and e.unreached
            if attempt < opts.retries:
                pause = opts.backoff * (2**attempt)
                if time.monotonic() + pause > deadline:
                    break
                time.sleep(pause)
    raise FetchError(f"{last}; gave up after {attempt + 1} tries", offline=unreached)


def _copy_local(source: str, part: Path, limit: int | None, tick: Tick) -> None:
    """A folder mirror or file:// URL: read errors are the source's, write errors the disk's."""
    path = Path(source[len("file://"):] if source.startswith("file://") else source)
    if not path.is_file():
        raise FetchError("not found")
    try:
        src = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise FetchError(f"cannot read ({e.strerror or e})") from None

    def read(received: int) -> bytes:
        try:
            return src.read(1 << 20)
        except OSError as e:
            raise FetchError(f"cannot read ({e.strerror or e})") from None

    with src:
        try:
            out = open(part, "wb", buffering=0)  # noqa: SIM115 - closed below
        except OSError as e:
            raise _disk_error(e, part) from None
        with out:
            total = os.fstat(src.fileno()).st_size
            tick(0, total)
            _pump(read, out, part, 0, limit, lambda n: tick(n, total))


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _get(source: str, part: Path, opts: FetchOptions, tick: Tick, deadline: float, limit: int | None) -> None:
    if is_url(source):
        _download(source, part, opts, tick, deadline, limit)
    else:
        _copy_local(source, part, limit, tick)


def _verify(part: Path, checksum: Checksum | None, label: str, source: str) -> None:
    if checksum is None:
        return
    got = file_digest(part, checksum.kind)
    if got != checksum.hexdigest.lower():
        raise ChecksumMismatch(f"checksum mismatch: expected {checksum.kind} {checksum.hexdigest}, got {got}")


def _short(source: str) -> str:
    return source if len(source) <= 100 else source[:60] + "..." + source[-37:]


def fetch_file(
    sources: list[str],
    dest: Path,
    checksum: Checksum | None,
    *,
    label: str | None = None,
    options: FetchOptions | None = None,
    on_bytes: Callable[[int], None] | None = None,
    size: int | None = None,
) -> Path:
    """Put a verified copy of the file at `dest`, trying each source in turn.

    `size` (the model card's, where upstream states it) bounds the download: a source that sends
    more is cut off there and blamed, before any checksum is computed. Progress goes out as
    zoo.events `Event("download", bytes, total, "B", key=label)`, and new bytes to `on_bytes`.

    A file already at `dest` that still matches its checksum is kept; one that does not (a corrupt
    cache entry) is deleted and fetched again. With no checksum (an unverified file), an existing
    file is kept and the caller pins its digest. When every source fails, the error names each
    source and what it said; `offline` is set when none could even be reached.
    """
    opts = options or FetchOptions.from_env()
    label = label or dest.name
    deadline = time.monotonic() + opts.deadline
    with file_lock(dest):
        if dest.exists():
            if checksum is None or matches(dest, checksum):
                return dest
            _remove(dest)
        tick = _Ticker(label, opts.progress, on_bytes)
        said: list[tuple[str, FetchError]] = []
        try:
            for source in sources:
                try:
                    _fetch_from(source, dest, checksum, label, opts, tick, deadline, size)
                    return dest
                except FetchError as e:
                    said.append((source, e))
        finally:
            tick.end()
        raise _all_failed(label, said)


class _Ticker:
    """The `tick(done, total)` the downloads call: events for front ends, new bytes to `on_bytes`."""

    def __init__(self, label: str, enabled: bool, on_bytes: Callable[[int], None] | None):
        self.label, self.enabled, self.on_bytes, self.seen, self.total = label, enabled, on_bytes, 0, None

    def __call__(self, done: int, total: int | None) -> None:
        if self.enabled:
            emit(Event("download", done, total, "B", key=self.label))
        if self.on_bytes and done > self.seen:
            self.on_bytes(done - self.seen)
        self.seen, self.total = done, total

    def end(self) -> None:
        if self.enabled:
            emit(Event("download", self.seen, self.total, "B", key=self.label, final=True))


def _fetch_from(source: str, dest: Path, checksum: Checksum | None, label: str, opts: FetchOptions,
                tick: _Ticker, deadline: float, size: int | None) -> None:
    """One source into `dest`, verified; a corrupt `.part` left by an earlier run is fetched again once
    before the source is blamed. A failed part is deleted (kept past the deadline, to resume)."""
    part = dest.with_name(dest.name + ".part")
    stale = part.exists() and part.stat().st_size > 0
    try:
        try:
            _get(source, part, opts, tick, deadline, size)
            _verify(part, checksum, label, source)
        except (ChecksumMismatch, _Oversize):
            if not stale:
                raise
            _remove(part)  # a corrupt .part left by an earlier run: start over, do not blame the source
            tick.seen = 0
            _get(source, part, opts, tick, deadline, size)
            _verify(part, checksum, label, source)
        os.replace(part, dest)
    except FetchError as e:
        if not isinstance(e, _Deadline):
            _remove(part)
        raise
    except DiskError:
        _remove(part)
        raise


def _all_failed(label: str, said: list[tuple[str, FetchError]]) -> FetchError:
    """One error naming every source and what it said."""
    if not said:
        return FetchError(f"{label}: no source to fetch it from")
    offline = all(e.offline for _, e in said)
    report = "; ".join(str(e) if s == label else f"{_short(s)}: {e}" for s, e in said)
    cls = ChecksumMismatch if any(isinstance(e, ChecksumMismatch) for _, e in said) else FetchError
    tail = " (the download was deleted)" if cls is ChecksumMismatch else ""
    return cls(f"{label}: {report}{tail}", offline=offline)
