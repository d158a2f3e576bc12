"""Options and helpers shared by every subcommand, so flags mean the same thing everywhere."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from searchtune.config import DEFAULT_ES_URL

console = Console(stderr=True)
out = Console()

#: The cluster URL, named the same on every command: ``--es-url`` (historical) or ``--url``, env
#: ``SEARCHTUNE_ES_URL``. Commands taking it work against Elasticsearch and OpenSearch alike (search_client picks
#: the client library by asking the cluster what it is).
EsUrlOption = Annotated[str, typer.Option("--es-url", "--url", envvar="SEARCHTUNE_ES_URL",
                                          help="Cluster URL (Elasticsearch or OpenSearch). Default: the local node.")]
DEFAULT_ES = DEFAULT_ES_URL


def setup_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]",
                        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=False)], force=True)
    for noisy in ("httpx", "elastic_transport", "opensearch", "urllib3", "httpcore", "filelock", "botocore", "s3fs",
                  "aiobotocore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str, code: int = 1) -> None:
    """Print one clear red line and exit; for expected errors (bad input, unreachable cluster), never a traceback."""
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator:
    """A rich progress bar on stderr; yields ``advance(n)``. Quiet when stderr is not a terminal and CI is set."""
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)
