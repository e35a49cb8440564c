"""Progress of long work (packing, downloads, training) as zoo.events, quiet when asked.

The library draws nothing: `bar` and `log` emit events that the CLI draws as a rich bar and lines,
and the studio forwards (zoo/events.py). `enabled=False` (other torchrun ranks, tests) emits none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from zoo.events import Event, emit, note


@contextmanager
def bar(total: int, description: str, *, enabled: bool = True, task: str = "work",
        unit: str = "it") -> Iterator[Callable[..., None]]:
    """Yield `advance(n=1, info=None)`, each call an Event(task, done, total, unit, key=description)."""
    if not enabled:
        yield lambda *a, **k: None
        return
    state = {"done": 0, "info": ""}

    def advance(n: int = 1, info: str | None = None) -> None:
        state["done"] += n
        if info is not None:
            state["info"] = info
        emit(Event(task, state["done"], total, unit, key=description, info=state["info"]))

    emit(Event(task, 0, total, unit, key=description))
    try:
        yield advance
    finally:
        emit(Event(task, state["done"], total, unit, key=description, info=state["info"], final=True))


def log(msg: str, *, enabled: bool = True) -> None:
    if enabled:
        note(msg)
