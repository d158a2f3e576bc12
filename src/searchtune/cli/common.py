"""Options and helpers shared by every subcommand, so flags mean the same thing everywhere."""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.logging import RichHandler

from searchtune.config import DEFAULT_ES_URL
from searchtune.progress import STDERR

console = STDERR
out = Console()

#: The cluster URL, named the same on every command: ``--es-url`` (historical) or ``--url``, env
#: ``SEARCHTUNE_ES_URL``. Commands taking it work against Elasticsearch and OpenSearch alike (search_client picks
#: the client library by asking the cluster what it is).
EsUrlOption = Annotated[str, typer.Option("--es-url", "--url", envvar="SEARCHTUNE_ES_URL",
                                          help="Cluster URL (Elasticsearch or OpenSearch). Default: the local node.")]
DEFAULT_ES = DEFAULT_ES_URL


#: Libraries whose INFO chatter ("Computing widget examples", "Some weights ... newly initialized", HTTP lines)
#: buries our own progress lines; shown again with --verbose/--debug.
NOISY_LOGGERS = ("httpx", "elastic_transport", "urllib3", "httpcore", "filelock", "botocore", "s3fs", "aiobotocore",
                 "opensearch", "sentence_transformers", "transformers", "datasets", "accelerate", "torch")


def setup_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]",
                        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=False,
                                              markup=False)], force=True)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
    for with_tracebacks in ("elastic_transport", "opensearch"):  # log every retried connection with its traceback
        logging.getLogger(with_tracebacks).setLevel(logging.DEBUG if verbose else logging.ERROR)
    # transformers keeps its own verbosity ("Some weights ... newly initialized"), read from the environment at
    # import; importing it here would slow every command down
    os.environ["TRANSFORMERS_VERBOSITY"] = "info" if verbose else "error"
    # libraries' own tqdm bars ("Computing widget examples", datasets' map) next to ours; tqdm reads this at import
    if verbose:
        os.environ.pop("TQDM_DISABLE", None)
    else:
        os.environ["TQDM_DISABLE"] = "1"
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.set_verbosity(logging.DEBUG if verbose else logging.ERROR)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear red line and exit; for expected errors (bad input, unreachable cluster), never a traceback.
    The message is escaped (see cli/errors.py): text from files, logs and clusters never reads as rich markup."""
    from searchtune.cli.errors import exit_with

    exit_with(message, code)


def progress_bar(description: str, total: int | None):
    """Progress of long work: a rich bar on a terminal, periodic log lines otherwise (see searchtune.progress)."""
    from searchtune.progress import progress

    return progress(description, total)


def bind_listener(host: str, port: int, backlog: int = 2048) -> tuple[socket.socket, str]:
    """A listening socket on ``host:port`` (0 = a free port) and its URL, bound before the server starts so that a
    port clash is one clear line and scripts can learn the real port (``--ready-file``)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        fail(f"cannot bind {host}:{port}: {exc}")
    sock.listen(backlog)
    return sock, f"http://{host}:{sock.getsockname()[1]}"
