"""The converter's error type (a UserError: one line, exit 1) and its reader of file bytes."""

from __future__ import annotations

from zoo.errors import UserError
from zoo.io import regular_file


class ConvertError(UserError):
    """The converter's own error type: malformed, truncated or unsupported Caffe input."""


MAX_READ = 2 << 30  # no prototxt, mean or labels file comes near; weights are memory-mapped instead


def read_bytes(path, limit: int | None = None) -> bytes:
    """A file's bytes (or its first `limit` bytes), or a ConvertError naming it and why not: never
    a FIFO or a device, and never more than MAX_READ bytes."""
    try:
        regular_file(path)
    except UserError as e:
        raise ConvertError(str(e)) from None
    cap = MAX_READ if limit is None else min(limit, MAX_READ)
    try:
        with open(path, "rb") as f:
            data = f.read(cap + (limit is None))
    except OSError as e:
        raise ConvertError(f"{path}: cannot read ({e.strerror or e})") from None
    if limit is None and len(data) > cap:
        raise ConvertError(f"{path}: larger than {MAX_READ >> 30} GiB; refusing to read it")
    return data


def map_bytes(path):
    """A file's bytes as a read-only memory map (the page cache itself: no copy, no allocation), or
    b"" for an empty file; a ConvertError naming the file when it cannot be read.

    Numpy views of it stay valid as long as they live (they hold the map); like bytes, they are
    read-only. Big caffemodels then convert without a second copy of the weights in memory.
    """
    import mmap

    try:
        regular_file(path)
    except UserError as e:
        raise ConvertError(str(e)) from None
    try:
        with open(path, "rb") as f:
            if not f.seek(0, 2):
                return b""
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as e:
        raise ConvertError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
