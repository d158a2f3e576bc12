"""Where searchtune keeps things, and how users override it.

Every setting has a default that works on a laptop, an environment variable for CI and containers, and a CLI
option on the commands that use it. Keeping them here means one place documents all of them.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Default Elasticsearch URL when nothing else is said. ``SEARCHTUNE_ES_URL`` overrides it everywhere.
DEFAULT_ES_URL = "http://127.0.0.1:9200"


def searchtune_home() -> Path:
    """Root folder for caches, the local store and managed nodes (``SEARCHTUNE_HOME``, default ``~/.searchtune``)."""
    return Path(os.environ.get("SEARCHTUNE_HOME", Path.home() / ".searchtune")).expanduser()


def es_url() -> str:
    """The cluster every command talks to unless told otherwise."""
    return os.environ.get("SEARCHTUNE_ES_URL", DEFAULT_ES_URL)


def es_port() -> int:
    """HTTP port of the local node searchtune starts itself (``SEARCHTUNE_ES_PORT``, default 9200).

    The same variable ``searchtune es start`` reads, so the quickstart's own node lands where the user said and two
    people on one machine do not share (and stop) each other's node on 9200.
    """
    raw = os.environ.get("SEARCHTUNE_ES_PORT", "9200")
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"SEARCHTUNE_ES_PORT must be a port number, got {raw!r}") from None


def store_uri() -> str:
    """Default object store (an fsspec URI) for datasets and models (``SEARCHTUNE_STORE``)."""
    return os.environ.get("SEARCHTUNE_STORE", str(searchtune_home() / "store"))


def shared_datasets_dir() -> Path | None:
    """Find the public test collections (``SEARCHTUNE_DATASETS``, else a ``shared/datasets`` folder beside or above
    the current directory), so the quickstart, tests and benchmarks need no path on a standard checkout."""
    explicit = os.environ.get("SEARCHTUNE_DATASETS")
    if explicit:
        return Path(explicit)
    for base in [Path.cwd(), *Path.cwd().parents, Path(__file__).resolve().parents[3]]:
        for candidate in (base / "shared" / "datasets", base.parent / "shared" / "datasets"):
            if candidate.is_dir():
                return candidate
    return None
