"""The project's one family of user-facing errors.

Anything a user can cause (a bad file, a wrong name, a size that does not fit) raises a subclass of
UserError with a one-line message that names the file or thing and the problem. The CLI prints it
and exits 1; everything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input, reported as one line and exit code 1."""


class ConvertError(UserError):
    """The converter's own error type: malformed, truncated or unsupported Caffe input."""


def read_bytes(path, limit: int | None = None) -> bytes:
    """A file's bytes (or its first `limit` bytes), or a ConvertError naming it and why not."""
    try:
        with open(path, "rb") as f:
            return f.read() if limit is None else f.read(limit)
    except OSError as e:
        raise ConvertError(f"{path}: cannot read ({e.strerror or e})") from None
