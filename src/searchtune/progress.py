"""Progress of long work (indexing, mining, staging, reranking, training) for people and for logs.

On a terminal: a rich progress bar. Elsewhere (CI, ``nohup``, a pipe): one log line every ``interval`` seconds
with done/total, elapsed and remaining time, and a last line when the work ends. Why both: a silent 3-minute
``eval --rerank`` in a CI log looks exactly like a hang.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

log = logging.getLogger("searchtune.progress")

#: The one stderr console: log lines and progress bars share it, so bars never garble log output.
STDERR = Console(stderr=True)

#: Advance by ``n`` and optionally replace the short status text (e.g. ``"loss 0.42"``).
Advance = Callable[..., None]


def log_interval() -> float:
    """Seconds between progress log lines when stderr is not a terminal (``SEARCHTUNE_PROGRESS_INTERVAL``)."""
    try:
        return max(0.0, float(os.environ.get("SEARCHTUNE_PROGRESS_INTERVAL", "10")))
    except ValueError:
        return 10.0


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class _LogLines:
    """Periodic ``description: done/total (pct), elapsed, ~left`` lines for non-terminal output."""

    def __init__(self, description: str, total: int | None, interval: float):
        self.description, self.total, self.interval = description, total, interval
        self.done, self.info = 0, ""
        self.started = self.last = time.monotonic()

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        parts = [f"{self.description}: {self.done}" + (f"/{self.total}" if self.total else "")]
        if self.total:
            parts[0] += f" ({self.done / self.total:.0%})"
        parts.append(f"{_duration(elapsed)} elapsed")
        if self.total and self.done and self.done < self.total:
            parts.append(f"~{_duration(elapsed / self.done * (self.total - self.done))} left")
        if self.info:
            parts.append(self.info)
        return ", ".join(parts)

    def advance(self, n: int = 1, info: str | None = None) -> None:
        self.done += n
        if info is not None:
            self.info = info
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            log.info("%s", self.line())


@contextmanager
def progress(description: str, total: int | None, interval: float | None = None,
             console: Console | None = None) -> Iterator[Advance]:
    """Yields ``advance(n=1, info=None)``; a bar on a terminal, periodic log lines otherwise."""
    console = console or STDERR
    if console.is_terminal:
        columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn(), TextColumn("{task.fields[info]}")]
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task(description, total=total, info="")

            def advance(n: int = 1, info: str | None = None) -> None:
                bar.update(task, advance=n, **({"info": info} if info is not None else {}))

            yield advance
        return
    lines = _LogLines(description, total, log_interval() if interval is None else interval)
    yield lines.advance
    elapsed = time.monotonic() - lines.started
    log.info("%s: done %d%s in %s%s", description, lines.done, f"/{total}" if total else "", _duration(elapsed),
             f", {lines.info}" if lines.info else "")
