"""What a command prints: exactly one JSON object with `--json`, else a rich rendering.

Every command that a script would read declares `json_output: JsonOption = False` and ends with
`emit(result, json_output, render)`. Warnings go to stderr as `warning: ...` lines in both modes.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Callable, Iterable

import typer

from robustscale.fileio import dumps
from robustscale.formatting import (
    sci as sci,  # re-exported: commands format numbers through robustscale.formatting
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout and nothing else.")]


def print_json(obj: Any) -> None:
    """The one JSON object a `--json` command prints on stdout (non-finite numbers as null)."""
    sys.stdout.write(dumps(obj) + "\n")
    sys.stdout.flush()


def emit(obj: Any, json_output: bool, render: Callable[[Any], None] | None = None) -> None:
    """Print `obj` as JSON, or call `render(obj)` (default: a key/value table of its top level)."""
    if json_output:
        print_json(obj)
    elif render is not None:
        render(obj)
    else:
        table(None, [(str(k), _plain(v)) for k, v in obj.items()])


def warn(message: str) -> None:
    """One `warning: ...` line on stderr (kept out of stdout so `--json` output stays parseable)."""
    print(f"warning: {message}", file=sys.stderr)


def console():
    from rich.console import Console

    return Console()


def new_table(title: str | None = None, caption: str | None = None, **kwargs):
    """A rich table whose cells wrap at spaces, and fold rather than end in "…" where a word is wider
    than its column: a narrow terminal never shows a cut number."""
    from rich.table import Table

    return Table(title=title, caption=caption, caption_justify="left", **kwargs)


def add_columns(t, *names: str) -> None:
    for name in names:
        t.add_column(name, justify="right", overflow="fold")


def table(title: str | None, rows: Iterable[tuple[str, str]], caption: str | None = None) -> None:
    """A two-column key/value table."""
    t = new_table(title, caption, show_header=False)
    t.add_column(overflow="fold")
    t.add_column(overflow="fold")
    for k, v in rows:
        t.add_row(k, v)
    console().print(t)


def _plain(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)
