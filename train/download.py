"""Dataset downloads through the zoo's one downloader (zoo.fetch): the same resume, retries with
backoff, checksums, locks, deadline and truthful error reports as model files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from zoo.fetch import FetchError, FetchOptions, fetch_file
from zoo.io import file_digest
from zoo.registry import Checksum

__all__ = ["DownloadError", "fetch", "file_digest"]

DownloadError = FetchError  # the one downloader's error (a zoo.errors.NetworkError)
BACKOFF_S = 1.0  # first retry delay; doubles each time


def fetch(
    url: str,
    dest: Path,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    retries: int = 3,
    timeout: float | None = None,
    backoff: float | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Path:
    """Download `url` to `dest` (kept if it exists and matches the checksum), resuming `dest.part`.

    `retries` counts tries in all; the environment's ZOO_FETCH_* values apply where not given.
    """
    dest = Path(dest)
    checksum = Checksum("sha256", sha256.lower()) if sha256 else Checksum("md5", md5.lower()) if md5 else None
    options = FetchOptions.from_env(retries=max(0, retries - 1), timeout=timeout,
                                    backoff=BACKOFF_S if backoff is None else backoff, progress=False)
    return fetch_file([url], dest, checksum, label=url, options=options, on_bytes=on_bytes)
