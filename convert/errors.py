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
