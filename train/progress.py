"""Rich progress bars for long work (packing, downloads, training), quiet when asked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True, highlight=False)


@contextmanager
def bar(total: int, description: str, *, enabled: bool = True) -> Iterator[Callable[..., None]]:
    """Yield `advance(n=1, **fields)`; a no-op when disabled (other ranks, tests)."""
    if not enabled:
        yield lambda *a, **k: None
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    with progress:
        task = progress.add_task(description, total=total, info="")

        def advance(n: int = 1, info: str | None = None) -> None:
            if info is None:
                progress.update(task, advance=n)
            else:
                progress.update(task, advance=n, info=info)

        yield advance


def log(msg: str, *, enabled: bool = True) -> None:
    if enabled:
        console.print(msg, markup=False)
