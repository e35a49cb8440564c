"""The project's one family of user-facing errors (a neutral module: every layer may import it).

Anything a user can cause (a bad file, a wrong name, a size that does not fit, a mirror that says
404) raises a subclass of UserError with a one-line message that names the file or thing and the
problem. The CLI prints it and exits 1; everything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input, reported as one line and exit code 1."""


class NetworkError(UserError):
    """A download that could not be completed; typed so callers never match message strings.

    `offline` is True when no source could even be reached (a machine without network), so callers
    can fall back quietly instead of reporting a broken mirror.
    """

    def __init__(self, message: str, *, offline: bool = False):
        super().__init__(message)
        self.offline = offline


class UsageError(UserError):
    """A value the command's options refuse (out of range, not a choice): one line and exit code 2."""

    exit_code = 2
