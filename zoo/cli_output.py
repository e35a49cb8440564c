"""How every command prints: tables that pipe and fit, JSON, and progress bars drawn from events.

Why one module: `zoo list | grep NAME` must find the whole row, an 80-column terminal must show every
name whole, and every bar must read at 80 columns; written once here, every command gets it.
rich is imported only when something is drawn on a terminal (`zoo convert` starts without it).
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Iterator, Sequence

from zoo.events import Event, OnEvent


def is_terminal(stream=None) -> bool:
    stream = stream if stream is not None else sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


@functools.cache
def err_console():
    """The one stderr console of a command: bars and lines drawn on it do not overwrite each other."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(value: object) -> None:
    """One JSON document on stdout (`--json`), UTF-8 as it is."""
    print(json.dumps(value, indent=1, ensure_ascii=False))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, title: str = "",
                right: Sequence[str] = (), footer: Sequence[object] | None = None) -> None:
    """A table on stdout. Piped: the title, the header and each row as tab-separated plain text, never
    cut. On a terminal: a rich table whose first column (the name) is never wrapped or cut; the other
    columns wrap to fit the width."""
    cells = [[str(c) for c in row] for row in rows]
    tail = [str(c) for c in footer] if footer is not None else None
    if not is_terminal():
        if title:
            print(title)
        for line in [list(headers), *cells, *([tail] if tail else [])]:
            print("\t".join(line))
        return
    from rich.console import Console
    from rich.table import Table

    width = max([len(headers[0]), *(len(r[0]) for r in cells), *([len(tail[0])] if tail else [])])
    table = Table(title=title or None, title_justify="left", box=None, header_style="bold", pad_edge=False)
    for i, head in enumerate(headers):
        first = i == 0
        table.add_column(head, justify="right" if head in right else "left", no_wrap=first, overflow="fold",
                         min_width=width if first else None)
    for row in cells:
        table.add_row(*row)
    if tail:
        table.add_section()
        table.add_row(*tail)
    Console(highlight=False).print(table)


# --- progress ------------------------------------------------------------------------------------


def _count_column():
    """`done/total` in the unit's words: bytes as MB, anything else as a count."""
    from rich.progress import DownloadColumn, MofNCompleteColumn, ProgressColumn
    from rich.table import Column

    class Count(ProgressColumn):
        def __init__(self):
            super().__init__(table_column=Column(no_wrap=True))
            self.bytes, self.count = DownloadColumn(), MofNCompleteColumn()

        def render(self, task):
            return (self.bytes if task.fields.get("unit") == "B" else self.count).render(task)

    return Count()


def progress_columns() -> tuple:
    """Description, the bar (it shrinks first, to 4), counts, elapsed and ETA: readable at 80 columns
    (a description too long for what is left is cut with …, never the numbers)."""
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.table import Column

    return (TextColumn("{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis")),
            BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=4)),
            _count_column(),
            TimeElapsedColumn(table_column=Column(no_wrap=True)),
            TimeRemainingColumn(table_column=Column(no_wrap=True)))


def make_progress(console=None, *, transient: bool = False, disable: bool = False):
    """A rich Progress with `progress_columns`, drawn on stderr, as wide as the terminal."""
    from rich.progress import Progress

    return Progress(*progress_columns(), console=console or err_console(), transient=transient, expand=True,
                    disable=disable)


class Renderer:
    """The CLI's listener (zoo.events): notes as lines on stderr, other events as bars on a terminal,
    one per task and key, added on their first event; a final event ends a bar (a download's bar
    then goes away). `record` events are for front ends that keep values; the CLI skips them."""

    def __init__(self, console=None):
        self._console = console
        self._progress = None
        self._tasks: dict[tuple[str, str], object] = {}
        self._counts: dict[tuple[str, str], int] = {}  # the width of each bar's `done/total`

    @property
    def console(self):
        if self._console is None:
            self._console = err_console()
        return self._console

    def __call__(self, event: Event) -> None:
        if event.task == "note":
            self.console.print(event.text, markup=False)
            return
        if event.task == "record" or not self.console.is_terminal:  # bars only on a terminal (a log gets lines)
            return
        key = (event.task, event.key)
        if key not in self._tasks and event.final:
            return
        if self._progress is None:
            self._progress = make_progress(self.console)
            self._progress.start()
        if key not in self._tasks:
            self._tasks[key] = self._progress.add_task("", total=event.total, unit=event.unit)
        task = self._tasks[key]
        self._counts[key] = 12 if event.unit == "B" else 2 * len(str(event.total or event.done)) + 1
        room = self.console.width - 23 - max(self._counts.values())  # bar 4, times 7 + 7, four gaps
        text = " ".join(p for p in (event.key or event.task, event.info) if p)
        text = text if len(text) <= room else text[:max(1, room - 1)] + "…"
        self._progress.update(task, completed=event.done, total=event.total, description=text)
        if event.final:
            del self._tasks[key], self._counts[key]
            if event.unit == "B":
                self._progress.remove_task(task)
            if not self._tasks:
                self.close()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        self._progress = None
        self._tasks.clear()
        self._counts.clear()


@contextlib.contextmanager
def drawing(console=None) -> Iterator[OnEvent]:
    """Draw the library's events for the length of a command (zoo.cli installs it for every command)."""
    from zoo import events

    renderer = Renderer(console)
    with events.listening(renderer):
        try:
            yield renderer
        finally:
            renderer.close()
