"""The one atomic writer, the one folder swap and the one file digest: no half-written outputs, ever.

Write to a temporary file in the target's folder, fsync, then rename over the target; on any error
the temporary file disappears and the target is untouched. The result gets the mode a plain
`open(path, "w")` would give (0666 less the umask), not mkstemp's 0600. A folder is built the same
way: in a temporary sibling, every file fsynced, then renamed over the old one, which is kept until
the new one is in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync(path: str | Path) -> None:
    """Flush a file's (or a folder's) data to disk; a folder that cannot be opened for that is skipped."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if os.path.isdir(path):
            return  # a folder we may write but not read (mode 0300): its entries still land
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _staged(path: Path, suffix: str) -> Iterator[tuple[int, str]]:
    """THE temp-file-and-rename: yield (open fd, name) of a new file beside `path`. When the body
    returns, the file (closed by then or not) is fsynced, given the umask mode and renamed over
    `path`; when it raises, the file is removed and the exception goes on unchanged."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        yield fd, tmp
        _fsync(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)  # held to the end (writers use a name or a duplicate), so it is closed exactly once


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    """Yield a binary file; on success it replaces `path`, on any error it disappears."""
    with _staged(Path(path), ".part") as (fd, _), os.fdopen(os.dup(fd), "wb") as f:
        yield f


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Like atomic_write, for writers that want a file name (PIL, h5py, torch.save): the name keeps
    the target's suffix, for writers that pick the format by it."""
    path = Path(path)
    with _staged(path, ".part" + path.suffix) as (_, tmp):
        yield Path(tmp)


def _fsync_tree(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            _fsync(os.path.join(folder, name))
        _fsync(folder)


def replace_folder(src: str | Path, dest: str | Path) -> None:
    """Move folder `src` to `dest` (the same file system), replacing what is there: the old one is
    renamed aside, the new one renamed in, and only then the old one deleted (put back if the new
    one cannot go in)."""
    src, dest = Path(src), Path(dest)
    old = None
    if dest.exists() or dest.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
        os.rmdir(old)
        os.replace(dest, old)
    try:
        os.replace(src, dest)
    except BaseException:
        if old is not None:
            os.replace(old, dest)
        raise
    _fsync(dest.parent)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield an empty folder beside `path` to build in; on success its files are fsynced and it replaces
    `path` (replace_folder), on any error it disappears and `path` is untouched."""
    path = Path(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    try:
        yield tmp
        _fsync_tree(tmp)
        os.chmod(tmp, 0o777 & ~_umask())
        replace_folder(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
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


def regular_file(path: str | Path) -> Path:
    """`path` when it is a regular file (or does not exist: the reader's own error names that);
    a FIFO, a device (/dev/zero) or a socket is a one-line UserError, decided by stat before any
    open (opening a FIFO blocks until someone writes to it; a device reads without end)."""
    import stat

    from zoo.errors import UserError

    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return Path(path)
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise UserError(f"{path}: not a regular file (a FIFO, device or socket); refusing to read it")
    return Path(path)


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
