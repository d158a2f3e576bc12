"""``searchtune workbench``: a web page to compare rankings side by side, judge results, and evaluate query sets."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from searchtune.cli.common import EsUrlOption, bind_listener, fail
from searchtune.config import es_url as default_es_url

log = logging.getLogger("searchtune.workbench")


def workbench_command(
    index: Annotated[str, typer.Option("--index", help="Index to search (BM25 and through the gateway).")],
    es_url: EsUrlOption = None,
    gateway: Annotated[str | None, typer.Option("--gateway", envvar="SEARCHTUNE_GATEWAY_URL",
                                                help="Gateway URL: each of its search pipelines is a configuration.")]
    = None,
    dataset: Annotated[Path | None, typer.Option("--dataset", help="Dataset folder: its splits are query sets and its "
                                                                   "judgments are shown (and kept) as known.")] = None,
    judgments: Annotated[str | None, typer.Option("--judgments", help="Judgment list to write (created if missing; "
                                                                      "default: the dataset's name).")] = None,
    scale: Annotated[str, typer.Option(help="graded (0-3) or binary (0/1), for a new list.")] = "graded",
    rater: Annotated[str, typer.Option(envvar="USER", help="Default rater name (each page can set its own).")]
    = "anonymous",
    max_queries: Annotated[int, typer.Option(help="Queries of a set evaluated per table.")] = 50,
    fields: Annotated[str, typer.Option(help="Fields BM25 matches.")] = "title,text",
    host: Annotated[str, typer.Option(envvar="SEARCHTUNE_WORKBENCH_HOST", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="SEARCHTUNE_WORKBENCH_PORT", help="Port (0 = any free port).")] = 8765,
    admin_key: Annotated[str | None, typer.Option(envvar="SEARCHTUNE_WORKBENCH_ADMIN_KEY",
                                                  help="Key every request needs when --host is not loopback.")] = None,
    store: Annotated[str | None, typer.Option(envvar="SEARCHTUNE_STORE", help="Store holding lists and models.")]
    = None,
    ready_file: Annotated[Path | None, typer.Option(help="Write the workbench URL here once bound.")] = None,
) -> None:
    """Compare BM25 and the gateway's pipelines side by side, grade results in place (saved to a versioned
    judgment list), and evaluate whole query sets. Train on the list with `searchtune train ... --judgments LIST`."""
    import uvicorn

    from searchtune.data import DatasetError, load_dataset
    from searchtune.workbench.app import create_app
    from searchtune.keys import hash_key
    from searchtune.workbench.auth import is_loopback
    from searchtune.workbench.configs import SearchTargets
    from searchtune.workbench.judgments import JudgmentError, JudgmentList
    from searchtune.workbench.state import Workbench

    key_hashes: list[str] = []
    if not is_loopback(host):
        if not admin_key:
            fail(f"--host {host} is not loopback: give --admin-key (or SEARCHTUNE_WORKBENCH_ADMIN_KEY); every "
                 "request will need it, as the gateway's admin APIs do")
        key_hashes = [hash_key(admin_key)]
    admin_key = None  # only its digest is kept
    try:
        ds = load_dataset(dataset) if dataset is not None else None
        name = judgments or (ds.name if ds is not None else None)
        if not name:
            fail("give --dataset DIR or --judgments NAME (the list grades are saved to)")
        judgment_list = JudgmentList(name, store)
        meta = judgment_list.create(scale, dataset=str(dataset.resolve()) if dataset else None, index=index)
        if ds is None and meta.get("dataset"):
            ds = load_dataset(meta["dataset"])
    except (DatasetError, JudgmentError) as exc:
        fail(str(exc))
    targets = SearchTargets(es_url=es_url or default_es_url(), index=index, gateway_url=gateway, fields=fields)
    bench = Workbench(targets=targets, judgments=judgment_list, dataset=ds, max_queries=max_queries, rater=rater)
    sock, url = bind_listener(host, port, backlog=128)
    log.info("workbench on %s (list %s v%d, index %s)", url, judgment_list.name, meta["version"], index)
    if ready_file:
        from searchtune.storage import atomic_write

        atomic_write(ready_file, url)
    config = uvicorn.Config(create_app(bench, key_hashes), log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=5, server_header=False)
    uvicorn.Server(config).run(sockets=[sock])
