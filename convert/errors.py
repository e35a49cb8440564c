"""The converter's error type (a UserError: one line, exit 1) and its reader of file bytes."""

from __future__ import annotations

from zoo.errors import UserError


class ConvertError(UserError):
    """The converter's own error type: malformed, truncated or unsupported Caffe input."""


def read_bytes(path, limit: int | None = None) -> bytes:
    """A file's bytes (or its first `limit` bytes), or a ConvertError naming it and why not."""
    try:
        with open(path, "rb") as f:
            return f.read() if limit is None else f.read(limit)
    except OSError as e:
        raise ConvertError(f"{path}: cannot read ({e.strerror or e})") from None


def map_bytes(path):
    """A file's bytes as a read-only memory map (the page cache itself: no copy, no allocation), or
    b"" for an empty file; a ConvertError naming the file when it cannot be read.

    Numpy views of it stay valid as long as they live (they hold the map); like bytes, they are
    read-only. Big caffemodels then convert without a second copy of the weights in memory.
    """
    import mmap

    try:
        with open(path, "rb") as f:
            if not f.seek(0, 2):
                return b""
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as e:
        raise ConvertError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
