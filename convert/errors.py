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
