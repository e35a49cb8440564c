"""The one atomic writer and the one file digest: no half-written outputs, ever.

Write to a temporary file in the target's folder, fsync, then rename over the target; on any error
the temporary file disappears and the target is untouched. The result gets the mode a plain
`open(path, "w")` would give (0666 less the umask), not mkstemp's 0600.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _finish(tmp: str, path: Path) -> None:
    os.chmod(tmp, _umask_mode())
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    """Yield a binary file; on success it replaces `path`, on any error it disappears."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _finish(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Like atomic_write, for writers that want a file name (PIL, h5py, torch.save)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        _finish(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def make_dirs(path: str | Path) -> Path:
    """mkdir -p; a folder that cannot be made (read-only, a file in the way) is a one-line UserError."""
    from zoo.errors import UserError

    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{path}: cannot create this folder ({e.strerror or e})") from None
    return path


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_write(path) as f:
        f.write(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def file_digest(path: str | Path, kind: str = "sha256", chunk: int = 1 << 20) -> str:
    """Hex digest of a file, read in chunks (sha256, sha1, md5: any hashlib name; git_blob is
    `git hash-object`: sha1 over "blob <size>\\0" + content)."""
    if kind == "git_blob":
        h = hashlib.sha1()
        h.update(b"blob %d\0" % os.stat(path).st_size)
    else:
        h = hashlib.new(kind)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
