"""Progress as data: library functions that take time report small `Event`s, front ends draw them.

Why: the library never prints. A download, a build, a pack, a training run or an atlas calls
`emit(Event(...))` (or `note("...")` for a line worth showing); whoever runs it decides what that
looks like. The CLI installs a renderer that draws rich bars (`zoo/cli_output.py`); the studio
listens in its worker and forwards the same events to the browser; tests collect them in a list.

    with events.listening(seen.append):
        cache.ensure_model(card)          # Event("download", ...) per block, notes as Event("note")

With no listener, events go nowhere. Listening is process-wide (one front end per process), and
nested `listening` blocks restore the outer listener on exit.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

__all__ = ["Event", "OnEvent", "emit", "listening", "note"]


@dataclass(frozen=True)
class Event:
    """Where one piece of work is: `done` of `total` `unit`s (total None when not known yet).

    `task` names the work ("download", "build", "pack", "train", "classify"), or is "note" for a
    line of text in `text`, or "record" for values a front end may keep or plot (`data`: a training
    log row, a checkpoint preview's path); `key` tells concurrent pieces of one task apart (a file
    name, a run); `info` is a short status ("loss 0.41 lr 3.2e-03"); `final` ends a piece.
    """

    task: str
    done: int = 0
    total: int | None = None
    unit: str = ""
    key: str = ""
    info: str = ""
    text: str = ""
    final: bool = False
    data: Mapping[str, object] | None = field(default=None, compare=False)


OnEvent = Callable[[Event], None]

_lock = threading.Lock()
_listener: list[OnEvent | None] = [None]


def emit(event: Event) -> None:
    """Hand an event to the listener, if any (never raises for want of one)."""
    listener = _listener[0]
    if listener is not None:
        listener(event)


def note(text: str) -> None:
    """A line worth showing the user (a fallback taken, a file rebuilt)."""
    emit(Event("note", text=text))


@contextlib.contextmanager
def listening(on_event: OnEvent | None) -> Iterator[None]:
    """Send every event emitted inside the block to `on_event` (None: to nobody)."""
    with _lock:
        outer, _listener[0] = _listener[0], on_event
    try:
        yield
    finally:
        with _lock:
            _listener[0] = outer
