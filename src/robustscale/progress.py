"""The one progress bar of robustscale: rich, on stderr, gone when done.

Library functions take `progress: bool` and wrap their loops in `progress_bar(...)`, which
yields an `advance(n=1, status=None)` callable; with `enabled=False` it does nothing (notebooks, tests, --json
pipelines that want a quiet stderr) and when stderr is not a terminal.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

Advance = Callable[..., None]


@contextlib.contextmanager
def progress_bar(total: float | None, description: str, *, enabled: bool = True,
                 completed: float = 0) -> Iterator[Advance]:
    """A bar for `total` steps (None: unknown) labelled `description`; yields `advance(n=1, status=None)`,
    where `status` replaces the short text shown after the bar (e.g. the latest metrics)."""
    from rich.console import Console

    console = Console(stderr=True)
    # A bar is for people: in a log file or a pipe it would only leave blank lines behind.
    if not enabled or not console.is_terminal:
        yield lambda n=1, status=None: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
                   console=console, transient=True)

    def advance(n: float = 1, status: str | None = None) -> None:
        bar.update(task, advance=n, **({} if status is None else {"status": status}))

    with bar:
        task = bar.add_task(description, total=total, completed=completed, status="")
        yield advance
