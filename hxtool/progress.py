"""Rich progress bars on stderr that stay out of the way when output is not a terminal."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)
REFRESH_STEPS = 10  # steps between updates of the text beside a training bar


@contextlib.contextmanager
def training_progress(description: str, total: int, quiet: bool = False,
                      start: int = 0) -> Iterator[Callable[..., None]]:
    """Yield `advance(**fields)`: one step done, with fields (loss, pair) shown beside the bar.

    A field may be a callable: it is called only when the shown text is refreshed (every
    `REFRESH_STEPS` steps and at the last), so reading a loss off the GPU does not stall every step.
    """
    if quiet or not console.is_terminal:  # nothing would show: skip the work, loss reads included
        yield lambda **fields: None
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        console=console, transient=False, disable=not console.is_terminal,
    )
    with progress:
        task = progress.add_task(description, total=total, info="", completed=start)

        done = start

        def advance(**fields: object) -> None:
            nonlocal done
            done += 1
            if done % REFRESH_STEPS and done != total:
                progress.update(task, advance=1)
                return
            values = {k: v() if callable(v) else v for k, v in fields.items()}
            info = "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
            progress.update(task, advance=1, info=info)

        yield advance


@contextlib.contextmanager
def count_progress(description: str, total: int, quiet: bool = False) -> Iterator[Callable[[int], None]]:
    """Yield `advance(n)` for work counted in items (words tagged, lines read)."""
    if quiet:
        yield lambda n: None
        return
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, disable=not console.is_terminal)
    with progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.update(task, advance=n)
