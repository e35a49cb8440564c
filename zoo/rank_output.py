"""What `--nproc N` shows when a rank fails: the ranks' own one-line errors (each said once), or one line
naming the rank that died and how, instead of every rank's traceback and torchrun's 80-line report.

Everything else the ranks print (progress bars included) passes through as it comes."""

from __future__ import annotations

import re
from typing import BinaryIO

# lines that start the noise of a failure: tracebacks, torch's and gloo's logs, torchrun's report
_NOISE = re.compile(rb"^(Traceback \(most recent call last\)|\[rank\d+\]|\[[WEIF]\d|[WEIF]\d{4} |"
                    rb".*torch[./]distributed|.*ChildFailedError|=+$|terminate called)")
_ROOT = re.compile(rb"Root Cause.*?rank\s*:\s*(\d+).*?exitcode\s*:\s*(-?\d+)", re.S)


class RankOutput:
    """Feed it torchrun's stderr chunk by chunk; `summary(code)` is the one line to end with, if any."""

    def __init__(self, out: BinaryIO):
        self.out, self.line, self.muted, self.errors, self.held = out, b"", False, [], b""

    def feed(self, chunk: bytes) -> None:
        for piece in chunk.splitlines(keepends=True):
            self.line += piece
            if piece.endswith((b"\n", b"\r")):
                self._line(self.line)
                self.line = b""
            elif not self.muted and (b"\x1b" in self.line or b"\r" in self.line):
                self.out.write(self.line)  # a progress bar redrawing: show it now
                self.line = b""
        self.out.flush()

    def _line(self, line: bytes) -> None:
        text = line.strip()
        if text.startswith(b"error: "):
            if text not in self.errors:  # every rank says the same user error: once is enough
                self.errors.append(text)
                self.out.write(text + b"\n")
            self.muted = True
            return
        if not self.muted and _NOISE.match(text):
            self.muted = True
        if self.muted:
            self.held += line
        else:
            self.out.write(line)

    def summary(self, code: int, nproc: int) -> str | None:
        """The one line to add after a failed run (None when it succeeded or a rank already said why)."""
        if self.line:
            self._line(self.line + b"\n")
            self.line = b""
        if code == 0 or self.errors:
            return None
        m = _ROOT.search(self.held)
        if m:
            rank, status = int(m.group(1)), int(m.group(2))
            how = f"was killed by signal {-status}" if status < 0 else f"exited with code {status}"
            return f"error: --nproc {nproc}: rank {rank} {how}; the other ranks were stopped"
        return f"error: --nproc {nproc}: a rank failed (torchrun exited with code {code})"
