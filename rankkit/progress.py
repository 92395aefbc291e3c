"""Progress bars for long work: rich bars when enabled, nothing otherwise.

Library functions take ``progress: bool``; only the CLI turns it on.
"""
from __future__ import annotations

from typing import Iterable, Iterator, TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")


def make_progress(*extra_columns) -> Progress:
    """A rich Progress with the house columns, plus any extra ones (e.g. a rate)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        *extra_columns,
        transient=False,
    )


def track(iterable: Iterable[T], *, total: int | None = None, description: str = "", enabled: bool = False) -> Iterator[T]:
    """Iterate ``iterable``, showing a bar when ``enabled``."""
    if not enabled:
        yield from iterable
        return
    with make_progress() as bar:
        task = bar.add_task(description, total=total, info="")
        for item in iterable:
            yield item
            bar.advance(task)
